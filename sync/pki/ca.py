"""The private CA (EC P-256): creation, loading, server certificates and fingerprints."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from sync.errors import SyncError

CA_YEARS = 10
SERVER_DAYS = 825
BACKDATE = dt.timedelta(minutes=5)


class PKIError(SyncError):
    """A PKI operation that cannot proceed (missing CA, bad CSR, ...); the message says why."""

    code = "pki.error"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the DER certificate as lowercase hex (what ``station provision`` pins)."""
    return cert.fingerprint(hashes.SHA256()).hex()


def normalise_fingerprint(text: str) -> str:
    """Accept ``AB:CD..``, ``sha256:abcd..`` or plain hex; return lowercase hex."""
    value = text.strip().lower()
    if value.startswith("sha256:"):
        value = value[len("sha256:") :]
    return value.replace(":", "").replace(" ", "")


@dataclass(frozen=True)
class CA:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @property
    def name(self) -> x509.Name:
        return self.cert.subject

    def fingerprint(self) -> str:
        return fingerprint(self.cert)


def create_ca(name: str, *, key: ec.EllipticCurvePrivateKey | None = None, years: int = CA_YEARS) -> CA:
    """A self-signed EC P-256 root: CA:TRUE pathlen 0, keyCertSign + cRLSign."""
    key = key or new_ec_key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = utcnow()
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + dt.timedelta(days=365 * years))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    return CA(key, cert)


def load_ca(key_path: Path, cert_path: Path) -> CA:
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except FileNotFoundError as exc:
        raise PKIError(
            f"CA file missing: {exc.filename}; run 'central ca init'", code="pki.ca_missing"
        ) from exc
    except ValueError as exc:
        raise PKIError(
            f"CA key or certificate unreadable ({exc}); restore them from backup", code="pki.ca_damaged"
        ) from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise PKIError("the CA key is not an EC key: restore the CA from the backup", code="pki.ca_damaged")
    cert_key = cert.public_key()
    if (
        not isinstance(cert_key, ec.EllipticCurvePublicKey)
        or key.public_key().public_numbers() != cert_key.public_numbers()
    ):
        raise PKIError(
            "the CA key does not match the CA certificate: restore the CA from the backup",
            code="pki.ca_damaged",
        )
    return CA(key, cert)


def load_cert(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except FileNotFoundError as exc:
        raise PKIError(f"certificate missing: {path}; check the path", code="pki.cert_missing") from exc
    except ValueError as exc:
        raise PKIError(
            f"certificate unreadable: {path}; give a PEM certificate", code="pki.cert_damaged"
        ) from exc


def _leaf_extensions(
    builder: x509.CertificateBuilder,
    ca: CA,
    public_key: ec.EllipticCurvePublicKey,
    eku: list[x509.ObjectIdentifier],
) -> x509.CertificateBuilder:
    return (
        builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(eku), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
    )


def issue_leaf(
    ca: CA,
    public_key: ec.EllipticCurvePublicKey,
    *,
    common_name: str,
    sans: list[x509.GeneralName],
    eku: list[x509.ObjectIdentifier],
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    days: float = 30,
) -> x509.Certificate:
    """Sign a leaf certificate for ``public_key`` (EC P-256 only)."""
    if not isinstance(public_key, ec.EllipticCurvePublicKey) or not isinstance(
        public_key.curve, ec.SECP256R1
    ):
        raise PKIError("the certificate key must be EC P-256", code="pki.bad_key")
    start = not_before or (utcnow() - BACKDATE)
    end = not_after or (utcnow() + dt.timedelta(days=days))
    if end > ca.cert.not_valid_after_utc:
        end = ca.cert.not_valid_after_utc
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca.name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
    )
    return _leaf_extensions(builder, ca, public_key, eku).sign(ca.key, hashes.SHA256())


def issue_server_cert(
    ca: CA, key: ec.EllipticCurvePrivateKey, names: Iterable[str] = (), *, days: int = SERVER_DAYS
) -> x509.Certificate:
    """Server TLS certificate: DNS localhost, IP 127.0.0.1 and ::1, plus ``names`` (DNS or IP)."""
    sans: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    for name in names:
        try:
            general: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(name))
        except ValueError:
            general = x509.DNSName(name)
        if general not in sans:
            sans.append(general)
    return issue_leaf(
        ca,
        key.public_key(),
        common_name="central",
        sans=sans,
        eku=[ExtendedKeyUsageOID.SERVER_AUTH],
        days=days,
    )


def uri_sans(cert: x509.Certificate) -> list[str]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return [str(u) for u in ext.value.get_values_for_type(x509.UniformResourceIdentifier)]
