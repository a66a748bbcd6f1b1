"""Append-only, hash-chained audit log of who did what, kept in the encrypted queue database.

Each entry is ``(seq, at, event, fields)``; its hash is SHA-256 over the previous entry's hash and
the entry's canonical JSON, so an edit, a deletion or a reorder anywhere breaks the chain at that
point. The head ``(seq, hash)`` travels with every heartbeat: the central office notices a history
that was rewound or rewritten even by someone holding the key.

Entries never hold PII. Events and field names are fixed identifiers; values are short codes
(packet ids, operator ids, error codes, counts). Anything that looks like a CNIC or a phone number,
or any free text, is refused with :class:`AuditError`: a programming mistake must not leak.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass

from packetformat.auditchain import entry_hash as chain_entry_hash
from station.errors import StationError
from station.store import Store

GENESIS = "0" * 64
EVENT_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")
FIELD_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
VALUE_RE = re.compile(r"^[A-Za-z0-9._:@/+-]{0,96}$")
# Identity numbers and phone numbers must never reach the log, whatever field they hide in: a CNIC
# or mobile number standing on its own between separators (not a run of digits inside a longer
# hex id such as a packet's UUID, whose last group can look like a phone number).
_EDGE_L, _EDGE_R = r"(?<![0-9A-Za-z])", r"(?![0-9A-Za-z])"
PII_RES = (
    re.compile(_EDGE_L + r"\d{5}-?\d{7}-?\d" + _EDGE_R),  # CNIC, with or without dashes
    re.compile(_EDGE_L + r"(\+92|0092|0)3\d{2}-?\d{7}" + _EDGE_R),  # Pakistani mobile
)
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
MAX_FIELDS = 12


class AuditError(StationError):
    code = "audit.invalid"


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: float
    event: str
    fields: dict[str, str | int]
    prev: str
    hash: str


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    entries: int
    head: str
    first_bad_seq: int | None = None
    problem: str = ""


def entry_hash(prev: str, seq: int, at: float, event: str, fields_json: str) -> str:
    """The entry's hash (``packetformat.auditchain``, which central uses to check segments)."""
    return chain_entry_hash(prev, seq, repr(at), event, fields_json)


def _check(event: str, fields: dict[str, str | int]) -> str:
    if not EVENT_RE.match(event) or len(event) > 64:
        raise AuditError(f"audit event name {event!r} is not an identifier", code="audit.bad_event")
    if len(fields) > MAX_FIELDS:
        raise AuditError("too many audit fields", code="audit.bad_field")
    clean: dict[str, str | int] = {}
    for name, value in fields.items():
        if not FIELD_RE.match(name):
            raise AuditError(f"audit field name {name!r} is not an identifier", code="audit.bad_field")
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise AuditError(f"audit field {name} must be a code or a whole number", code="audit.bad_field")
        if isinstance(value, str):
            if not VALUE_RE.match(value):
                raise AuditError(
                    f"audit field {name} holds free text: audit values are codes and ids only",
                    code="audit.free_text",
                )
            if not UUID_RE.match(value) and any(p.search(value) for p in PII_RES):
                raise AuditError(f"audit field {name} looks like personal data: refused", code="audit.pii")
        clean[name] = value
    return json.dumps(clean, sort_keys=True, ensure_ascii=True, separators=(",", ":"))


class AuditLog:
    """The audit log of one station, in its queue database."""

    def __init__(self, store: Store, *, clock: object = None) -> None:
        self.store = store
        self._clock = clock if callable(clock) else time.time

    def append(self, event: str, **fields: str | int) -> AuditEntry:
        """Add an entry; inside an open :meth:`Store.transaction` it commits with that transaction."""
        fields_json = _check(event, fields)
        with self.store.transaction() as conn:
            row = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
            seq, prev = (int(row[0]) + 1, str(row[1])) if row else (1, GENESIS)
            at = float(self._clock())
            digest = entry_hash(prev, seq, at, event, fields_json)
            conn.execute(
                "INSERT INTO audit (seq, at, event, fields, prev, hash) VALUES (?, ?, ?, ?, ?, ?)",
                (seq, at, event, fields_json, prev, digest),
            )
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('audit_head', ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (f"{seq}:{digest}",),
            )
            key = self.store.anchor_key
            if key is not None:  # the rollback anchor moves forward once this entry is durable
                from station.anchor import anchor_path, write_anchor

                path = anchor_path(self.store)
                self.store.after_commit(lambda: write_anchor(path, key, seq, digest))
        return AuditEntry(seq, at, event, json.loads(fields_json), prev, digest)

    def head(self) -> tuple[int, str]:
        """(sequence number, hash) of the newest entry; (0, zeros) for an empty log."""
        rows = self.store._query("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
        return (int(rows[0][0]), str(rows[0][1])) if rows else (0, GENESIS)

    def entries(self, *, after: int = 0, limit: int | None = None) -> Iterator[AuditEntry]:
        sql = "SELECT seq, at, event, fields, prev, hash FROM audit WHERE seq > ? ORDER BY rowid"
        args: tuple[int, ...] = (after,)
        if limit is not None:
            sql += " LIMIT ?"
            args = (after, limit)
        for seq, at, event, fields_json, prev, digest in self.store._query(sql, args):
            try:
                fields = json.loads(fields_json)
            except ValueError:
                fields = {"_unreadable": 1}
            yield AuditEntry(int(seq), float(at), str(event), fields, str(prev), str(digest))

    def tail(self, n: int = 20) -> list[AuditEntry]:
        seq, _ = self.head()
        return list(self.entries(after=max(0, seq - n)))

    def verify(self) -> VerifyResult:
        """Walk the whole chain; report the first entry where it breaks."""
        prev, expected_seq, count = GENESIS, 1, 0
        rows = self.store._query("SELECT seq, at, event, fields, prev, hash FROM audit ORDER BY rowid")
        for seq, at, event, fields_json, stored_prev, digest in rows:
            seq = int(seq)
            if seq != expected_seq:
                what = "missing entries (deleted)" if seq > expected_seq else "entries out of order"
                return VerifyResult(False, count, prev, expected_seq, f"{what} at #{expected_seq}")
            if stored_prev != prev:
                return VerifyResult(False, count, prev, seq, f"entry #{seq} does not follow #{seq - 1}")
            if entry_hash(prev, seq, float(at), str(event), str(fields_json)) != digest:
                return VerifyResult(False, count, prev, seq, f"entry #{seq} was modified")
            prev, expected_seq, count = str(digest), seq + 1, count + 1
        recorded = self.store.meta_get("audit_head")
        if recorded is not None and recorded != f"{count}:{prev}":
            return VerifyResult(
                False,
                count,
                prev,
                count + 1,
                f"the newest entries were removed (head was #{recorded.split(':')[0]})",
            )
        return VerifyResult(True, count, prev)
