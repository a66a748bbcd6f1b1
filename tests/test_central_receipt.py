"""Receipts: round trip, strict decoding, wrong key and tampering always raise ReceiptError."""

from __future__ import annotations

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import given, settings
from hypothesis import strategies as st

from sync.common.receipt import (
    RECEIPT_DOMAIN,
    Receipt,
    ReceiptError,
    sign_receipt,
    utc_now_iso,
    verify_receipt,
)
from sync.common.wire import Heartbeat, UploadStatus, b64d, b64e, valid_packet_id, valid_station_id

KEY = ed25519.Ed25519PrivateKey.generate()
OTHER = ed25519.Ed25519PrivateKey.generate()
RECEIPT = Receipt("018f0000-0000-7000-8000-000000000000", "uc-1", "ab" * 32, 1234, utc_now_iso(), "central-a")
SIGNED = sign_receipt(RECEIPT, KEY)


def test_round_trip_and_determinism() -> None:
    assert verify_receipt(SIGNED, KEY.public_key()) == RECEIPT
    assert sign_receipt(RECEIPT, KEY) == SIGNED  # Ed25519 is deterministic
    assert RECEIPT.received_at.endswith("Z")


def test_wrong_key_refused() -> None:
    with pytest.raises(ReceiptError, match="not signed"):
        verify_receipt(SIGNED, OTHER.public_key())


def test_resigned_payload_with_other_fields_refused() -> None:
    _, payload, sig = cbor2.loads(SIGNED)
    fields = cbor2.loads(payload)
    fields["size"] = 1
    forged = cbor2.dumps([1, cbor2.dumps(fields, canonical=True), sig], canonical=True)
    with pytest.raises(ReceiptError):
        verify_receipt(forged, KEY.public_key())


def test_extra_field_or_wrong_type_refused() -> None:
    fields = cbor2.loads(cbor2.loads(SIGNED)[1])
    for bad in (
        {**fields, "extra": 1},
        {**fields, "size": "1"},
        {k: v for k, v in fields.items() if k != "sha256"},
    ):
        payload = cbor2.dumps(bad, canonical=True)
        data = cbor2.dumps([1, payload, KEY.sign(RECEIPT_DOMAIN + payload)], canonical=True)
        with pytest.raises(ReceiptError):
            verify_receipt(data, KEY.public_key())


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600))
def test_garbage_only_raises_receipt_error(data: bytes) -> None:
    with pytest.raises(ReceiptError):
        verify_receipt(data, KEY.public_key())


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=10_000), st.integers(min_value=0, max_value=255))
def test_any_flipped_byte_refused(position: int, value: int) -> None:
    data = bytearray(SIGNED)
    pos = position % len(data)
    if data[pos] == value:
        value ^= 1
    data[pos] = value
    with pytest.raises(ReceiptError):
        verify_receipt(bytes(data), KEY.public_key())


def test_wire_helpers() -> None:
    assert valid_station_id("uc-lhr-0421-01") and not valid_station_id("../x") and not valid_station_id("")
    assert valid_packet_id(RECEIPT.packet_id) and not valid_packet_id("not-a-uuid")
    assert b64d(b64e(b"\x00\xff")) == b"\x00\xff"
    with pytest.raises(ValueError):
        b64d("***")
    assert UploadStatus.from_json(UploadStatus(5, False, None).to_json()) == UploadStatus(5, False, None)
    hb = Heartbeat("uc-1", utc_now_iso(), {"sealed": 1}, 3.5, None, 10, {"scanner": "ok"}, "0.1", "", "ab", 4)
    back = Heartbeat.from_json(hb.to_json())
    assert back.counts == {"sealed": 1, "uploading": 0, "acked": 0, "purged": 0} and back.audit_seq == 4
    with pytest.raises(ValueError):
        Heartbeat.from_json({**hb.to_json(), "disk_free_bytes": "lots"})
