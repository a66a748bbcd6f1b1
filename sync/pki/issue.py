"""Issuing station and ops certificates from CSRs, and the registry of what was issued.

Station certificates: SAN URI ``urn:station:<id>``, EKU clientAuth, EC P-256, default 30 days.
The CSR must prove possession of its key (signature), be EC P-256 and name exactly the station's
URI (or carry no SAN: central adds it). The registry (table ``certificates`` in ``pki.db``) keeps
every certificate issued so ``central revoke ID`` can revoke them all and ``central status`` can
show expiry.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from sync.common.wire import (
    BACKOFFICE_URI_PREFIX,
    DEFAULT_CERT_DAYS,
    OPS_NAME_RE,
    OPS_URI_PREFIX,
    STATION_URI_PREFIX,
    station_uri,
    valid_station_id,
)
from sync.pki.ca import CA, PKIError, issue_leaf, uri_sans


class CSRError(PKIError):
    """A CSR that is malformed, not self-signed correctly, of the wrong key type or for another id."""

    code = "pki.bad_csr"


def load_csr(pem: str | bytes) -> x509.CertificateSigningRequest:
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        csr = x509.load_pem_x509_csr(data)
    except (ValueError, x509.InvalidVersion) as exc:
        raise CSRError("the CSR is not a PEM certificate signing request") from exc
    try:  # a malformed or unsupported public key surfaces only here, as ValueError (found by fuzzing)
        valid = csr.is_signature_valid
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise CSRError("the CSR's public key is malformed or of an unsupported type") from exc
    if not valid:
        raise CSRError("the CSR signature does not verify (no proof of key possession)")
    return csr


def check_station_csr(csr: x509.CertificateSigningRequest, station_id: str) -> ec.EllipticCurvePublicKey:
    """The CSR's public key if it may become ``station_id``'s certificate; :class:`CSRError` otherwise."""
    if not valid_station_id(station_id):
        raise CSRError("the station id is not valid (letters, digits, '.', '_', '-'; at most 64)")
    try:
        key = csr.public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise CSRError("the CSR's public key is malformed or of an unsupported type") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise CSRError("the CSR key must be EC P-256 (the station identity key)")
    try:
        ext = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return key
    except ValueError as exc:
        raise CSRError("the CSR extensions are malformed") from exc
    uris = [str(u) for u in ext.value.get_values_for_type(x509.UniformResourceIdentifier)]
    others = [g for g in ext.value if not isinstance(g, x509.UniformResourceIdentifier)]
    if others or uris != [station_uri(station_id)]:
        raise CSRError(f"the CSR must name exactly {station_uri(station_id)} in its SAN")
    return key


@dataclass(frozen=True)
class IssuedCert:
    serial: int
    subject_id: str  # "urn:station:<id>" or "urn:ops:<name>"
    not_before: dt.datetime
    not_after: dt.datetime
    revoked_at: dt.datetime | None


def station_id_of(cert: x509.Certificate) -> str | None:
    """The station id from a certificate's SAN URI, or None if it is not a station certificate."""
    ids = [u[len(STATION_URI_PREFIX) :] for u in uri_sans(cert) if u.startswith(STATION_URI_PREFIX)]
    return ids[0] if len(ids) == 1 and valid_station_id(ids[0]) else None


def backoffice_name_of(cert: x509.Certificate) -> str | None:
    """NAME of a ``urn:backoffice:NAME`` certificate (the downstream identity system), else None."""
    names = [u[len(BACKOFFICE_URI_PREFIX) :] for u in uri_sans(cert) if u.startswith(BACKOFFICE_URI_PREFIX)]
    return names[0] if len(names) == 1 and OPS_NAME_RE.match(names[0]) else None


def ops_name_of(cert: x509.Certificate) -> str | None:
    names = [u[len(OPS_URI_PREFIX) :] for u in uri_sans(cert) if u.startswith(OPS_URI_PREFIX)]
    return names[0] if len(names) == 1 and OPS_NAME_RE.match(names[0]) else None


class CertBackend(Protocol):
    """Where the registry lives: :class:`CertRegistry` (SQLite) or PostgreSQL (``sync.central.pg_pki``)."""

    def record(self, cert: x509.Certificate) -> None: ...
    def revoke_subject(self, subject: str, *, now: float) -> int: ...
    def revoke_serial(self, serial_hex: str, *, now: float) -> int: ...
    def revoked(self, *, now: float) -> list[tuple[int, float]]: ...
    def revocation_stamp(self) -> tuple[int, float]: ...
    def is_revoked(self, serial: int) -> bool: ...
    def latest(self) -> dict[str, IssuedCert]: ...


