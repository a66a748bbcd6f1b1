"""Certificate revocation lists: built from the registry, signed by the CA, written atomically.

The CRL's ``lastUpdate`` always moves forward (at least one second past the previous one) so that
an OpenSSL store holding several CRLs of the same CA always prefers the newest. ``nextUpdate`` is
``CRL_DAYS`` ahead: the server republishes it long before (see :func:`needs_refresh`), because a CRL
past its next update makes OpenSSL refuse every client.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from sync.central.home import write_atomic
from sync.pki.ca import CA, utcnow

CRL_DAYS = 7
REFRESH_FRACTION = 0.5


def build_crl(
    ca: CA, revoked: list[tuple[int, float]], *, previous: x509.CertificateRevocationList | None
) -> bytes:
    """PEM CRL listing ``revoked`` (serial, revoked_at epoch), lastUpdate after ``previous``'s."""
    now = utcnow().replace(microsecond=0)
    if previous is not None and now <= previous.last_update_utc:
        now = previous.last_update_utc + dt.timedelta(seconds=1)
    number = 1
    if previous is not None:
        try:
            number = previous.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number + 1
        except x509.ExtensionNotFound:
            number = 1
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.name)
        .last_update(now)
        .next_update(now + dt.timedelta(days=CRL_DAYS))
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
    )
    for serial, revoked_at in revoked:
        entry = (
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(dt.datetime.fromtimestamp(revoked_at, dt.UTC))
            .build()
        )
        builder = builder.add_revoked_certificate(entry)
    crl = builder.sign(ca.key, hashes.SHA256())
    return crl.public_bytes(serialization.Encoding.PEM)


def load_crl(path: Path) -> x509.CertificateRevocationList | None:
    try:
        return x509.load_pem_x509_crl(path.read_bytes())
    except (FileNotFoundError, ValueError):
        return None


def publish_crl(ca: CA, revoked: list[tuple[int, float]], path: Path) -> x509.CertificateRevocationList:
    """Build and atomically write a new CRL to ``path`` (0644); returns it."""
    data = build_crl(ca, revoked, previous=load_crl(path))
    write_atomic(path, data, mode=0o644)
    return x509.load_pem_x509_crl(data)


def needs_refresh(crl: x509.CertificateRevocationList | None, *, now: dt.datetime | None = None) -> bool:
    """True when the CRL is missing or past ``REFRESH_FRACTION`` of its validity."""
    if crl is None or crl.next_update_utc is None:
        return True
    t = now or utcnow()
    life = crl.next_update_utc - crl.last_update_utc
    return t >= crl.last_update_utc + life * REFRESH_FRACTION
