"""Certificate renewal: at two thirds of its life the agent asks central for a fresh certificate.

The CSR is signed by the same identity key (the key also signs packets, and the key store never
overwrites a key), sent over the still-valid mutual-TLS connection (``POST /v1/renew``). The new
certificate must chain to the pinned CA and carry our key and station id before it replaces
``pki/station.crt`` (atomically). A certificate that has already expired cannot be renewed this
way: the station must be provisioned again (``station provision --renew``).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from sync.agent.client import CentralClient
from sync.agent.provision import build_csr, check_station_cert, write_atomic
from sync.common import wire


def load_certificate(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def renewal_due_at(cert: x509.Certificate, fraction: float = wire.RENEW_AT_FRACTION) -> dt.datetime:
    """The moment ``fraction`` of the certificate's life has passed."""
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    return start + (end - start) * fraction


def renewal_due(cert: x509.Certificate, now: dt.datetime) -> bool:
    return now >= renewal_due_at(cert)


def renew_certificate(
    client: CentralClient,
    *,
    cert_path: Path,
    ca: x509.Certificate,
    key: ec.EllipticCurvePrivateKey,
    station_id: str,
) -> x509.Certificate:
    """Ask central for a new certificate, check it, install it; the new certificate.

    Raises the client's :class:`~sync.agent.client.AgentError` subclasses on network or refusal, and
    :class:`~sync.agent.provision.ProvisionError` when the answer is not a certificate for us.
    """
    pem = client.renew(build_csr(key, station_id))
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        from sync.agent.provision import ProvisionError

        raise ProvisionError("central's renewed certificate is unreadable", code="renew.bad_cert") from exc
    check_station_cert(cert, ca, key, station_id)
    write_atomic(cert_path, pem)
    return cert
