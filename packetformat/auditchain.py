"""The station's audit chain as station and central both read it: entry hashes, signed heads, segments.

An entry's hash is SHA-256 over the previous entry's hash and the canonical JSON of
``[seq, repr(at), event, fields_json]`` (``station.audit`` writes it). With every heartbeat the
station sends its head ``(seq, hash)`` signed with its identity key (ECDSA P-256, the key of its TLS
certificate) and the *segment*: the entries after the head central last accepted, each as
``[seq, at, event, fields_json, prev, hash]`` (``at`` as the text ``repr`` gave). Central checks the
signature against the client certificate and that the segment starts at the head it holds, links
entry to entry, recomputes to every hash and ends at the new head: a history rewritten with the
database key, even with a recomputed chain, no longer extends what central already received.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

GENESIS = "0" * 64
MAX_SEGMENT = 64  # entries per heartbeat (within its 64 KiB); a station far behind catches up over several
MAX_FIELDS_JSON = 2048
_HEX64 = re.compile(r"[0-9a-f]{64}")
_EVENT = re.compile(r"[a-z][a-z0-9_.]{0,63}")
_AT = re.compile(r"[0-9][0-9.e+-]{0,31}")


def entry_hash(prev: str, seq: int, at_text: str, event: str, fields_json: str) -> str:
    body = json.dumps([seq, at_text, event, fields_json], ensure_ascii=True, separators=(",", ":"))
    return hashlib.sha256(bytes.fromhex(prev) + body.encode("ascii")).hexdigest()


def head_message(station_id: str, seq: int, head: str) -> bytes:
    return f"station-audit-head/1\n{station_id}\n{seq}\n{head}".encode("ascii")


def sign_head(key: ec.EllipticCurvePrivateKey, station_id: str, seq: int, head: str) -> bytes:
    return key.sign(head_message(station_id, seq, head), ec.ECDSA(hashes.SHA256()))


def head_signature_ok(public: Any, station_id: str, seq: int, head: str, signature: bytes) -> bool:
    if not isinstance(public, ec.EllipticCurvePublicKey):
        return False
    try:
        public.verify(signature, head_message(station_id, seq, head), ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return False
    return True


def parse_segment(raw: Any) -> list[tuple[int, str, str, str, str, str]]:
    """A segment from JSON, each entry's types and sizes checked; ``ValueError`` otherwise."""
    if not isinstance(raw, list) or len(raw) > MAX_SEGMENT:
        raise ValueError(f"audit_segment must be a list of at most {MAX_SEGMENT} entries")
    out: list[tuple[int, str, str, str, str, str]] = []
    for item in raw:
        if not isinstance(item, list) or len(item) != 6:
            raise ValueError("an audit_segment entry is [seq, at, event, fields, prev, hash]")
        seq, at, event, fields, prev, digest = item
        if isinstance(seq, bool) or not isinstance(seq, int) or not 1 <= seq <= 2**53:
            raise ValueError("an audit_segment entry's seq is not a positive integer")
        texts = (at, event, fields, prev, digest)
        if not all(isinstance(t, str) for t in texts) or len(fields) > MAX_FIELDS_JSON:
            raise ValueError("an audit_segment entry holds a value of the wrong type or size")
        if not (_AT.fullmatch(at) and _EVENT.fullmatch(event) and fields.isascii()):
            raise ValueError("an audit_segment entry is not in the expected form")
        if not (_HEX64.fullmatch(prev) and _HEX64.fullmatch(digest)):
            raise ValueError("an audit_segment entry's hashes are not 64 hex digits")
        out.append((seq, at, event, fields, prev, digest))
    return out


def segment_problem(
    prev_seq: int, prev_head: str, segment: list[tuple[int, str, str, str, str, str]], seq: int, head: str
) -> str | None:
    """Why ``segment`` does not carry the chain from (prev_seq, prev_head) to (seq, head); None if it does."""
    if seq == prev_seq:
        return None if head == prev_head and not segment else f"the head changed at #{seq}"
    if not segment:
        return f"no chain segment from #{prev_seq} to #{seq}"
    # The segment may start before central's head (a station that does not know what central holds
    # sends its newest entries): the overlap must be what central received, then it must link on.
    overlap = [e for e in segment if e[0] <= prev_seq]
    if overlap and overlap[-1][0] == prev_seq and overlap[-1][5] != prev_head:
        return f"entry #{prev_seq} is not the one central received: the history was rewritten"
    rest = [e for e in segment if e[0] > prev_seq]
    expect_seq, expect_prev = prev_seq + 1, prev_head or GENESIS
    for entry_seq, at, event, fields, prev, digest in rest:
        if entry_seq != expect_seq:
            return f"the segment skips from #{expect_seq - 1} to #{entry_seq}: it cannot be checked"
        if prev != expect_prev:
            return f"entry #{entry_seq} does not extend #{entry_seq - 1} as central received it"
        if entry_hash(prev, entry_seq, at, event, fields) != digest:
            return f"entry #{entry_seq} does not hash to what the station claims"
        expect_seq, expect_prev = entry_seq + 1, digest
    if (expect_seq - 1, expect_prev) != (seq, head):
        return f"the segment ends at #{expect_seq - 1}, not at the signed head #{seq}"
    return None
