"""Sealed and signed packets: the unit a station queues and central ingests.

An enrollment document (a dict) becomes deterministic CBOR, is sealed with HPKE (RFC 9180) to the
central office's public key and signed by the station's identity key (ECDSA P-256)::

    envelope = CBOR array (no tags) [FORMAT_VERSION, header_bytes, enc_and_ct, signature]
    header   = canonical CBOR map {v, packet_id, station_id, created_at, suite, ct_len, summary}
    summary  = {policy_version, kind, age_band, face, fingers_captured, finger_exceptions, iris, signoffs}
    signature = ECDSA-P256-SHA256(b"enrollment-station/packet/v1" || len || header || len || enc_and_ct)

The header is bound into the HPKE key schedule (``info``), so a header cannot be swapped onto
another ciphertext; the signature covers header and ciphertext, so nothing can be changed or
re-signed by another station unnoticed. Version 2 adds ``summary`` to the signed plaintext header: what
central can check of a packet against the policy it was captured under without opening it (no PII:
the policy version, the application kind and age band as codes, and counts: face 0/1, fingers
captured, finger exceptions, iris, supervisor sign-offs). Version 1 (no summary) is still read.
Suites: ``x25519`` (DHKEM-X25519, HKDF-SHA256,
AES-256-GCM) and ``mlkem768-x25519`` (the ML-KEM-768 + X25519 hybrid KEM, same KDF and AEAD).

Parsing is strict and linear-time: the envelope and its header are read with a fixed-shape reader
(``packetformat.cbor.Reader``: exactly an array of four, exactly six header fields in canonical
order, each of its one type and size) and the decrypted document with the same bounded, tag-free,
canonical-only reader (``packetformat.cbor.decode``); sizes are checked before a byte is decoded,
nothing trails. Any malformed, truncated, oversize, tampered or re-signed envelope raises
:class:`PacketError` (with a dotted ``code``) and nothing else.
"""

from __future__ import annotations

import hashlib
import os
import struct
import time
import uuid
from dataclasses import dataclass
from typing import Any

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, hpke
from cryptography.hazmat.primitives.asymmetric import ec, mlkem, x25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from packetformat.cbor import CborError, Limits, Reader, canonical_key_order, decode
from packetformat.errors import PacketFormatError

FORMAT_VERSION = 2
READ_VERSIONS = (1, 2)  # version 1 has no summary in its header
MAX_PACKET_BYTES = 8 * 1024 * 1024
SUITES = ("x25519", "mlkem768-x25519")
_DOMAIN = b"enrollment-station/packet/v1"
_HEADER_TEXT = {"packet_id": 36, "station_id": 128, "suite": 32}  # text fields and their byte limits
_HEADER_KEYS_V1 = ["v", "packet_id", "station_id", "created_at", "suite", "ct_len"]
_HEADER_ORDER = {
    1: canonical_key_order(_HEADER_KEYS_V1),
    2: canonical_key_order([*_HEADER_KEYS_V1, "summary"]),
}
_SUMMARY_TEXT = {"kind": 32, "age_band": 16}
_SUMMARY_ORDER = canonical_key_order(
    [
        "policy_version",
        "kind",
        "age_band",
        "face",
        "fingers_captured",
        "finger_exceptions",
        "iris",
        "signoffs",
    ]
)
_MAX_HEADER = 1024
_HEADER_LIMITS = Limits(max_bytes=_MAX_HEADER, max_depth=2, max_items=40)
# A sealed enrollment document: a few hundred items, nested a few levels (face checks are nested).
DOCUMENT_LIMITS = {"max_depth": 16, "max_items": 65536}
_MAX_SIG = 80  # DER ECDSA P-256 signatures are at most 72 bytes
_X25519_PUB = 32
_MLKEM_PUB = 1184
_MLKEM_SEED = 64


class PacketError(PacketFormatError):
    """A packet that is malformed, truncated, oversize, tampered, re-signed or undecryptable.

    ``code`` is dotted (``packet.cbor.tag``, ``packet.signature``...); the message says what failed.
    """

    code = "packet.invalid"


@dataclass(frozen=True)
class PacketSummary:
    """The non-PII capture summary a version-2 header carries (signed, in plaintext)."""

    policy_version: int
    kind: str
    age_band: str
    face: int
    fingers_captured: int
    finger_exceptions: int
    iris: int
    signoffs: int

    def to_map(self) -> dict[str, int | str]:
        return {
            "policy_version": self.policy_version,
            "kind": self.kind,
            "age_band": self.age_band,
            "face": self.face,
            "fingers_captured": self.fingers_captured,
            "finger_exceptions": self.finger_exceptions,
            "iris": self.iris,
            "signoffs": self.signoffs,
        }


