"""The central home directory: where the CA, server keys, database and blobs live.

Layout (``--home DIR``, else ``$CENTRAL_HOME``, else ``/var/lib/central``)::

    central.toml            central_id, name, HPKE suite, certificate lifetime
    pki/ca.key  ca.crt      private CA (EC P-256), key 0600
    pki/crl.pem             current CRL (rewritten atomically on revoke)
    pki/pki.db              enrollment tokens (hashed) and issued certificates
    tls/server.key .crt     ingest/enrollment server certificate
    keys/receipt.key .pub   Ed25519 receipt-signing key (PEM)
    keys/policy.key .pub    Ed25519 policy-signing key (PEM): policy bundles and outcome lists
    keys/hpke.pub           central HPKE public key (base64 text), keys/hpke.suite
    backoffice/hpke.key     HPKE PRIVATE key (base64 text): move it offline after init
    central.db              ingest metadata (packets, uploads, stations, alerts), embedded SQLite
                            backend; with ``[storage] url = "postgresql://..."`` it all lives in
                            PostgreSQL instead (``$CENTRAL_DATABASE_URL`` overrides the config)
    blobs/ab/<sha256>       content-addressed envelopes; uploads/<station>/<packet>.part
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from sync.errors import SyncError

DEFAULT_HOME = Path("/var/lib/central")


def resolve_home(home: Path | None) -> Path:
    if home is not None:
        return home
    env = os.environ.get("CENTRAL_HOME")
    return Path(env) if env else DEFAULT_HOME


class CentralError(SyncError):
    """An error a person at the central office sees: says what happened and what to do.

    ``code`` is the dotted code the CLI prints as ``error [code]: message``.
    """

    code: str = "central.error"


@dataclass(frozen=True)
class CentralHome:
    root: Path

    @property
    def config_path(self) -> Path:
        return self.root / "central.toml"

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def ca_key(self) -> Path:
        return self.pki / "ca.key"

    @property
    def ca_cert(self) -> Path:
        return self.pki / "ca.crt"

    @property
    def crl(self) -> Path:
        return self.pki / "crl.pem"

    @property
    def pki_db(self) -> Path:
        return self.pki / "pki.db"

    @property
    def server_key(self) -> Path:
        return self.root / "tls" / "server.key"

    @property
    def server_cert(self) -> Path:
        return self.root / "tls" / "server.crt"

    @property
    def receipt_key(self) -> Path:
        return self.root / "keys" / "receipt.key"

    @property
    def receipt_pub(self) -> Path:
        return self.root / "keys" / "receipt.pub"

    @property
    def hpke_pub(self) -> Path:
        return self.root / "keys" / "hpke.pub"

    @property
    def hpke_suite(self) -> Path:
        return self.root / "keys" / "hpke.suite"

    @property
    def backoffice_key(self) -> Path:
        return self.root / "backoffice" / "hpke.key"

    @property
    def db(self) -> Path:
        return self.root / "central.db"

    @property
    def blobs(self) -> Path:
        return self.root / "blobs"

    @property
    def uploads(self) -> Path:
        return self.root / "uploads"

    def exists(self) -> bool:
        return self.ca_cert.exists() and self.config_path.exists()

    def require(self) -> None:
        if not self.exists():
            raise CentralError(
                f"no central home at {self.root}: run 'central --home {self.root} ca init' first",
                code="central.no_home",
            )

    def config(self) -> dict[str, Any]:
        try:
            with self.config_path.open("rb") as fh:
                return tomllib.load(fh)
        except FileNotFoundError as exc:
            raise CentralError(
                f"{self.config_path} is missing: run 'central ca init'", code="central.no_config"
            ) from exc

    def write_config(self, config: dict[str, Any]) -> None:
        write_atomic(self.config_path, tomli_w.dumps(config).encode(), mode=0o644)

    @property
    def central_id(self) -> str:
        return str(self.config().get("central", {}).get("id", "central"))


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Write ``data`` to ``path`` via a temporary file, fsync, rename and directory fsync."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(tmp, mode)
    os.replace(tmp, path)
    fsync_dir(path.parent)
