"""One open station: its configuration, keys, encrypted queue and audit log, as every process sees it.

``open_station`` is what the kiosk, the sync agent and the CLI call first. It stops with a clear
:class:`~station.errors.StationError` (and touches nothing) when the configuration, a key or the
database is wrong; ``init_station`` creates a new station home.
"""

from __future__ import annotations

import base64
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from packetformat.packet import generate_recipient_keypair, recipient_suite_of
from station.audit import AuditLog
from station.errors import ConfigError, DiskFull, StationError
from station.home import StationConfig, StationHome
from station.keys import KeyStore
from station.store import Store

DEMO_RECIPIENT_NAME = "demo-recipient.key"  # only in demo homes: lets the demo open its own packets
STATION_ID_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-")

DiskUsage = Callable[[Path], int]


def free_bytes(path: Path) -> int:
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free


def check_station_id(station_id: str) -> str:
    sid = station_id.strip().lower()
    if not (3 <= len(sid) <= 40) or not set(sid) <= STATION_ID_CHARS or sid[0] == "-" or sid[-1] == "-":
        raise ConfigError(
            f"Station id {station_id!r} is not valid: use 3-40 lowercase letters, digits and dashes,"
            " e.g. uc-lhr-0421-01."
        )
    return sid


@dataclass
class Station:
    home: StationHome
    config: StationConfig
    keys: KeyStore
    store: Store
    audit: AuditLog
    free_bytes: DiskUsage = field(default=free_bytes)

    @property
    def station_id(self) -> str:
        return self.config.station_id

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Station:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def central_public_key(self) -> tuple[bytes, str]:
        """The central office's HPKE public key and its suite (from provisioning, or the demo's)."""
        path = self.home.pki.central_hpke_pub
        if not path.is_file():
            raise StationError(
                "This station has no central office key yet: provision it ('station provision') before"
                " enrolling.",
                urdu="اس اسٹیشن کی ابھی مرکز سے رجسٹریشن نہیں ہوئی: ٹیکنیشن کو بلائیں۔",
                code="station.not_provisioned",
            )
        try:
            public = base64.b64decode(path.read_text(encoding="ascii").strip(), validate=True)
            suite = recipient_suite_of(public)
        except (ValueError, UnicodeDecodeError) as exc:
            raise StationError(
                f"The central office key in {path} is damaged: provision the station again.",
                code="station.bad_central_key",
            ) from exc
        return public, suite

    def check_disk(self) -> int:
        """Free bytes; raises DiskFull below the configured floor (no new enrollment then)."""
        free = self.free_bytes(self.home.root)
        floor = self.config.disk_floor_mb * 1024 * 1024
        if free < floor:
            raise DiskFull(
                f"Only {free // (1024 * 1024)} MB of disk is free"
                f" (the floor is {self.config.disk_floor_mb} MB):"
                " no new enrollment can start. Let the station sync, then run 'station purge', or call a"
                " technician.",
                urdu="ڈسک تقریباً بھر چکی ہے: نیا اندراج شروع نہیں ہو سکتا۔ ٹیکنیشن کو بلائیں۔",
            )
        return free


def open_station(home: StationHome, *, integrity_check: bool = True, rollback_check: bool = True) -> Station:
    """Open the station; refuses a queue rolled back behind its anchor (``station.anchor``) unless
    ``rollback_check`` is off (only ``station audit acknowledge-rollback`` turns it off)."""
    from station.anchor import anchor_key, check

    cfg = home.load_config()
    keys = KeyStore(home, cfg.key_backend)
    db_key = keys.db_key()
    store = Store.open(home.db_path, db_key, integrity_check=integrity_check)
    try:
        if rollback_check:
            check(store, anchor_key(db_key))
    except BaseException:
        store.close()
        raise
    store.anchor_key = anchor_key(db_key)
    return Station(home=home, config=cfg, keys=keys, store=store, audit=AuditLog(store))


def write_central_public_key(home: StationHome, public: bytes) -> None:
    recipient_suite_of(public)  # refuses a malformed key
    home.pki_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = home.pki.central_hpke_pub
    tmp = path.with_suffix(".tmp")
    tmp.write_text(base64.b64encode(public).decode("ascii") + "\n", encoding="ascii")
    tmp.replace(path)


def init_station(
    home: StationHome,
    station_id: str,
    *,
    demo: bool = False,
    key_backend: str = "file",
    hpke_suite: str = "x25519",
) -> Station:
    """Create keys, configuration and an empty queue. Refuses to touch an existing station."""
    sid = check_station_id(station_id)
    if home.exists() or home.db_path.exists():
        raise StationError(
            f"A station already exists in {home.root}: nothing was changed. Use another --home, or"
            " 'station decommission' first.",
            code="station.exists",
        )
    home.root.mkdir(parents=True, exist_ok=True, mode=0o700)
    cfg = StationConfig(station_id=sid, key_backend=key_backend, hpke_suite=hpke_suite)
    if demo:
        cfg.extra["demo"] = True
    keys = KeyStore(home, key_backend)
    db_key = keys.create_db_key()
    keys.create_identity_key()
    # The operators file's key is made here, by the technician (root), because the kiosk runs as the
    # unprivileged station user and cannot seal a new credential itself.
    keys.put("operators", secrets.token_bytes(32))
    if demo:
        private, public = generate_recipient_keypair(hpke_suite)
        write_central_public_key(home, public)
        keys.put("demo-recipient", private)
    store = Store.open(home.db_path, db_key, create=True)
    from station.anchor import anchor_key

    store.anchor_key = anchor_key(db_key)
    store.meta_set("anchor_in_use", "1")
    home.save_config(cfg)
    station = Station(home=home, config=cfg, keys=keys, store=store, audit=AuditLog(store))
    station.audit.append("station.init", station=sid, demo=int(demo))
    from station.ownership import settle

    settle(home)  # as root on an installed appliance: the files go to the station user
    return station
