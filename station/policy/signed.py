"""Documents central signs with its policy key (Ed25519): the policy bundle and the outcome lists.

One envelope for both, told apart by its kind (which is also in the signed bytes)::

    envelope  = canonical CBOR array [kind, payload, signature]
    kind      = "es-policy-bundle/1" | "es-outcomes/1"
    payload   = canonical CBOR map (the document)
    signature = Ed25519(b"enrollment-station/signed/v1\\n" || kind || b"\\n" || payload)

Reading is strict and bounded: the size is checked before decoding, the top level must be exactly a
definite 3-element array, every item must be canonical, no tags, no floats, no indefinite lengths,
bounded depth; the signature is checked before the payload is decoded. Anything else raises
:class:`~station.policy.model.PolicyError` (code ``policy.bad_signature`` or ``policy.malformed``).
"""

from __future__ import annotations

from typing import Any

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from packetformat.cbor import CborError, Limits, Reader, decode
from station.policy.model import PolicyError

POLICY_BUNDLE = "es-policy-bundle/1"
OUTCOMES = "es-outcomes/1"
KINDS = (POLICY_BUNDLE, OUTCOMES)
DOMAIN = b"enrollment-station/signed/v1\n"
MAX_SIGNED_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 12


def _signed_bytes(kind: str, payload: bytes) -> bytes:
    return DOMAIN + kind.encode("ascii") + b"\n" + payload


def sign_document(kind: str, document: dict[str, Any], key: ed25519.Ed25519PrivateKey) -> bytes:
    """The envelope of ``document`` signed by central's policy key."""
    if kind not in KINDS:
        raise ValueError(f"unknown signed document kind {kind!r}")
    payload = cbor2.dumps(document, canonical=True)
    signature = key.sign(_signed_bytes(kind, payload))
    return cbor2.dumps([kind, payload, signature], canonical=True)


def _malformed(what: str) -> PolicyError:
    return PolicyError(
        f"A document from central is malformed ({what}): it was not installed; the agent fetches it again.",
        code="policy.malformed",
    )


def decode_strict(data: bytes, what: str) -> Any:
    """One canonical, tag-free CBOR item spanning ``data`` exactly (``packetformat.cbor``: bounded
    while reading; only maps with text keys, lists, text, bytes, ints, bools and null)."""
    try:
        return decode(data, Limits(max_bytes=MAX_SIGNED_BYTES, max_depth=MAX_DEPTH + 1))
    except CborError as exc:
        raise _malformed(f"{what}: {exc}") from None


def open_document(
    kind: str, envelope: bytes, public_key: ed25519.Ed25519PublicKey, *, max_bytes: int = MAX_SIGNED_BYTES
) -> dict[str, Any]:
    """Verify ``envelope`` as a ``kind`` document signed by ``public_key``; the decoded payload map."""
    if not isinstance(envelope, bytes):
        raise _malformed("not bytes")
    if len(envelope) > max_bytes:
        raise _malformed(f"{len(envelope)} bytes, over the {max_bytes}-byte limit")
    if len(envelope) < 4 or envelope[0] != 0x83:
        raise _malformed("not a 3-element envelope")
    try:  # a fixed shape: [text kind, bytes payload, bytes signature] and nothing else
        r = Reader(envelope, Limits(max_bytes=max_bytes, max_depth=1, max_items=4))
        r.array(3, "envelope")
        got_kind = r.text("kind", 64)
        payload = r.bytes_("payload", max_bytes)
        signature = r.bytes_("signature", 1024)
        r.finish()
    except CborError as exc:
        raise _malformed(f"the envelope: {exc}") from None
    if got_kind != kind:
        raise _malformed(f"expected a {kind} document")
    if len(signature) != 64:
        raise PolicyError(
            "The document's signature has the wrong length: not installed.", code="policy.bad_signature"
        )
    try:
        public_key.verify(signature, _signed_bytes(kind, payload))
    except InvalidSignature:
        raise PolicyError(
            "The document from central does not verify with the pinned policy key (tampered, or from"
            " another central office): it was not installed. Call a technician if this repeats.",
            code="policy.bad_signature",
        ) from None
    document = decode_strict(payload, "the payload")
    if not isinstance(document, dict):
        raise _malformed("the payload is not a map")
    return document


def read_unverified(kind: str, envelope: bytes) -> dict[str, Any]:
    """The payload of an envelope the station verified when it stored it (its database is authenticated)."""
    top = decode_strict(envelope, "the stored envelope") if envelope[:1] == b"\x83" else None
    if not isinstance(top, list) or len(top) != 3 or top[0] != kind or not isinstance(top[1], bytes):
        raise _malformed("the stored envelope")
    document = decode_strict(top[1], "the stored payload")
    if not isinstance(document, dict):
        raise _malformed("the stored payload is not a map")
    return document
