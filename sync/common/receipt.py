"""Receipts: central's signed proof that it stored a packet durably.

Encoding (canonical CBOR)::

    receipt   = [1, payload_bytes, signature]
    payload   = {packet_id, station_id, sha256, size, received_at, central_id}
    signature = Ed25519(b"enrollment-station/receipt/v1\\0" + payload_bytes)

:func:`verify_receipt` is strict (exact fields, types, canonical form, no trailing bytes; read with the
shared bounded reader ``packetformat.cbor``) and raises :class:`ReceiptError` on anything wrong, never
another exception.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from packetformat.cbor import CborError, Limits, Reader, canonical_key_order
from sync.errors import SyncError

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
_FIELD_ORDER = canonical_key_order(list(_FIELDS))
_PAYLOAD_LIMITS = Limits(max_bytes=MAX_RECEIPT_BYTES, max_depth=1, max_items=13)


class ReceiptError(SyncError):
    """A receipt that is malformed, not canonical, or not signed by the expected central key."""

    code = "receipt.invalid"


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


def _read_payload(payload: bytes) -> Receipt:
    r = Reader(payload, _PAYLOAD_LIMITS)
    r.map(len(_FIELD_ORDER), "receipt payload")
    values: dict[str, str | int] = {}
    for key in _FIELD_ORDER:
        r.key(key)
        values[key] = r.uint(key) if _FIELDS[key] is int else r.text(key, 256)
    r.finish()
    return Receipt(
        packet_id=str(values["packet_id"]),
        station_id=str(values["station_id"]),
        sha256=str(values["sha256"]),
        size=int(values["size"]),
        received_at=str(values["received_at"]),
        central_id=str(values["central_id"]),
    )


def decode_receipt(data: bytes) -> tuple[Receipt, bytes, bytes]:
    """Decode without checking the signature: (receipt, payload_bytes, signature).

    Fixed shape, bounded and linear (``packetformat.cbor.Reader``): exactly ``[1, bytes, bytes]``
    and a payload of the six fields in canonical order; no tag, no indefinite length.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ReceiptError("a receipt must be bytes")
    raw = bytes(data)
    if not (0 < len(raw) <= MAX_RECEIPT_BYTES):
        raise ReceiptError("receipt empty or too large")
    try:
        r = Reader(raw, Limits(max_bytes=MAX_RECEIPT_BYTES, max_depth=1, max_items=4))
        r.array(3, "receipt")
        if r.uint("receipt version") != RECEIPT_VERSION:
            raise ReceiptError("unsupported receipt version")
        payload = r.bytes_("receipt payload", MAX_RECEIPT_BYTES)
        signature = r.bytes_("receipt signature", 64)
        r.finish()
        if len(signature) != 64:
            raise ReceiptError("receipt signature has the wrong length")
        receipt = _read_payload(payload)
    except CborError as exc:
        raise ReceiptError(f"receipt: {exc}") from None
    if receipt.payload_bytes() != payload:  # the reader is canonical-only: this is a second lock
        raise ReceiptError("receipt payload not in canonical form")
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
