"""Provisioning: enroll this station with central using a one-time token and a pinned CA fingerprint.

Steps (``station provision --central URL --token T --ca-fingerprint SHA256``):

1. Connect to central's enrollment listener (ingest port + 1, or ``--enroll-url``) WITHOUT trusting
   anything, read the certificate chain it presents and pick the certificate whose SHA-256 (of the
   DER) equals the fingerprint the technician typed. No match: stop, nothing sent, nothing written.
2. From then on that CA is pinned: the enrollment request itself goes over a verifying TLS 1.3
   connection that trusts only it, so the token never reaches an impostor.
3. A bare home is made a station first (``station.session.init_station``). The identity key comes
   from ``station.keys.KeyStore``: an existing key is reused when this station has no certificate
   yet (``station init`` made it) or with ``--renew``; otherwise it is created.
4. A CSR (SAN ``urn:station:<id>``) goes with the token; the certificate that comes back must chain to
   the pinned CA, carry our public key and our station id.
5. Installed in ``pki/`` (each file atomically): ``ca.crt``, ``station.crt``, ``central-hpke.pub``
   (the raw HPKE public key, base64 on one line), ``central-hpke.suite`` (``x25519`` or
   ``mlkem768-x25519``), ``receipt.pub`` (Ed25519, PEM), ``policy.pub`` (central's Ed25519 policy key,
   PEM: policy bundles and outcome lists must verify with it), ``central-id``; then ``station.toml`` gets
   ``station_id``, ``central_url`` and ``hpke_suite``.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID

from station.home import DEFAULT_HOME, StationConfig, StationHome
from station.keys import IDENTITY_KEY, KeyStore
from sync.agent.client import AgentError, http_client, tls_context
from sync.common import wire

_ENCODING_DER = 2  # _ssl.ENCODING_DER: what Certificate.public_bytes takes for DER

TOKEN_REFUSED = "token refused: ask central ops for a new token"
FINGERPRINT_MISMATCH = (
    "this is not your central office (CA fingerprint mismatch): check the URL and fingerprint"
)


class ProvisionError(AgentError):
    code = "provision.failed"


@dataclass(frozen=True)
class Provisioned:
    station_id: str
    central_url: str
    central_id: str
    cert_not_after: str
    hpke_suite: str


def normalise_fingerprint(text: str) -> str:
    """Lower-case hex without separators; accepts ``AB:CD:..``, ``ab cd ..``, ``sha256:...``."""
    t = text.strip().lower()
    if t.startswith("sha256:") or t.startswith("sha256="):
        t = t[7:]
    t = re.sub(r"[\s:]", "", t)
    if not re.fullmatch(r"[0-9a-f]{64}", t):
        raise ProvisionError(
            "the CA fingerprint must be 64 hexadecimal digits (colons allowed): copy it again from"
            " 'central ca fingerprint'",
            code="provision.bad_fingerprint",
        )
    return t


def cert_fingerprint(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def enroll_url_for(central_url: str) -> str:
    """The enrollment listener: central's host, ingest port + 1."""
    parts = urlsplit(central_url)
    if parts.scheme != "https" or not parts.hostname:
        raise ProvisionError(
            f"the central URL must look like https://HOST:PORT (got {central_url!r})", code="provision.url"
        )
    port = parts.port or wire.DEFAULT_INGEST_PORT
    host = parts.hostname
    netloc = f"[{host}]" if ":" in host else host
    return f"https://{netloc}:{wire.enroll_port(port)}"


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise ProvisionError(f"not an https URL: {url!r}", code="provision.url")
    return parts.hostname, parts.port or 443


