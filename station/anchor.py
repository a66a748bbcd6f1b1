"""Rollback detection: the audit head kept outside the queue database, MACed, checked at start-up.

Restoring an old copy of ``queue.db`` (and its WAL) silently drops the newest sealed enrollments
and audit entries: the chain in the old copy is still intact. After every committed audit entry
the station writes ``queue.anchor`` beside the queue: the newest ``(seq, hash)`` and an HMAC-SHA256
under a key derived from the database key (a copy of the file cannot be edited to match an old
queue without the key). :func:`check` runs whenever a station is opened:

* the queue's head is older than the anchor, or its entry at the anchor's number is not the
  anchored one: the queue was rolled back or rewritten, :class:`RolledBack` is raised and the
  station refuses to run;
* the anchor file is gone or damaged although this queue has used one: the same refusal;
* the anchor lags behind the queue (a crash between the commit and the anchor's write, or two
  processes racing): fine, it only ever moves forward.

A technician who has understood what happened (restored from a backup on purpose, say) runs
``station audit acknowledge-rollback``: an ``audit.rollback_acknowledged`` entry records both heads,
and the anchor moves to the queue's head. Where the board has a TPM, a monotonic NV counter is the
stronger anchor (docs/security.md says how); the MACed file is what every station has.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from station.errors import StoreError
from station.store import Store

ANCHOR_SUFFIX = ".anchor"
META_KEY = "anchor_in_use"
MAX_ANCHOR_BYTES = 4096


class RolledBack(StoreError):
    code = "store.rolled_back"


@dataclass(frozen=True)
class Anchor:
    seq: int
    hash: str


def anchor_key(db_key: bytes) -> bytes:
    return hmac.new(db_key, b"station audit anchor v1", hashlib.sha256).digest()


def anchor_path(store: Store) -> Path:
    return store.path.with_name(store.path.name.removesuffix(".db") + ANCHOR_SUFFIX)


def _mac(key: bytes, seq: int, digest: str) -> str:
    return hmac.new(key, f"{seq}:{digest}".encode("ascii"), hashlib.sha256).hexdigest()


def read_anchor(path: Path, key: bytes) -> Anchor | None:
    """The anchor in ``path``; None when there is none; :class:`RolledBack` when it is not genuine."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_ANCHOR_BYTES + 1)
    except FileNotFoundError:
        return None
    try:
        data = json.loads(raw.decode("ascii"))
        seq, digest, mac = int(data["seq"]), str(data["hash"]), str(data["mac"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise _refusal(f"the anchor file {path} is damaged") from exc
    if len(raw) > MAX_ANCHOR_BYTES or not hmac.compare_digest(mac, _mac(key, seq, digest)):
        raise _refusal(f"the anchor file {path} was not written by this station")
    return Anchor(seq, digest)


def write_anchor(path: Path, key: bytes, seq: int, digest: str) -> None:
    """Record ``(seq, digest)`` unless the anchor already stands at ``seq`` or later (never backwards)."""
    try:
        current = read_anchor(path, key)
    except RolledBack:
        current = None  # a damaged file is replaced by a genuine one only here, after a commit
    if current is not None and current.seq >= seq:
        return
    body = json.dumps({"seq": seq, "hash": digest, "mac": _mac(key, seq, digest)}, sort_keys=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, body.encode("ascii"))
        os.fsync(fd)  # the old or the new anchor after a power cut, never an empty file
    finally:
        os.close(fd)
    try:
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _refusal(what: str) -> RolledBack:
    return RolledBack(
        f"The station's queue is not the one it last wrote ({what}): an old copy of queue.db may have"
        " been restored, and enrollments sealed since then would be lost without anyone noticing. The"
        " station will not run. Find out what happened; then a technician acknowledges it with:"
        " station audit acknowledge-rollback",
        urdu="اسٹیشن کا ڈیٹا پرانی نقل سے بدلا گیا ہے: اسٹیشن بند ہے۔ ٹیکنیشن کو بلائیں۔",
    )


def _entry_hash(store: Store, seq: int) -> str | None:
    rows = store._query("SELECT hash FROM audit WHERE seq = ?", (seq,))
    return str(rows[0][0]) if rows else None


def _head(store: Store) -> tuple[int, str]:
    rows = store._query("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
    return (int(rows[0][0]), str(rows[0][1])) if rows else (0, "0" * 64)


def check(store: Store, key: bytes) -> None:
    """Refuse a queue older than (or different from) its anchor; start anchoring a queue that has none."""
    path = anchor_path(store)
    seq, digest = _head(store)
    anchor = read_anchor(path, key)
    if anchor is None:
        if store.meta_get(META_KEY) is not None:
            raise _refusal(f"the anchor file {path} is missing")
        with store.transaction() as conn:
            conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, '1')", (META_KEY,))
        write_anchor(path, key, seq, digest)
        return
    if seq < anchor.seq:
        raise _refusal(f"the queue's audit log ends at #{seq}, the station had written #{anchor.seq}")
    if _entry_hash(store, anchor.seq) != anchor.hash:
        raise _refusal(f"the queue's audit entry #{anchor.seq} is not the one the station wrote")
    if store.meta_get(META_KEY) is None:
        store.meta_set(META_KEY, "1")
