"""What became of this station's packets downstream, as central reports them: kept beside each packet.

The agent pulls the signed outcome lists (``es-outcomes/1``, central's policy key) and
:func:`install_outcomes` stores each one in the ``outcomes`` table of the queue database, keyed by
the packet id, with the packet's tracking number; a later outcome of the same packet replaces the
earlier one. Nothing here is PII: packet ids, tracking numbers, dates and reason codes (and the short
note of a re-enroll for "other"). The kiosk shows :func:`to_reenroll` and :func:`lookup` by tracking
number; ``station status`` shows :func:`counts`.

Payload of an outcome list::

    {"station_id": ..., "after": 12, "more": false,
     "outcomes": [{"seq": 13, "packet_id": ..., "outcome": "re-enroll", "reason": "finger_quality",
                   "note": "", "decided_at": "2026-12-03T10:00:00Z"}]}
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric import ed25519

from station.errors import StationError
from station.policy.model import PolicyError
from station.policy.signed import OUTCOMES, open_document
from station.wizard import tracking_number

OUTCOME_KINDS = ("accepted", "re-enroll", "rejected")
MAX_OUTCOMES = 500
SEQ_META = "outcomes_seq"
_DECIDED_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
_CODE_RE = re.compile(r"^[A-Za-z0-9_-]{0,40}$")

#: Re-enroll reason codes and rejection codes the kiosk can name, in English and Urdu.
REASON_LABELS: dict[str, tuple[str, str]] = {
    "face_quality": ("Photograph quality", "تصویر کا معیار"),
    "finger_quality": ("Fingerprint quality", "انگلیوں کے نشانات کا معیار"),
    "missing_document": ("Missing document", "دستاویز موجود نہیں"),
    "other": ("Other", "دیگر"),
    "duplicate": ("Already registered", "پہلے سے رجسٹرڈ"),
    "fraud": ("Documents not genuine", "دستاویزات درست نہیں"),
}
OUTCOME_LABELS: dict[str, tuple[str, str]] = {
    "accepted": ("Accepted", "منظور"),
    "re-enroll": ("To re-enroll", "دوبارہ اندراج"),
    "rejected": ("Rejected", "مسترد"),
    "pending": ("Being processed", "زیر کارروائی"),
}


class _Store(Protocol):
    def select(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]: ...
    def transaction(self) -> Any: ...
    def meta_get(self, key: str) -> str | None: ...
    def meta_set(self, key: str, value: str) -> None: ...


class _Audit(Protocol):
    def append(self, event: str, **fields: Any) -> Any: ...


@dataclass(frozen=True)
class Outcome:
    packet_id: str
    tracking: str
    seq: int
    outcome: str
    reason: str
    note: str
    decided_at: str

    def label(self, urdu: bool = False) -> str:
        en, ur = OUTCOME_LABELS.get(self.outcome, (self.outcome, self.outcome))
        return ur if urdu else en

    def reason_label(self, urdu: bool = False) -> str:
        if not self.reason:
            return ""
        en, ur = REASON_LABELS.get(self.reason, (self.reason, self.reason))
        text = ur if urdu else en
        return f"{text}: {self.note}" if self.note else text


def _bad(what: str) -> PolicyError:
    return PolicyError(
        f"The outcome list from central is malformed ({what}): nothing was stored.", code="outcomes.malformed"
    )


def parse_outcomes(doc: dict[str, Any], *, station_id: str) -> tuple[list[Outcome], bool]:
    """The outcomes of a verified list for ``station_id`` and whether central has more."""
    if set(doc) != {"station_id", "after", "outcomes", "more"}:
        raise _bad("wrong set of fields")
    if doc["station_id"] != station_id:
        raise PolicyError(
            "The outcome list is for another station: nothing was stored.", code="outcomes.other_station"
        )
    if type(doc["after"]) is not int or type(doc["more"]) is not bool:
        raise _bad("after or more")
    items = doc["outcomes"]
    if not isinstance(items, list) or len(items) > MAX_OUTCOMES:
        raise _bad("outcomes")
    out: list[Outcome] = []
    keys = {"seq", "packet_id", "outcome", "reason", "note", "decided_at"}
    last = doc["after"]
    for item in items:
        if not isinstance(item, dict) or set(item) != keys:
            raise _bad("an outcome entry")
        seq, pid = item["seq"], item["packet_id"]
        if type(seq) is not int or seq <= last or seq >= 2**53:
            raise _bad("outcome sequence numbers must rise")
        last = seq
        try:
            if not isinstance(pid, str) or str(uuid.UUID(pid)) != pid:
                raise ValueError
        except ValueError:
            raise _bad("a packet id") from None
        reason, note, decided = item["reason"], item["note"], item["decided_at"]
        if item["outcome"] not in OUTCOME_KINDS or not isinstance(reason, str) or not _CODE_RE.match(reason):
            raise _bad("an outcome or reason code")
        if not isinstance(note, str) or len(note) > 200 or any(ord(c) < 32 for c in note):
            raise _bad("a note")
        if not isinstance(decided, str) or not _DECIDED_RE.match(decided):
            raise _bad("a decision date")
        out.append(Outcome(pid, tracking_number(pid), seq, item["outcome"], reason, note, decided))
    return out, doc["more"]


def held_seq(store: _Store) -> int:
    raw = store.meta_get(SEQ_META)
    return int(raw) if raw and raw.isdigit() else 0


def install_outcomes(
    store: _Store,
    audit: _Audit,
    envelope: bytes,
    public_key: ed25519.Ed25519PublicKey,
    *,
    station_id: str,
    now: float | None = None,
) -> tuple[int, bool]:
    """Verify a signed outcome list and store its outcomes; (how many were stored, more to fetch)."""
    outcomes, more = parse_outcomes(open_document(OUTCOMES, envelope, public_key), station_id=station_id)
    stamp = time.time() if now is None else now
    stored = 0
    with store.transaction() as conn:
        seq = held_seq(store)
        for o in outcomes:
            if o.seq <= seq:
                continue  # already have it (a replayed list changes nothing)
            conn.execute(
                "INSERT INTO outcomes (packet_id, tracking, seq, outcome, reason, note, decided_at,"
                " received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (packet_id) DO UPDATE SET"
                " seq = excluded.seq, outcome = excluded.outcome, reason = excluded.reason,"
                " note = excluded.note, decided_at = excluded.decided_at, received_at = excluded.received_at",
                (o.packet_id, o.tracking, o.seq, o.outcome, o.reason, o.note, o.decided_at, stamp),
            )
            audit.append("outcome.received", packet=o.packet_id, outcome=o.outcome, reason=o.reason or "-")
            stored += 1
            seq = o.seq
        store.meta_set(SEQ_META, str(seq))
    return stored, more


_COLUMNS = "packet_id, tracking, seq, outcome, reason, note, decided_at"


def _rows(store: _Store, where: str, args: tuple[Any, ...]) -> list[Outcome]:
    rows = store.select(f"SELECT {_COLUMNS} FROM outcomes {where}", args)
    return [
        Outcome(str(r[0]), str(r[1]), int(r[2]), str(r[3]), str(r[4]), str(r[5]), str(r[6])) for r in rows
    ]


def to_reenroll(store: _Store, limit: int = 200) -> list[Outcome]:
    """Packets central sent back for re-enrollment, newest decision first."""
    return _rows(store, "WHERE outcome = 're-enroll' ORDER BY decided_at DESC, seq DESC LIMIT ?", (limit,))


def normalise_tracking(text: str) -> str:
    """``abcd efgh ijkl`` or ``ABCDEFGHIJKL`` as ``ABCD-EFGH-IJKL``; unchanged unless 12 characters."""
    raw = re.sub(r"[\s-]", "", text or "").upper()
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:12]}" if len(raw) == 12 and raw.isalnum() and raw.isascii() else text


@dataclass(frozen=True)
class Lookup:
    tracking: str
    state: str  # accepted, re-enroll, rejected, pending
    outcome: Outcome | None
    created_at: float | None


class NotFound(StationError):
    code = "outcomes.not_found"


def lookup(store: _Store, tracking: str) -> Lookup:
    """What became of the application with ``tracking`` number (a packet of this station)."""
    number = normalise_tracking(tracking)
    found = _rows(store, "WHERE tracking = ?", (number,))
    rows = store.select("SELECT packet_id, created_at FROM packets ORDER BY created_at DESC LIMIT 100000")
    created = {str(r[0]): float(r[1]) for r in rows}
    if found:
        return Lookup(number, found[0].outcome, found[0], created.get(found[0].packet_id))
    for pid, at in created.items():
        if tracking_number(pid) == number:
            return Lookup(number, "pending", None, at)
    raise NotFound(
        f"No application with tracking number {number} was made at this station: check the number on"
        " the receipt.",
        urdu=f"اس اسٹیشن پر ٹریکنگ نمبر \u2066{number}\u2069 کی کوئی درخواست نہیں: رسید پر نمبر دیکھیں۔",
    )


def counts(store: _Store) -> dict[str, int]:
    result = dict.fromkeys(OUTCOME_KINDS, 0)
    for outcome, n in store.select("SELECT outcome, count(*) FROM outcomes GROUP BY outcome"):
        result[str(outcome)] = int(n)
    return result