def fetch_presented_chain(url: str, *, timeout: float = 15.0) -> list[x509.Certificate]:
    """The certificates the server at ``url`` presents, read without trusting or verifying any."""
    host, port = _host_port(url)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as raw,
            ctx.wrap_socket(raw, server_hostname=host) as tls,
        ):
            ders: list[bytes] = []
            sslobj: Any = getattr(tls, "_sslobj", None)
            getter = getattr(sslobj, "get_unverified_chain", None) or getattr(
                tls, "get_unverified_chain", None
            )
            if getter is not None:
                for item in getter() or []:
                    ders.append(item if isinstance(item, bytes) else item.public_bytes(_ENCODING_DER))
            if not ders:
                leaf = tls.getpeercert(binary_form=True)
                if leaf:
                    ders.append(leaf)
    except (OSError, ssl.SSLError) as exc:
        raise ProvisionError(
            f"cannot reach central's enrollment service at {host}:{port} ({type(exc).__name__}): check the"
            " URL and the network",
            code="provision.unreachable",
        ) from exc
    return [x509.load_der_x509_certificate(d) for d in ders]


def pin_ca(chain: list[x509.Certificate], fingerprint: str) -> x509.Certificate:
    """The CA certificate in ``chain`` with this fingerprint; :class:`ProvisionError` if none."""
    want = normalise_fingerprint(fingerprint)
    for cert in chain:
        if secrets.compare_digest(cert_fingerprint(cert), want):
            return cert
    raise ProvisionError(FINGERPRINT_MISMATCH, code="provision.fingerprint_mismatch")


def build_csr(key: ec.EllipticCurvePrivateKey, station_id: str) -> bytes:
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, station_id)]))
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(wire.station_uri(station_id))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM)


def station_ids_of(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    return [u[len(wire.STATION_URI_PREFIX) :] for u in uris if u.startswith(wire.STATION_URI_PREFIX)]


def check_station_cert(
    cert: x509.Certificate, ca: x509.Certificate, key: ec.EllipticCurvePrivateKey, station_id: str
) -> None:
    """The certificate central issued must be signed by the pinned CA, for our key and station id."""
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError) as exc:
        raise ProvisionError(
            "central returned a certificate not issued by the pinned CA: call central ops",
            code="provision.bad_cert",
        ) from exc
    except Exception as exc:  # InvalidSignature
        raise ProvisionError(
            "central returned a certificate with a bad signature: call central ops", code="provision.bad_cert"
        ) from exc
    ours = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    theirs = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if ours != theirs:
        raise ProvisionError(
            "central returned a certificate for another key: call central ops", code="provision.bad_cert"
        )
    if station_ids_of(cert) != [station_id]:
        raise ProvisionError(
            "central returned a certificate for another station id: call central ops",
            code="provision.bad_cert",
        )


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _load_config(home: StationHome) -> StationConfig:
    return home.load_config() if home.exists() else StationConfig()


