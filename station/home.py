"""Where a station keeps its state, and its configuration file.

The home directory is chosen by ``--home``, then ``$STATION_HOME``, then
``/var/lib/station``. Its layout is fixed here so every process (kiosk, sync
agent, CLI) agrees on it.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import tomli_w

from station.errors import ConfigError

DEFAULT_HOME = Path("/var/lib/station")
CONFIG_NAME = "station.toml"
# An installed appliance keeps its configuration apart from its data: the services see /etc read-only.
SYSTEM_CONFIG = Path("/etc/station/station.toml")


def resolve_home(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The station home: ``explicit``, else ``$STATION_HOME``, else ``/var/lib/station``."""
    if explicit:
        return Path(explicit).expanduser().absolute()
    env = os.environ.get("STATION_HOME")
    if env:
        return Path(env).expanduser().absolute()
    return DEFAULT_HOME


@dataclass
class StationConfig:
    """Settings of one station, stored as TOML in ``<home>/station.toml``."""

    station_id: str = ""
    retention_days: int = 7
    disk_floor_mb: int = 200
    key_backend: str = "file"  # "file" or "systemd-creds"
    hpke_suite: str = "x25519"  # "x25519" or "mlkem768-x25519"
    central_url: str = ""
    idle_lock_seconds: int = 120
    heartbeat_seconds: int = 60
    chunk_size: int = 256 * 1024
    scanner_url: str = "sim://r30x"
    camera_url: str = "sim://camera?source=synthetic"
    printer: str = ""  # a printer URL (drivers/printer): escpos+usb://VID:PID, escpos+file:///dev/usb/lp0,
    # pdf:///path, sim://printer; or qt:NAME (a system printer); "" = a PDF per receipt in the home
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_toml(cls, text: str) -> StationConfig:
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"The station configuration is not valid TOML ({exc}): fix the file.") from exc
        known = {f.name for f in fields(cls)}
        kwargs: dict[str, Any] = {k: v for k, v in raw.items() if k in known and k != "extra"}
        extra = {k: v for k, v in raw.items() if k not in known}
        cfg = cls(**kwargs, extra=extra)
        cfg.check()
        return cfg

    def to_toml(self) -> str:
        data = {k: v for k, v in asdict(self).items() if k != "extra"}
        data.update(self.extra)
        return tomli_w.dumps(data)

    def check(self) -> None:
        if not isinstance(self.retention_days, int) or self.retention_days < 0:
            raise ConfigError("retention_days must be a whole number of days, 0 or more.")
        if not isinstance(self.disk_floor_mb, int) or self.disk_floor_mb < 0:
            raise ConfigError("disk_floor_mb must be a whole number of megabytes, 0 or more.")
        if self.key_backend not in ("file", "systemd-creds"):
            raise ConfigError("key_backend must be 'file' or 'systemd-creds'.")
        if self.hpke_suite not in ("x25519", "mlkem768-x25519"):
            raise ConfigError("hpke_suite must be 'x25519' or 'mlkem768-x25519'.")


@dataclass(frozen=True)
class PkiLayout:
    """The station's PKI files, all in one folder: the one place their names are written.

    ``station provision`` writes them, the agent, the doctor, the kiosk and the CLI read them.
    """

    dir: Path

    @property
    def station_cert(self) -> Path:
        """The station's TLS client certificate (its key is the identity key in ``keys/``)."""
        return self.dir / "station.crt"

    @property
    def ca_cert(self) -> Path:
        """Central's CA, pinned at provisioning."""
        return self.dir / "ca.crt"

    @property
    def central_hpke_pub(self) -> Path:
        """Central's HPKE public key (base64), what packets are sealed to."""
        return self.dir / "central-hpke.pub"

    @property
    def central_hpke_suite(self) -> Path:
        return self.dir / "central-hpke.suite"

    @property
    def receipt_pub(self) -> Path:
        """Central's receipt-signing key (Ed25519, PEM)."""
        return self.dir / "receipt.pub"

    @property
    def policy_pub(self) -> Path:
        """Central's policy-signing key (Ed25519, PEM), pinned at provisioning."""
        return self.dir / "policy.pub"

    @property
    def central_id(self) -> Path:
        return self.dir / "central-id"


@dataclass(frozen=True)
class StationHome:
    """The files of one station under its home directory."""

    root: Path

    @property
    def config_path(self) -> Path:
        """``$STATION_CONFIG``; else ``/etc/station/station.toml`` for the system home; else in the home."""
        env = os.environ.get("STATION_CONFIG")
        if env:
            return Path(env)
        if self.root == DEFAULT_HOME:
            return SYSTEM_CONFIG
        return self.root / CONFIG_NAME

    @property
    def keys_dir(self) -> Path:
        return self.root / "keys"

    @property
    def db_path(self) -> Path:
        return self.root / "queue.db"

    @property
    def pki_dir(self) -> Path:
        """Station certificate, central CA, central HPKE and receipt-signing public keys."""
        return self.root / "pki"

    @property
    def pki(self) -> PkiLayout:
        """The files in :attr:`pki_dir`, by what they are."""
        return PkiLayout(self.pki_dir)

    @property
    def log_dir(self) -> Path:
        return self.root / "log"

    @property
    def operators_dir(self) -> Path:
        return self.root / "operators"

    def exists(self) -> bool:
        return self.config_path.is_file()

    def load_config(self) -> StationConfig:
        if not self.config_path.is_file():
            raise ConfigError(
                f"No station here ({self.root}): run 'station init' (or 'station provision') first,"
                " or pass --home."
            )
        return StationConfig.from_toml(self.config_path.read_text(encoding="utf-8"))

    def save_config(self, cfg: StationConfig) -> None:
        cfg.check()
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.config_path
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        tmp = path.with_suffix(".toml.tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(cfg.to_toml())
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o640)
        os.replace(tmp, path)
