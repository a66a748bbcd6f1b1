"""Acknowledging a detected rollback: a technician accepts the queue as it is, and says so.

:mod:`station.anchor` detects that ``queue.db`` was restored or rewritten and refuses to run;
``station audit acknowledge-rollback`` calls :func:`acknowledge`, which records both heads in the
audit chain and moves the anchor to the queue's head. Kept apart from the anchor so that the audit
log (which moves the anchor after each entry) and the anchor never import each other.
"""

from __future__ import annotations

from station.anchor import META_KEY, RolledBack, _head, anchor_path, read_anchor, write_anchor
from station.audit import AuditLog
from station.store import Store


def acknowledge(store: Store, key: bytes) -> tuple[int, int]:
    """Accept the queue as it is: audit both heads, move the anchor to the queue's head.

    Returns (the anchor's number, the queue's number) as they were."""
    path = anchor_path(store)
    try:
        anchor = read_anchor(path, key)
        was = anchor.seq if anchor is not None else -1
    except RolledBack:
        was = -2  # damaged or foreign
    seq, _ = _head(store)
    entry = AuditLog(store).append("audit.rollback_acknowledged", anchor_seq=was, queue_seq=seq, by="cli")
    with store.transaction() as conn:
        conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, '1')", (META_KEY,))
    path.unlink(missing_ok=True)
    write_anchor(path, key, entry.seq, entry.hash)
    return was, seq