@dataclass(frozen=True)
class PacketHeader:
    version: int
    packet_id: str
    station_id: str
    created_at: int
    suite: str
    ct_len: int
    summary: PacketSummary | None = None  # version 2 only

    def to_cbor(self) -> bytes:
        fields: dict[str, object] = {
            "v": self.version,
            "packet_id": self.packet_id,
            "station_id": self.station_id,
            "created_at": self.created_at,
            "suite": self.suite,
            "ct_len": self.ct_len,
        }
        if self.summary is not None:
            fields["summary"] = self.summary.to_map()
        return cbor2.dumps(fields, canonical=True)


@dataclass(frozen=True)
class Envelope:
    header: PacketHeader
    header_bytes: bytes
    ciphertext: bytes  # HPKE encapsulated key followed by the AEAD ciphertext
    signature: bytes

    @property
    def enc(self) -> bytes:
        return self.ciphertext[: _kem(self.header.suite).enc_length()]

    def signed_bytes(self) -> bytes:
        return _signed_bytes(self.header_bytes, self.ciphertext)


@dataclass(frozen=True)
class SealedPacket:
    packet_id: str
    envelope: bytes
    created_at: int


def uuid7(now_ms: int | None = None) -> str:
    """A UUIDv7 (RFC 9562): 48-bit Unix milliseconds, version 7, variant 10, 74 random bits."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    return str(uuid.UUID(int=value))


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def packet_digest(envelope: bytes) -> str:
    """SHA-256 of the envelope bytes: what central compares to detect same id, other content."""
    return sha256_hex(envelope)


def _kem(suite: str) -> hpke.KEM:
    if suite == "x25519":
        return hpke.KEM.X25519
    if suite == "mlkem768-x25519":
        return hpke.KEM.MLKEM768_X25519
    raise PacketError(f"unknown HPKE suite {suite!r}")


def _suite(suite: str) -> hpke.Suite:
    return hpke.Suite(_kem(suite), hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)


def _info(header_bytes: bytes) -> bytes:
    return _DOMAIN + b"/hpke/" + hashlib.sha256(header_bytes).digest()


def _signed_bytes(header_bytes: bytes, ciphertext: bytes) -> bytes:
    return (
        _DOMAIN
        + struct.pack(">I", len(header_bytes))
        + header_bytes
        + struct.pack(">Q", len(ciphertext))
        + ciphertext
    )


# Recipient keys: raw bytes so they can be stored in files and config.
# x25519:          private 32 bytes, public 32 bytes
# mlkem768-x25519: private = ML-KEM seed (64) + X25519 (32); public = ML-KEM (1184) + X25519 (32)


def generate_recipient_keypair(suite: str = "x25519") -> tuple[bytes, bytes]:
    """A central HPKE key pair as (private, public) raw bytes for ``suite``."""
    if suite == "x25519":
        xk = x25519.X25519PrivateKey.generate()
        return xk.private_bytes_raw(), xk.public_key().public_bytes_raw()
    if suite == "mlkem768-x25519":
        mk = mlkem.MLKEM768PrivateKey.generate()
        xk = x25519.X25519PrivateKey.generate()
        private = mk.private_bytes_raw() + xk.private_bytes_raw()
        public = mk.public_key().public_bytes_raw() + xk.public_key().public_bytes_raw()
        return private, public
    raise PacketError(f"unknown HPKE suite {suite!r}")


def recipient_suite_of(public: bytes) -> str:
    """Which suite a central public key belongs to, from its length."""
    if len(public) == _X25519_PUB:
        return "x25519"
    if len(public) == _MLKEM_PUB + _X25519_PUB:
        return "mlkem768-x25519"
    raise PacketError(f"a central HPKE public key of {len(public)} bytes is not a known suite")


def _public_key(public: bytes, suite: str) -> x25519.X25519PublicKey | hpke.MLKEM768X25519PublicKey:
    if recipient_suite_of(public) != suite:
        raise PacketError(f"the central public key does not belong to suite {suite!r}")
    if suite == "x25519":
        return x25519.X25519PublicKey.from_public_bytes(public)
    return hpke.MLKEM768X25519PublicKey(
        mlkem.MLKEM768PublicKey.from_public_bytes(public[:_MLKEM_PUB]),
        x25519.X25519PublicKey.from_public_bytes(public[_MLKEM_PUB:]),
    )


def _private_key(private: bytes, suite: str) -> x25519.X25519PrivateKey | hpke.MLKEM768X25519PrivateKey:
    try:
        if suite == "x25519" and len(private) == 32:
            return x25519.X25519PrivateKey.from_private_bytes(private)
        if suite == "mlkem768-x25519" and len(private) == _MLKEM_SEED + 32:
            return hpke.MLKEM768X25519PrivateKey(
                mlkem.MLKEM768PrivateKey.from_seed_bytes(private[:_MLKEM_SEED]),
                x25519.X25519PrivateKey.from_private_bytes(private[_MLKEM_SEED:]),
            )
    except ValueError as exc:
        raise PacketError("the recipient private key is malformed") from exc
    raise PacketError(f"the recipient private key does not fit suite {suite!r}")


def seal(
    document: dict[str, Any],
    *,
    station_id: str,
    identity_key: ec.EllipticCurvePrivateKey,
    recipient_public_key: bytes,
    suite: str = "x25519",
    created_at: int | None = None,
    max_size: int = MAX_PACKET_BYTES,
    summary: PacketSummary | None = None,
) -> SealedPacket:
    """Seal ``document`` for central and sign it; the station cannot open the result.

    With ``summary`` the packet is version 2 (the summary signed in its header); without, version 1.
    """
    if suite not in SUITES:
        raise PacketError(f"unknown HPKE suite {suite!r}")
    if not isinstance(identity_key.curve, ec.SECP256R1):
        raise PacketError("the station identity key must be ECDSA P-256")
    public = _public_key(recipient_public_key, suite)
    created = int(time.time()) if created_at is None else created_at
    packet_id = uuid7(created * 1000 if created_at is not None else None)
    plaintext = cbor2.dumps(document, canonical=True)
    # AES-GCM adds a 16-byte tag; the KEM adds its encapsulated key.
    ct_len = _kem(suite).enc_length() + len(plaintext) + 16
    version = 1 if summary is None else FORMAT_VERSION
    if summary is not None:
        _check_summary(summary)
    header = PacketHeader(version, packet_id, station_id, created, suite, ct_len, summary)
    header_bytes = header.to_cbor()
    ciphertext = _suite(suite).encrypt(plaintext, public, info=_info(header_bytes))
    if len(ciphertext) != ct_len:  # pragma: no cover - guards our own length arithmetic
        raise PacketError("internal error: unexpected HPKE ciphertext length")
    signature = identity_key.sign(_signed_bytes(header_bytes, ciphertext), ec.ECDSA(hashes.SHA256()))
    envelope = cbor2.dumps([version, header_bytes, ciphertext, signature], canonical=True)
    if len(envelope) > max_size:
        raise PacketError(f"the packet is {len(envelope)} bytes, over the {max_size}-byte limit")
    return SealedPacket(packet_id=packet_id, envelope=envelope, created_at=created)


def _check_uuid7(value: str) -> None:
    try:
        u = uuid.UUID(value)
    except ValueError as exc:
        raise PacketError("header: packet_id is not a UUID") from exc
    if str(u) != value or u.version != 7 or u.variant != uuid.RFC_4122:
        raise PacketError("header: packet_id is not a canonical UUIDv7")


def _cbor_failure(what: str, exc: CborError) -> PacketError:
    return PacketError(f"{what}: {exc}", code=f"packet.{exc.code}")


def _check_summary(summary: PacketSummary) -> None:
    counts = (
        summary.face,
        summary.fingers_captured,
        summary.finger_exceptions,
        summary.iris,
        summary.signoffs,
    )
    if summary.face not in (0, 1) or not all(0 <= n <= 10 for n in counts[1:4]) or not 0 <= counts[4] <= 64:
        raise PacketError("header: summary counts out of range", code="packet.summary")
    if summary.fingers_captured + summary.finger_exceptions > 10 or not 0 <= summary.policy_version < 2**53:
        raise PacketError("header: summary counts out of range", code="packet.summary")
    for text in (summary.kind, summary.age_band):
        if not text or not text.isascii() or not text.isprintable():
            raise PacketError("header: summary codes must be printable ASCII", code="packet.summary")


def _read_summary(r: Reader) -> PacketSummary:
    r.map(len(_SUMMARY_ORDER), "header summary")
    raw: dict[str, int | str] = {}
    for key in _SUMMARY_ORDER:
        r.key(key)
        if key in _SUMMARY_TEXT:
            raw[key] = r.text(f"summary field {key}", _SUMMARY_TEXT[key])
        else:
            raw[key] = r.uint(f"summary field {key}", 2**53 - 1)
    summary = PacketSummary(
        policy_version=int(raw["policy_version"]),
        kind=str(raw["kind"]),
        age_band=str(raw["age_band"]),
        face=int(raw["face"]),
        fingers_captured=int(raw["fingers_captured"]),
        finger_exceptions=int(raw["finger_exceptions"]),
        iris=int(raw["iris"]),
        signoffs=int(raw["signoffs"]),
    )
    _check_summary(summary)
    return summary


def _parse_header(header_bytes: bytes, expected_version: int = FORMAT_VERSION) -> PacketHeader:
    """The header map, read field by field in its one canonical order (nothing else is decoded)."""
    order = _HEADER_ORDER.get(expected_version)
    if order is None:
        raise PacketError(f"header: format version {expected_version} is not supported")
    summary: PacketSummary | None = None
    try:
        r = Reader(header_bytes, _HEADER_LIMITS)
        r.map(len(order), "header")
        raw: dict[str, int | str] = {}
        for key in order:
            r.key(key)
            if key == "summary":
                summary = _read_summary(r)
            elif key in _HEADER_TEXT:
                raw[key] = r.text(f"header field {key}", _HEADER_TEXT[key])
            else:
                raw[key] = r.uint(f"header field {key}")
        r.finish()
    except CborError as exc:
        raise _cbor_failure("header", exc) from None
    version, created_at, ct_len = int(raw["v"]), int(raw["created_at"]), int(raw["ct_len"])
    packet_id, station_id, suite = str(raw["packet_id"]), str(raw["station_id"]), str(raw["suite"])
    if version != expected_version:
        raise PacketError(f"header: format version {version} is not the envelope's {expected_version}")
    if suite not in SUITES:
        raise PacketError("header: unknown suite")
    if not (0 < len(station_id) <= 128) or not station_id.isprintable():
        raise PacketError("header: station_id is empty, too long or not printable")
    if not (0 <= created_at < 2**40):
        raise PacketError("header: created_at out of range")
    _check_uuid7(packet_id)
    header = PacketHeader(version, packet_id, station_id, created_at, suite, ct_len, summary)
    if header.to_cbor() != header_bytes:  # the reader is canonical-only: this is a second lock
        raise PacketError("header: not in canonical form")
    return header


def parse(envelope: bytes, *, max_size: int = MAX_PACKET_BYTES) -> Envelope:
    """Decode an envelope without any cryptography: a fixed-shape, bounded, linear-time read.

    Exactly ``[uint version, bytes header, bytes ciphertext, bytes signature]`` and nothing else;
    sizes are checked against their limits before a byte of the item is touched.
    """
    if not isinstance(envelope, bytes | bytearray | memoryview):
        raise PacketError("an envelope must be bytes")
    data = bytes(envelope)
    if len(data) > max_size:
        raise PacketError(
            f"the packet is {len(data)} bytes, over the {max_size}-byte limit", code="packet.size"
        )
    if len(data) < 8:
        raise PacketError("the packet is truncated", code="packet.cbor.truncated")
    try:
        r = Reader(data, Limits(max_bytes=max_size, max_depth=1, max_items=5))
        r.array(4, "envelope")
        version = r.uint("envelope version")
        if version not in READ_VERSIONS:
            raise PacketError("unsupported envelope version", code="packet.version")
        header_bytes = r.bytes_("header", _MAX_HEADER)
        ciphertext = r.bytes_("ciphertext", max_size)
        signature = r.bytes_("signature", _MAX_SIG)
        r.finish()
    except CborError as exc:
        raise _cbor_failure("envelope", exc) from None
    if len(signature) < 8:
        raise PacketError("signature has an impossible length")
    header = _parse_header(header_bytes, version)
    if header.ct_len != len(ciphertext) or len(ciphertext) <= _kem(header.suite).enc_length() + 16:
        raise PacketError("ciphertext length does not match the header")
    return Envelope(header=header, header_bytes=header_bytes, ciphertext=ciphertext, signature=signature)


def verify(
    envelope: bytes, station_public_key: ec.EllipticCurvePublicKey, *, max_size: int = MAX_PACKET_BYTES
) -> Envelope:
    """Parse and check the station's signature over header and ciphertext."""
    env = parse(envelope, max_size=max_size)
    if not isinstance(station_public_key.curve, ec.SECP256R1):
        raise PacketError("the station key is not ECDSA P-256")
    try:
        decode_dss_signature(env.signature)
        station_public_key.verify(env.signature, env.signed_bytes(), ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError) as exc:
        raise PacketError("the signature does not verify with the station's key") from exc
    return env


def open_packet(
    envelope: bytes,
    recipient_private_key: bytes,
    station_public_key: ec.EllipticCurvePublicKey,
    *,
    max_size: int = MAX_PACKET_BYTES,
) -> dict[str, Any]:
    """Central back office: verify, decrypt and decode the document (strictly)."""
    env = verify(envelope, station_public_key, max_size=max_size)
    private = _private_key(recipient_private_key, env.header.suite)
    try:
        plaintext = _suite(env.header.suite).decrypt(env.ciphertext, private, info=_info(env.header_bytes))
    except Exception as exc:  # InvalidTag or a malformed encapsulated key
        raise PacketError("the packet cannot be decrypted with this key (wrong key or damaged)") from exc
    try:
        document = decode(plaintext, Limits(max_bytes=max_size, **DOCUMENT_LIMITS))
    except CborError as exc:
        raise _cbor_failure("document", exc) from None
    if not isinstance(document, dict):
        raise PacketError("document: not a map", code="packet.document")
    return document