class CertRegistry:
    """Every certificate the CA issued, and which are revoked (``pki.db`` table ``certificates``)."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        conn = self._connect()
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS certificates ("
                " serial TEXT PRIMARY KEY, subject TEXT NOT NULL, not_before REAL NOT NULL,"
                " not_after REAL NOT NULL, revoked_at REAL, der BLOB NOT NULL)"
            )
            conn.execute("CREATE INDEX IF NOT EXISTS certificates_subject ON certificates(subject)")
        finally:
            conn.close()

    def _connect(self) -> sqlite3.Connection:
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.db_path, timeout=10, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        return conn

    def record(self, cert: x509.Certificate) -> None:
        subject = (uri_sans(cert) or ["?"])[0]
        conn = self._connect()
        try:
            conn.execute(
                "INSERT INTO certificates(serial, subject, not_before, not_after, der) VALUES (?,?,?,?,?)",
                (
                    format(cert.serial_number, "x"),
                    subject,
                    cert.not_valid_before_utc.timestamp(),
                    cert.not_valid_after_utc.timestamp(),
                    cert.public_bytes(serialization.Encoding.DER),
                ),
            )
        finally:
            conn.close()

    def revoke_subject(self, subject: str, *, now: float) -> int:
        """Revoke every unrevoked certificate of ``subject`` (a SAN URI); returns how many."""
        conn = self._connect()
        try:
            cur = conn.execute(
                "UPDATE certificates SET revoked_at=? WHERE subject=? AND revoked_at IS NULL", (now, subject)
            )
            return cur.rowcount
        finally:
            conn.close()

    def revoke_serial(self, serial_hex: str, *, now: float) -> int:
        conn = self._connect()
        try:
            cur = conn.execute(
                "UPDATE certificates SET revoked_at=? WHERE serial=? AND revoked_at IS NULL",
                (now, serial_hex.lower().lstrip("0") or "0"),
            )
            return cur.rowcount
        finally:
            conn.close()

    def revoked(self, *, now: float) -> list[tuple[int, float]]:
        """(serial, revoked_at) of revoked certificates not yet expired (the CRL's content)."""
        conn = self._connect()
        try:
            rows = conn.execute(
                "SELECT serial, revoked_at FROM certificates WHERE revoked_at IS NOT NULL AND not_after > ?"
                " ORDER BY revoked_at",
                (now - 86400,),
            ).fetchall()
        finally:
            conn.close()
        return [(int(r[0], 16), float(r[1])) for r in rows]

    def revocation_stamp(self) -> tuple[int, float]:
        """(how many, latest time) of revocations: changes whenever anything is revoked."""
        conn = self._connect()
        try:
            row = conn.execute(
                "SELECT count(*), coalesce(max(revoked_at), 0) FROM certificates WHERE revoked_at IS NOT NULL"
            ).fetchone()
        finally:
            conn.close()
        return (int(row[0]), float(row[1]))

    def is_revoked(self, serial: int) -> bool:
        conn = self._connect()
        try:
            row = conn.execute(
                "SELECT revoked_at FROM certificates WHERE serial=?", (format(serial, "x"),)
            ).fetchone()
        finally:
            conn.close()
        return row is not None and row[0] is not None

    def latest(self) -> dict[str, IssuedCert]:
        """The most recently issued certificate of each subject."""
        conn = self._connect()
        try:
            rows = conn.execute(
                "SELECT serial, subject, not_before, not_after, revoked_at FROM certificates"
                " ORDER BY not_before"
            ).fetchall()
        finally:
            conn.close()
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


def issue_station_cert(
    ca: CA,
    csr: x509.CertificateSigningRequest,
    station_id: str,
    *,
    days: float = DEFAULT_CERT_DAYS,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> x509.Certificate:
    """A station client certificate for the CSR's key (checked by :func:`check_station_csr`)."""
    key = check_station_csr(csr, station_id)
    return issue_leaf(
        ca,
        key,
        common_name=station_id,
        sans=[x509.UniformResourceIdentifier(station_uri(station_id))],
        eku=[ExtendedKeyUsageOID.CLIENT_AUTH],
        days=days,
        not_before=not_before,
        not_after=not_after,
    )


def issue_ops_cert(
    ca: CA, key: ec.EllipticCurvePrivateKey, name: str, *, days: float = 365, prefix: str = OPS_URI_PREFIX
) -> x509.Certificate:
    """An ops client certificate (SAN ``urn:ops:NAME``; ``urn:backoffice:NAME`` for the identity system)."""
    if not OPS_NAME_RE.match(name):
        raise PKIError("an ops name is letters, digits, '.', '_', '-' (at most 64)", code="pki.bad_name")
    if prefix not in (OPS_URI_PREFIX, BACKOFFICE_URI_PREFIX):
        raise PKIError(f"unknown certificate kind {prefix!r}", code="pki.bad_kind")
    return issue_leaf(
        ca,
        key.public_key(),
        common_name=name,
        sans=[x509.UniformResourceIdentifier(prefix + name)],
        eku=[ExtendedKeyUsageOID.CLIENT_AUTH],
        days=days,
    )