def provision(
    home: StationHome,
    *,
    central_url: str,
    token: str,
    ca_fingerprint: str,
    station_id: str | None = None,
    enroll_url: str | None = None,
    renew: bool = False,
    timeout: float = 30.0,
    key_backend: str | None = None,
) -> Provisioned:
    """Enroll this station with central; see the module docstring for every step."""
    central_url = central_url.rstrip("/")
    enroll_url_for(central_url)  # validates the central URL
    target = (enroll_url or enroll_url_for(central_url)).rstrip("/")
    want = normalise_fingerprint(ca_fingerprint)
    cfg = _load_config(home)
    sid = station_id or cfg.station_id
    if not sid:
        raise ProvisionError(
            "this station has no id yet: pass --station-id (as agreed with central ops)",
            code="provision.no_station_id",
        )
    if not wire.valid_station_id(sid):
        raise ProvisionError(
            "the station id may use letters, digits, '.', '_' and '-' only (at most 64)",
            code="provision.bad_station_id",
        )
    if cfg.station_id and station_id and cfg.station_id != station_id and home.pki.station_cert.exists():
        raise ProvisionError(
            f"this station is already provisioned as {cfg.station_id}: decommission it first",
            code="provision.other_id",
        )

    # 1-2: read the presented chain without trust, pin the CA by its fingerprint.
    ca = pin_ca(fetch_presented_chain(target, timeout=timeout), want)
    ca_pem = _pem(ca)
    if not home.exists():
        # A bare machine: make the station (keys, encrypted queue, station.toml) first.
        from station.session import init_station

        init_station(home, sid, key_backend=key_backend or cfg.key_backend).close()
        cfg = home.load_config()
        sid = cfg.station_id

    # 3: the identity key.
    keys = KeyStore(home, cfg.key_backend)
    has_cert = home.pki.station_cert.exists()
    if keys.has(IDENTITY_KEY):
        if has_cert and not renew:
            raise ProvisionError(
                "this station is already provisioned (it has a certificate): pass --renew to enroll its"
                " existing key again",
                code="provision.already",
            )
        key = keys.identity_key()
    else:
        key = keys.create_identity_key()

    # 4: CSR and token over TLS that trusts only the pinned CA.
    csr = build_csr(key, sid)
    try:
        with http_client(target, tls_context(ca_pem), timeout=timeout) as http:
            resp = http.post(
                wire.ENROLL_PATH, json={"token": token, "station_id": sid, "csr_pem": csr.decode()}
            )
    except httpx.HTTPError as exc:
        raise ProvisionError(
            f"enrollment with central failed ({type(exc).__name__}): check the URL and the network, then"
            " try again",
            code="provision.network",
        ) from exc
    if resp.status_code == 401:
        raise ProvisionError(TOKEN_REFUSED, code="provision.token_refused")
    if resp.status_code != 200:
        try:
            msg = str(resp.json().get("message", ""))
        except (ValueError, AttributeError):
            msg = ""
        raise ProvisionError(
            f"central refused the enrollment (HTTP {resp.status_code}{': ' + msg if msg else ''})",
            code="provision.refused",
        )
    try:
        body = resp.json()
        cert = x509.load_pem_x509_certificate(body["certificate_pem"].encode())
        ca_back = x509.load_pem_x509_certificate(body["ca_pem"].encode())
        hpke_pub = wire.b64d(body["hpke_public_key_b64"])
        suite = str(body["hpke_suite"])
        receipt_key = serialization.load_pem_public_key(body["receipt_public_key_pem"].encode())
        central_id = str(body["central_id"])
        policy_pem = body.get("policy_public_key_pem") or ""
        policy_key = serialization.load_pem_public_key(policy_pem.encode()) if policy_pem else None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ProvisionError(
            "central's enrollment answer is malformed: call central ops", code="provision.bad_answer"
        ) from exc
    if cert_fingerprint(ca_back) != want:
        raise ProvisionError(FINGERPRINT_MISMATCH, code="provision.fingerprint_mismatch")
    if not isinstance(receipt_key, ed25519.Ed25519PublicKey):
        raise ProvisionError(
            "central's receipt key is not Ed25519: call central ops", code="provision.bad_answer"
        )
    if policy_key is not None and not isinstance(policy_key, ed25519.Ed25519PublicKey):
        raise ProvisionError(
            "central's policy key is not Ed25519: call central ops", code="provision.bad_answer"
        )
    if suite not in ("x25519", "mlkem768-x25519"):
        raise ProvisionError(f"unknown HPKE suite {suite!r} from central", code="provision.bad_answer")
    check_station_cert(cert, ca, key, sid)

    # 5: install.
    pki = home.pki
    write_atomic(pki.ca_cert, ca_pem)
    write_atomic(pki.central_hpke_pub, wire.b64e(hpke_pub).encode() + b"\n")
    write_atomic(pki.central_hpke_suite, suite.encode() + b"\n")
    write_atomic(
        pki.receipt_pub,
        receipt_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
    )
    if policy_key is not None:  # pinned: every policy bundle must verify with it
        write_atomic(
            pki.policy_pub,
            policy_key.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
        )
    write_atomic(pki.central_id, central_id.encode() + b"\n")
    write_atomic(pki.station_cert, _pem(cert))
    cfg.station_id = sid
    cfg.central_url = central_url
    cfg.hpke_suite = suite
    home.save_config(cfg)
    from station.ownership import settle

    settle(home)  # run as root: queue, keys, pki and station.toml readable by the station's services
    if home.root == DEFAULT_HOME and os.geteuid() == 0:  # the appliance: the agent reaches central only
        from sync.agent.netpolicy import central_addresses, write_sync_dropin

        write_sync_dropin(central_addresses(central_url, target))
    return Provisioned(
        station_id=sid,
        central_url=central_url,
        central_id=central_id,
        cert_not_after=cert.not_valid_after_utc.isoformat(),
        hpke_suite=suite,
    )
