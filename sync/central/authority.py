"""Central's PKI operations on a home directory: init, tokens, enroll, renew, revoke, ops certs.

Both the CLI and the server go through :class:`Authority`, so the rules (token single use, CSR
checks, registry, CRL publication) live in one place.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import pkcs12

from packetformat.packet import SUITES, generate_recipient_keypair
from sync.central.home import CentralError, CentralHome, write_atomic
from sync.common.wire import DEFAULT_CERT_DAYS, OPS_URI_PREFIX, station_uri
from sync.pki.ca import CA, PKIError, cert_pem, create_ca, issue_server_cert, key_pem, load_ca, new_ec_key
from sync.pki.crl import load_crl, needs_refresh, publish_crl
from sync.pki.issue import CertBackend, issue_ops_cert, issue_station_cert, load_csr, station_id_of
from sync.pki.tokens import TokenBackend


@dataclass(frozen=True)
class InitResult:
    ca_fingerprint: str
    central_id: str
    hpke_suite: str
    backoffice_key: Path


@dataclass(frozen=True)
class EnrollResult:
    certificate_pem: str
    ca_pem: str
    hpke_public_key_b64: str
    hpke_suite: str
    receipt_public_key_pem: str
    central_id: str
    policy_public_key_pem: str = ""


def init_home(
    home: CentralHome,
    *,
    name: str = "Enrollment Central CA",
    suite: str = "x25519",
    server_names: tuple[str, ...] = (),
    cert_days: int = DEFAULT_CERT_DAYS,
    force: bool = False,
    database_url: str | None = None,
) -> InitResult:
    """Create the CA, server TLS cert, receipt key, HPKE keypair, config and an empty CRL.

    ``database_url`` (``postgresql://...``, no password) selects PostgreSQL: it is written as
    ``[storage] url`` and the schema is migrated before anything else is created.
    """
    if suite not in SUITES:
        raise CentralError(
            f"unknown HPKE suite {suite!r}: choose one of {', '.join(SUITES)}", code="central.hpke_suite"
        )
    if home.ca_key.exists() and not force:
        raise CentralError(
            f"a CA already exists in {home.root}; refusing to overwrite it (use another --home)",
            code="central.ca_exists",
        )
    if database_url is not None:
        from sync.central.database import check_config_url, connect_pool, database_is_claimed
        from sync.central.migrate import migrate_pg
        from sync.central.pg_storage import PgStorage

        check_config_url(database_url)
        pool = connect_pool(database_url, max_size=1)  # reachable and migrated before any key exists
        try:
            with pool.connection() as conn:
                migrate_pg(conn)
                if database_is_claimed(conn):
                    raise CentralError(
                        "this database already belongs to another central: give the new central its own"
                        " database (to add a node to that central, copy its home instead of running init)",
                        code="storage.other_central",
                    )
            PgStorage(pool)  # the packet partitions, ahead
        finally:
            pool.close()
    home.root.mkdir(parents=True, exist_ok=True)
    os.chmod(home.root, 0o700)
    ca = create_ca(name)
    write_atomic(home.ca_key, key_pem(ca.key), mode=0o600)
    write_atomic(home.ca_cert, cert_pem(ca.cert), mode=0o644)
    server_key = new_ec_key()
    write_atomic(home.server_key, key_pem(server_key), mode=0o600)
    # The full chain (leaf, then CA): a station being provisioned reads the CA from the handshake and
    # pins it by the fingerprint the technician typed, before it trusts anything.
    server_chain = cert_pem(issue_server_cert(ca, server_key, server_names)) + cert_pem(ca.cert)
    write_atomic(home.server_cert, server_chain, mode=0o644)
    receipt_key = ed25519.Ed25519PrivateKey.generate()
    write_atomic(
        home.receipt_key,
        receipt_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
        mode=0o600,
    )
    write_atomic(
        home.receipt_pub,
        receipt_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        mode=0o644,
    )
    from sync.central.policy import ensure_policy_key

    ensure_policy_key(home)  # Ed25519, separate from the receipt key; stations pin it at provisioning
    private, public = generate_recipient_keypair(suite)
    write_atomic(home.hpke_pub, base64.b64encode(public) + b"\n", mode=0o644)
    write_atomic(home.hpke_suite, suite.encode() + b"\n", mode=0o644)
    write_atomic(home.backoffice_key, base64.b64encode(private) + b"\n", mode=0o600)
    central_id = f"central-{secrets.token_hex(4)}"
    config: dict[str, Any] = {
        "central": {"id": central_id, "name": name},
        "pki": {"cert_days": cert_days},
        "hpke": {"suite": suite},
    }
    if database_url is not None:
        config["storage"] = {"url": database_url}
    home.write_config(config)
    authority = Authority(home)
    try:
        authority.publish_crl()
    finally:
        authority.close()
    return InitResult(ca.fingerprint(), central_id, suite, home.backoffice_key)


def read_hpke_private_key(path: Path) -> bytes:
    """The back-office key file: base64 text of the raw private key bytes."""
    try:
        return base64.b64decode(path.read_bytes().strip(), validate=True)
    except FileNotFoundError as exc:
        raise CentralError(
            f"HPKE private key file {path} not found: give the back-office key file",
            code="backoffice.key_missing",
        ) from exc
    except ValueError as exc:
        raise CentralError(
            f"{path} is not an HPKE private key file (base64 text expected): give the back-office key file",
            code="backoffice.bad_key",
        ) from exc


class Authority:
    """PKI operations bound to a central home."""

    def __init__(
        self, home: CentralHome, *, tokens: TokenBackend | None = None, registry: CertBackend | None = None
    ) -> None:
        """Tokens and registry from the home's backend (``[storage] url``) unless given."""
        self.home = home
        home.require()
        self._pool: Any = None
        if tokens is None or registry is None:
            from sync.central.database import open_pki

            tokens, registry, self._pool = open_pki(home)
        self.registry: CertBackend = registry
        self.tokens: TokenBackend = tokens
        self._ca: CA | None = None
        self._published_stamp: tuple[int, float] | None = None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    @property
    def ca(self) -> CA:
        if self._ca is None:
            self._ca = load_ca(self.home.ca_key, self.home.ca_cert)
        return self._ca

    @property
    def cert_days(self) -> float:
        return float(self.home.config().get("pki", {}).get("cert_days", DEFAULT_CERT_DAYS))

    def hpke_public(self) -> tuple[bytes, str]:
        public = base64.b64decode(self.home.hpke_pub.read_bytes().strip(), validate=True)
        return public, self.home.hpke_suite.read_text().strip()

    def receipt_key(self) -> ed25519.Ed25519PrivateKey:
        key = serialization.load_pem_private_key(self.home.receipt_key.read_bytes(), password=None)
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            raise CentralError(
                "the receipt key is not Ed25519: restore keys/ from the backup",
                code="central.bad_receipt_key",
            )
        return key

    def new_token(self, station_id: str, ttl_s: float) -> str:
        return self.tokens.new(station_id, ttl_s)

    def enroll(self, token: str, station_id: str, csr_pem: str) -> EnrollResult:
        """Redeem ``token`` and issue the station certificate; ``PKIError`` on a bad CSR.

        The token is checked first, before any certificate work (an unauthenticated caller gets
        nothing parsed or signed for a wrong token); a CSR that is then refused gives the token
        back, so a typo in a CSR does not burn it. Raises ``PermissionError`` for an unknown, used,
        expired or other-station token.
        """
        spent_at = time.time()
        if not self.tokens.redeem(token, station_id, now=spent_at):
            raise PermissionError("enrollment token unknown, already used or expired")
        try:
            cert = issue_station_cert(self.ca, load_csr(csr_pem), station_id, days=self.cert_days)
        except PKIError:
            self.tokens.unredeem(token, used_at=spent_at)
            raise
        # Provisioned again (a new disk, a repaired station): its older certificates stop working now,
        # not when they expire; renewal (``renew``) keeps the old one until it runs out.
        revoked = self.registry.revoke_subject(station_uri(station_id), now=spent_at)
        self.registry.record(cert)
        if revoked:
            self.publish_crl()
        public, suite = self.hpke_public()
        return EnrollResult(
            certificate_pem=cert_pem(cert).decode(),
            ca_pem=cert_pem(self.ca.cert).decode(),
            hpke_public_key_b64=base64.b64encode(public).decode(),
            hpke_suite=suite,
            receipt_public_key_pem=self.home.receipt_pub.read_text(),
            central_id=self.home.central_id,
            policy_public_key_pem=self.policy_public_pem(),
        )

    def policy_public_pem(self) -> str:
        from sync.central.policy import ensure_policy_key, policy_public_pem

        return policy_public_pem(ensure_policy_key(self.home)).decode("ascii")

    def renew(self, presented: x509.Certificate, csr_pem: str) -> x509.Certificate:
        """A new certificate for the station of the still-valid ``presented`` certificate."""
        station_id = station_id_of(presented)
        if station_id is None:
            raise PKIError("only station certificates can be renewed", code="pki.not_a_station")
        if self.registry.is_revoked(presented.serial_number):
            raise PermissionError("the presented certificate is revoked")
        cert = issue_station_cert(self.ca, load_csr(csr_pem), station_id, days=self.cert_days)
        self.registry.record(cert)
        return cert

    def issue_from_csr(self, csr_pem: str, station_id: str, *, days: float | None = None) -> x509.Certificate:
        """Offline issuance (``central issue``), without a token: for a technician at the office."""
        cert = issue_station_cert(self.ca, load_csr(csr_pem), station_id, days=days or self.cert_days)
        self.registry.record(cert)
        return cert

    def revoke(self, target: str) -> int:
        """Revoke every certificate of station ``target`` (or ops ``urn:ops:NAME``, or serial ``0x..``)."""
        now = time.time()
        if target.startswith("0x"):
            count = self.registry.revoke_serial(target[2:], now=now)
        elif target.startswith("urn:"):
            count = self.registry.revoke_subject(target, now=now)
        else:
            count = self.registry.revoke_subject(station_uri(target), now=now)
        if count:
            self.publish_crl()
        return count

    def publish_crl(self) -> x509.CertificateRevocationList:
        stamp = self.registry.revocation_stamp()
        crl = publish_crl(self.ca, self.registry.revoked(now=time.time()), self.home.crl)
        self._published_stamp = stamp
        return crl

    def sync_crl(self) -> bool:
        """Republish this node's CRL when the shared registry has revocations it lacks; True if so.

        With several nodes on one database, ``central revoke`` on any machine reaches every node
        through this (the server polls it every few seconds). A CRL that already lists exactly the
        registry's revocations is left alone: workers sharing one home must not republish it in a
        burst (each new CRL's lastUpdate moves a second ahead, and a CRL from the future makes
        OpenSSL refuse every client until that second comes).
        """
        stamp = self.registry.revocation_stamp()
        if stamp == self._published_stamp:
            return False
        self._published_stamp = stamp
        current = load_crl(self.home.crl)
        wanted = {serial for serial, _ in self.registry.revoked(now=time.time())}
        listed = None if current is None else {r.serial_number for r in current}
        if current is not None and not needs_refresh(current) and listed == wanted:
            return False
        self.publish_crl()
        return True

    def refresh_crl_if_due(self) -> bool:
        if needs_refresh(load_crl(self.home.crl)):
            self.publish_crl()
            return True
        return False

    def ops_cert(
        self,
        name: str,
        out: Path,
        *,
        days: float = 365,
        prefix: str = OPS_URI_PREFIX,
        p12_password: bytes | None = None,
    ) -> list[Path]:
        """Key, certificate, CA and, given a password, a PKCS#12 bundle (for browsers) in ``out``.

        ``prefix`` ``urn:backoffice:`` makes the certificate of the downstream identity system instead.
        Without ``p12_password`` no bundle is written: an unprotected one is a key anyone can use.
        """
        key = new_ec_key()
        cert = issue_ops_cert(self.ca, key, name, days=days, prefix=prefix)
        self.registry.record(cert)
        out.mkdir(parents=True, exist_ok=True)
        paths = [out / f"{name}.key", out / f"{name}.crt", out / "ca.crt", out / f"{name}.p12"]
        write_atomic(paths[0], key_pem(key), mode=0o600)
        write_atomic(paths[1], cert_pem(cert), mode=0o644)
        write_atomic(paths[2], cert_pem(self.ca.cert), mode=0o644)
        if p12_password is None:
            return paths[:3]
        bundle = pkcs12.serialize_key_and_certificates(
            name.encode(), key, cert, [self.ca.cert], serialization.BestAvailableEncryption(p12_password)
        )
        write_atomic(paths[3], bundle, mode=0o600)
        return paths

    def issued_not_after(self) -> dict[str, dt.datetime]:
        return {s: c.not_after for s, c in self.registry.latest().items()}


def station_key_of(cert: x509.Certificate) -> ec.EllipticCurvePublicKey:
    key = cert.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise PKIError("the certificate key is not EC: issue the certificate again", code="pki.bad_key")
    return key
