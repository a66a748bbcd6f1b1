"""Receipts: central's signed proof that it stored a packet durably.

Encoding (canonical CBOR)::

    receipt   = [1, payload_bytes, signature]
    payload   = {packet_id, station_id, sha256, size, received_at, central_id}
    signature = Ed25519(b"enrollment-station/receipt/v1\\0" + payload_bytes)

:func:`verify_receipt` is strict (exact fields, types, canonical form, no trailing bytes) and raises
:class:`ReceiptError` on anything wrong, never another exception.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

RECEIPT_VERSION = 1
RECEIPT_DOMAIN = b"enrollment-station/receipt/v1\0"
MAX_RECEIPT_BYTES = 4096
_FIELDS: dict[str, type] = {
    "packet_id": str,
    "station_id": str,
    "sha256": str,
    "size": int,
    "received_at": str,
    "central_id": str,
}


class ReceiptError(Exception):
    """A receipt that is malformed, not canonical, or not signed by the expected central key."""


@dataclass(frozen=True)
class Receipt:
    packet_id: str
    station_id: str
    sha256: str
    size: int
    received_at: str  # ISO 8601 UTC
    central_id: str

    def payload_bytes(self) -> bytes:
        return cbor2.dumps(
            {
                "packet_id": self.packet_id,
                "station_id": self.station_id,
                "sha256": self.sha256,
                "size": self.size,
                "received_at": self.received_at,
                "central_id": self.central_id,
            },
            canonical=True,
        )


def utc_now_iso() -> str:
    """The current time as ISO 8601 UTC with a ``Z`` suffix, second precision."""
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def sign_receipt(receipt: Receipt, private_key: ed25519.Ed25519PrivateKey) -> bytes:
    """Encode and sign ``receipt`` with central's Ed25519 key."""
    payload = receipt.payload_bytes()
    signature = private_key.sign(RECEIPT_DOMAIN + payload)
    return cbor2.dumps([RECEIPT_VERSION, payload, signature], canonical=True)


def _decode_exact(data: bytes, what: str) -> Any:
    stream = io.BytesIO(data)
    try:
        item = cbor2.CBORDecoder(stream).decode()
    except RecursionError as exc:
        raise ReceiptError(f"{what}: nested too deeply") from exc
    except Exception as exc:  # cbor2 raises several types on malformed input
        raise ReceiptError(f"{what}: not valid CBOR") from exc
    if stream.tell() != len(data):
        raise ReceiptError(f"{what}: trailing bytes")
    return item


def decode_receipt(data: bytes) -> tuple[Receipt, bytes, bytes]:
    """Decode without checking the signature: (receipt, payload_bytes, signature)."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ReceiptError("a receipt must be bytes")
    raw = bytes(data)
    if not (0 < len(raw) <= MAX_RECEIPT_BYTES):
        raise ReceiptError("receipt empty or too large")
    if raw[0] != 0x83:
        raise ReceiptError("not a receipt (expected a 3-element CBOR array)")
    item = _decode_exact(raw, "receipt")
    if not isinstance(item, list) or len(item) != 3:
        raise ReceiptError("not a receipt (expected a 3-element CBOR array)")
    version, payload, signature = item
    if type(version) is not int or version != RECEIPT_VERSION:
        raise ReceiptError("unsupported receipt version")
    if not isinstance(payload, bytes) or not isinstance(signature, bytes):
        raise ReceiptError("receipt payload and signature must be byte strings")
    if len(signature) != 64:
        raise ReceiptError("receipt signature has the wrong length")
    fields = _decode_exact(payload, "receipt payload")
    if not isinstance(fields, dict) or set(fields) != set(_FIELDS):
        raise ReceiptError("receipt payload: wrong set of fields")
    for key, kind in _FIELDS.items():
        if type(fields[key]) is not kind:
            raise ReceiptError(f"receipt payload: field {key} has the wrong type")
    receipt = Receipt(**fields)
    if receipt.size < 0:
        raise ReceiptError("receipt payload: negative size")
    if receipt.payload_bytes() != payload:
        raise ReceiptError("receipt payload not in canonical form")
    if cbor2.dumps([version, payload, signature], canonical=True) != raw:
        raise ReceiptError("receipt not in canonical form")
    return receipt, payload, signature


def verify_receipt(data: bytes, public_key: ed25519.Ed25519PublicKey) -> Receipt:
    """Decode ``data`` and check central's signature; :class:`ReceiptError` on anything wrong."""
    receipt, payload, signature = decode_receipt(data)
    try:
        public_key.verify(signature, RECEIPT_DOMAIN + payload)
    except InvalidSignature as exc:
        raise ReceiptError("the receipt is not signed by this central's key") from exc
    except Exception as exc:  # a wrong key type, for instance
        raise ReceiptError("the receipt cannot be checked with this key") from exc
    return receipt
