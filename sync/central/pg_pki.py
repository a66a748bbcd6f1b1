"""Enrollment tokens and the certificate registry in PostgreSQL, shared by every central node.

The same rules as the SQLite stores in ``sync.pki`` (:class:`~sync.pki.tokens.TokenStore`,
:class:`~sync.pki.issue.CertRegistry`): a token is redeemed by one guarded UPDATE, so of two nodes
redeeming the same token at once exactly one succeeds; revocations are rows every node reads when
it republishes its CRL.
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from typing import Any

import psycopg
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from psycopg_pool import ConnectionPool

from sync.pki.ca import uri_sans
from sync.pki.issue import IssuedCert
from sync.pki.tokens import TOKEN_BYTES, token_hash

Conn = psycopg.Connection[tuple[Any, ...]]


class PgTokenStore:
    def __init__(self, pool: ConnectionPool[Conn]) -> None:
        self.pool = pool

    def new(self, station_id: str, ttl_s: float, *, now: float | None = None) -> str:
        t = time.time() if now is None else now
        token = secrets.token_urlsafe(TOKEN_BYTES)
        with self.pool.connection() as conn:
            conn.execute(
                "INSERT INTO tokens(token_hash, station_id, created_at, expires_at) VALUES (%s,%s,%s,%s)",
                (token_hash(token), station_id, t, t + ttl_s),
            )
        return token

    def redeem(self, token: str, station_id: str, *, now: float | None = None) -> bool:
        t = time.time() if now is None else now
        with self.pool.connection() as conn:
            cur = conn.execute(
                "UPDATE tokens SET used_at=%s WHERE token_hash=%s AND station_id=%s"
                " AND used_at IS NULL AND expires_at > %s",
                (t, token_hash(token), station_id, t),
            )
            return cur.rowcount == 1

    def unredeem(self, token: str, *, used_at: float) -> None:
        with self.pool.connection() as conn:
            conn.execute(
                "UPDATE tokens SET used_at=NULL WHERE token_hash=%s AND used_at=%s",
                (token_hash(token), used_at),
            )

    def pending(self, *, now: float | None = None) -> list[tuple[str, float]]:
        t = time.time() if now is None else now
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT station_id, expires_at FROM tokens WHERE used_at IS NULL AND expires_at > %s"
                " ORDER BY expires_at",
                (t,),
            ).fetchall()
        return [(str(r[0]), float(r[1])) for r in rows]


class PgCertRegistry:
    def __init__(self, pool: ConnectionPool[Conn]) -> None:
        self.pool = pool

    def record(self, cert: x509.Certificate) -> None:
        subject = (uri_sans(cert) or ["?"])[0]
        with self.pool.connection() as conn:
            conn.execute(
                "INSERT INTO certificates(serial, subject, not_before, not_after, der)"
                " VALUES (%s,%s,%s,%s,%s)",
                (
                    format(cert.serial_number, "x"),
                    subject,
                    cert.not_valid_before_utc.timestamp(),
                    cert.not_valid_after_utc.timestamp(),
                    cert.public_bytes(serialization.Encoding.DER),
                ),
            )

    def revoke_subject(self, subject: str, *, now: float) -> int:
        with self.pool.connection() as conn:
            cur = conn.execute(
                "UPDATE certificates SET revoked_at=%s WHERE subject=%s AND revoked_at IS NULL",
                (now, subject),
            )
            return cur.rowcount

    def revoke_serial(self, serial_hex: str, *, now: float) -> int:
        with self.pool.connection() as conn:
            cur = conn.execute(
                "UPDATE certificates SET revoked_at=%s WHERE serial=%s AND revoked_at IS NULL",
                (now, serial_hex.lower().lstrip("0") or "0"),
            )
            return cur.rowcount

    def revoked(self, *, now: float) -> list[tuple[int, float]]:
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT serial, revoked_at FROM certificates WHERE revoked_at IS NOT NULL AND not_after > %s"
                " ORDER BY revoked_at",
                (now - 86400,),
            ).fetchall()
        return [(int(r[0], 16), float(r[1])) for r in rows]

    def revocation_stamp(self) -> tuple[int, float]:
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT count(*), coalesce(max(revoked_at), 0) FROM certificates WHERE revoked_at IS NOT NULL"
            ).fetchone()
        return (0, 0.0) if row is None else (int(row[0]), float(row[1]))

    def is_revoked(self, serial: int) -> bool:
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT revoked_at FROM certificates WHERE serial=%s", (format(serial, "x"),)
            ).fetchone()
        return row is not None and row[0] is not None

    def latest(self) -> dict[str, IssuedCert]:
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT serial, subject, not_before, not_after, revoked_at FROM certificates"
                " ORDER BY not_before"
            ).fetchall()
        out: dict[str, IssuedCert] = {}
        for serial, subject, nb, na, rev in rows:
            out[str(subject)] = IssuedCert(
                int(serial, 16),
                str(subject),
                dt.datetime.fromtimestamp(float(nb), dt.UTC),
                dt.datetime.fromtimestamp(float(na), dt.UTC),
                None if rev is None else dt.datetime.fromtimestamp(float(rev), dt.UTC),
            )
        return out
