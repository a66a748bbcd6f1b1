"""Sealed packets: round trips, determinism, tamper and re-sign detection, strict fuzzed parsing."""

from __future__ import annotations

import time
import uuid
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from packetformat.packet import (
    SUITES,
    PacketError,
    _signed_bytes,
    generate_recipient_keypair,
    open_packet,
    packet_digest,
    parse,
    recipient_suite_of,
    seal,
    uuid7,
    verify,
)

STATION_KEY = ec.generate_private_key(ec.SECP256R1())
OTHER_STATION_KEY = ec.generate_private_key(ec.SECP256R1())
KEYS = {s: generate_recipient_keypair(s) for s in SUITES}
DOC: dict[str, Any] = {
    "demographics": {"name_en": "Test Person", "cnic": "35202-1234567-1"},
    "images": {"face": {"jpeg": b"\xff\xd8" + bytes(200), "sha256": "00" * 32}},
    "operator_id": "op-1",
}


def sealed(suite: str = "x25519", doc: dict[str, Any] | None = None) -> bytes:
    return seal(
        DOC if doc is None else doc,
        station_id="uc-lhr-0421-01",
        identity_key=STATION_KEY,
        recipient_public_key=KEYS[suite][1],
        suite=suite,
    ).envelope


VALID = sealed()


@pytest.mark.parametrize("suite", SUITES)
def test_round_trip(suite: str) -> None:
    env = sealed(suite)
    assert open_packet(env, KEYS[suite][0], STATION_KEY.public_key()) == DOC
    header = parse(env).header
    assert header.suite == suite and header.station_id == "uc-lhr-0421-01"
    assert recipient_suite_of(KEYS[suite][1]) == suite


def test_plaintext_is_deterministic_cbor_and_not_in_the_envelope() -> None:
    assert cbor2.dumps(DOC, canonical=True) == cbor2.dumps(dict(reversed(list(DOC.items()))), canonical=True)
    assert b"Test Person" not in VALID and b"35202" not in VALID


def test_uuid7_layout_and_order() -> None:
    ids = [uuid7(1_700_000_000_000 + i) for i in range(50)]
    for s in ids:
        u = uuid.UUID(s)
        assert u.version == 7 and u.variant == uuid.RFC_4122
    assert ids == sorted(ids)
    assert int(uuid.UUID(ids[0]).hex[:12], 16) == 1_700_000_000_000
    before = int(time.time() * 1000)
    fresh = parse(sealed()).header.packet_id  # sealed now, not at import time
    after = int(time.time() * 1000)
    assert before <= int(uuid.UUID(fresh).hex[:12], 16) <= after


def test_packet_ids_are_unique() -> None:
    assert len({uuid7(5) for _ in range(1000)}) == 1000


def test_wrong_recipient_key_cannot_open() -> None:
    other_private, _ = generate_recipient_keypair()
    with pytest.raises(PacketError, match="cannot be decrypted"):
        open_packet(VALID, other_private, STATION_KEY.public_key())


def test_other_station_key_fails_verification() -> None:
    with pytest.raises(PacketError, match="signature"):
        verify(VALID, OTHER_STATION_KEY.public_key())


def test_resigned_packet_is_rejected_for_the_original_station() -> None:
    env = parse(VALID)
    resig = OTHER_STATION_KEY.sign(env.signed_bytes(), ec.ECDSA(hashes.SHA256()))
    forged = cbor2.dumps([1, env.header_bytes, env.ciphertext, resig], canonical=True)
    verify(forged, OTHER_STATION_KEY.public_key())  # it is a valid packet of the *other* key
    with pytest.raises(PacketError):
        verify(forged, STATION_KEY.public_key())


def test_header_swap_fails_even_with_a_fresh_signature() -> None:
    # Another packet's header on this ciphertext, re-signed by the (compromised) station key:
    # the HPKE key schedule binds the header, so decryption fails.
    a, b = parse(sealed()), parse(sealed())

    sig = STATION_KEY.sign(_signed_bytes(b.header_bytes, a.ciphertext), ec.ECDSA(hashes.SHA256()))
    swapped = cbor2.dumps([1, b.header_bytes, a.ciphertext, sig], canonical=True)
    verify(swapped, STATION_KEY.public_key())
    with pytest.raises(PacketError):
        open_packet(swapped, KEYS["x25519"][0], STATION_KEY.public_key())


@pytest.mark.parametrize("part", [1, 2, 3])
def test_any_flipped_byte_in_each_part_is_caught(part: int) -> None:
    items = cbor2.loads(VALID)
    for pos in range(0, len(items[part]), max(1, len(items[part]) // 25)):
        mutated = list(items)
        blob = bytearray(mutated[part])
        blob[pos] ^= 0x40
        mutated[part] = bytes(blob)
        with pytest.raises(PacketError):
            open_packet(cbor2.dumps(mutated, canonical=True), KEYS["x25519"][0], STATION_KEY.public_key())


def test_oversize_is_rejected_before_decoding() -> None:
    with pytest.raises(PacketError, match="limit"):
        parse(VALID, max_size=len(VALID) - 1)
    with pytest.raises(PacketError, match="limit"):
        seal(
            {"big": bytes(5000)},
            station_id="s",
            identity_key=STATION_KEY,
            recipient_public_key=KEYS["x25519"][1],
            max_size=4000,
        )


def test_truncations_and_extensions() -> None:
    for cut in range(0, len(VALID), 37):
        with pytest.raises(PacketError):
            parse(VALID[:cut])
    with pytest.raises(PacketError, match="trailing"):
        parse(VALID + b"\x00")


def test_indefinite_length_and_deep_nesting_are_refused() -> None:
    with pytest.raises(PacketError):
        parse(b"\x9f" + b"\x01" * 10 + b"\xff")
    with pytest.raises(PacketError):
        parse(b"\x84" + b"\x81" * 100_000)


def test_digest_is_sha256_of_envelope() -> None:
    import hashlib

    assert packet_digest(VALID) == hashlib.sha256(VALID).hexdigest()


@settings(max_examples=300, deadline=2000)
@given(st.binary(max_size=3000))
def test_fuzz_arbitrary_bytes_only_packet_error(data: bytes) -> None:
    with pytest.raises(PacketError):
        verify(data, STATION_KEY.public_key())


@settings(max_examples=300, deadline=2000)
@given(
    st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(1, 255)), min_size=1, max_size=4),
    st.integers(0, len(VALID)),
    st.binary(max_size=16),
)
def test_fuzz_mutations_of_a_valid_envelope(flips: list[tuple[int, int]], cut: int, tail: bytes) -> None:
    data = bytearray(VALID)
    for pos, x in flips:
        data[pos] ^= x
    mutated = bytes(data[:cut]) + tail
    if mutated == VALID:
        return
    with pytest.raises(PacketError):
        open_packet(mutated, KEYS["x25519"][0], STATION_KEY.public_key())
