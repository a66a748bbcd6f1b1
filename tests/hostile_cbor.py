"""Hostile CBOR from the security review, rebuilt byte by byte for the regression tests.

- :func:`shared_dag`: value sharing (tags 28/29) that expands to 2^n nodes; as a map key, a
  decoder that hashes keys walks all of them.
- :func:`dag_envelope`: the 335-byte class of envelope whose header is such a map.
- :func:`sealed_plaintext`: a correctly sealed and signed envelope around arbitrary plaintext
  bytes, which ingest cannot look into (the 508-byte ``central open`` variant).
- :func:`empty_arrays`: 8 MiB of empty arrays in one array.
"""

from __future__ import annotations

import time

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from packetformat.packet import (
    PacketHeader,
    _info,
    _kem,
    _public_key,
    _signed_bytes,
    _suite,
    uuid7,
)


def shared_dag(levels: int) -> bytes:
    """``[v0 .. vn]``, v0 = 28([]) and v_i = 28([29(i-1), 29(i-1)]): 2^n nodes once expanded."""
    parts = [b"\xd8\x1c\x80"]
    for i in range(1, levels + 1):
        ref = b"\xd8\x1d" + cbor2.dumps(i - 1)
        parts.append(b"\xd8\x1c\x82" + ref + ref)
    return bytes([0x98, levels + 1]) + b"".join(parts)


def dag_map(levels: int) -> bytes:
    """A one-entry map whose key is the DAG."""
    return b"\xa1" + shared_dag(levels) + b"\x00"


def dag_envelope(levels: int = 30) -> bytes:
    """A 4-element envelope whose header is :func:`dag_map`."""
    return b"\x84\x01" + cbor2.dumps(dag_map(levels)) + cbor2.dumps(bytes(48)) + cbor2.dumps(bytes(8))


def empty_arrays(total: int = 8 * 1024 * 1024) -> bytes:
    """One array of ``total - 5`` empty arrays: ``total`` bytes."""
    n = total - 5
    return b"\x9a" + n.to_bytes(4, "big") + b"\x80" * n


def sealed_plaintext(
    plaintext: bytes,
    *,
    station_id: str,
    identity_key: ec.EllipticCurvePrivateKey,
    recipient_public_key: bytes,
    suite: str = "x25519",
) -> tuple[str, bytes]:
    """(packet_id, envelope) sealing ``plaintext`` as is, validly signed: only opening can refuse it."""
    created = int(time.time())
    packet_id = uuid7()
    ct_len = _kem(suite).enc_length() + len(plaintext) + 16
    header = PacketHeader(1, packet_id, station_id, created, suite, ct_len).to_cbor()  # version 1: no summary
    ciphertext = _suite(suite).encrypt(
        plaintext, _public_key(recipient_public_key, suite), info=_info(header)
    )
    signature = identity_key.sign(_signed_bytes(header, ciphertext), ec.ECDSA(hashes.SHA256()))
    return packet_id, cbor2.dumps([1, header, ciphertext, signature], canonical=True)
