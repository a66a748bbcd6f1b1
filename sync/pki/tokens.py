"""One-time enrollment tokens: random, stored only as SHA-256 hashes, single use, with expiry.

A technician gets a token from ``central token new --station ID`` and types it into
``station provision``. Redemption is one UPDATE guarded by ``used_at IS NULL AND expires_at > now``,
so two concurrent redemptions of one token cannot both succeed.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import sqlite3
import time
from pathlib import Path
from typing import Protocol

TOKEN_BYTES = 20
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``15m``, ``24h``, ``7d`` -> seconds; ``ValueError`` otherwise."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30m, 24h or 7d)")
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    return seconds


def token_hash(token: str) -> str:
    return hashlib.sha256(token.strip().encode()).hexdigest()


class TokenBackend(Protocol):
    """Where tokens live: :class:`TokenStore` (SQLite ``pki.db``) or PostgreSQL (``sync.central.pg_pki``)."""

    def new(self, station_id: str, ttl_s: float, *, now: float | None = None) -> str: ...
    def redeem(self, token: str, station_id: str, *, now: float | None = None) -> bool: ...
    def unredeem(self, token: str, *, used_at: float) -> None: ...
    def pending(self, *, now: float | None = None) -> list[tuple[str, float]]: ...


class TokenStore:
    """Tokens in ``pki.db`` (table ``tokens``); one short-lived connection per call."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        with self._connect() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS tokens ("
                " token_hash TEXT PRIMARY KEY, station_id TEXT NOT NULL,"
                " created_at REAL NOT NULL, expires_at REAL NOT NULL, used_at REAL)"
            )

    def _connect(self) -> sqlite3.Connection:
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.db_path, timeout=10, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        return conn

    def new(self, station_id: str, ttl_s: float, *, now: float | None = None) -> str:
        """Create a token for ``station_id`` valid for ``ttl_s`` seconds; returns it (once)."""
        t = time.time() if now is None else now
        token = secrets.token_urlsafe(TOKEN_BYTES)
        conn = self._connect()
        try:
            conn.execute(
                "INSERT INTO tokens(token_hash, station_id, created_at, expires_at) VALUES (?,?,?,?)",
                (token_hash(token), station_id, t, t + ttl_s),
            )
        finally:
            conn.close()
        return token

    def redeem(self, token: str, station_id: str, *, now: float | None = None) -> bool:
        """Consume ``token`` for ``station_id``: True once, False if unknown, used, expired or other id."""
        t = time.time() if now is None else now
        conn = self._connect()
        try:
            cur = conn.execute(
                "UPDATE tokens SET used_at=? WHERE token_hash=? AND station_id=?"
                " AND used_at IS NULL AND expires_at > ?",
                (t, token_hash(token), station_id, t),
            )
            return cur.rowcount == 1
        finally:
            conn.close()

    def unredeem(self, token: str, *, used_at: float) -> None:
        """Give a token back when the issuance it paid for failed afterwards (same transaction owner)."""
        conn = self._connect()
        try:
            conn.execute(
                "UPDATE tokens SET used_at=NULL WHERE token_hash=? AND used_at=?",
                (token_hash(token), used_at),
            )
        finally:
            conn.close()

    def pending(self, *, now: float | None = None) -> list[tuple[str, float]]:
        """(station_id, expires_at) of unused, unexpired tokens."""
        t = time.time() if now is None else now
        conn = self._connect()
        try:
            rows = conn.execute(
                "SELECT station_id, expires_at FROM tokens WHERE used_at IS NULL AND expires_at > ?"
                " ORDER BY expires_at",
                (t,),
            ).fetchall()
        finally:
            conn.close()
        return [(str(r[0]), float(r[1])) for r in rows]
