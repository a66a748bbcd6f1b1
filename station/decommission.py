"""Retiring a station: make sure nothing unsynced is lost, then crypto-erase it.

Crypto-erase means the keys are destroyed first (overwritten, then unlinked, or their sealed
credentials removed), so the encrypted queue is random bytes to anyone, wherever a copy of it went;
then the queue, certificates, operators and configuration are deleted too.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from station.errors import StationError
from station.home import StationHome
from station.keys import KeyStore


@dataclass
class DecommissionReport:
    station_id: str
    pending: int | None
    keys_destroyed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def pending_packets(home: StationHome, keystore: KeyStore) -> int:
    """Packets central has not acknowledged (sealed or uploading); raises StationError if unknown."""
    from station.store import Store

    store = Store.open(home.db_path, keystore.db_key())
    try:
        counts = store.counts()
    finally:
        store.close()
    return int(counts.get("sealed", 0)) + int(counts.get("uploading", 0))


def _remove(path: Path, removed: list[str]) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
        removed.append(str(path))
    elif path.is_dir():
        shutil.rmtree(path)
        removed.append(str(path) + "/")


def decommission(home: StationHome, *, force_unsynced: bool = False) -> DecommissionReport:
    """Destroy the keys and wipe the station; refuses while packets are unsynced unless forced."""
    cfg = home.load_config()
    keystore = KeyStore(home, cfg.key_backend)
    try:
        pending: int | None = pending_packets(home, keystore)
    except StationError as exc:
        if not force_unsynced:
            raise StationError(
                f"Cannot check for unsynced packets ({exc.message}). If the queue is known to be lost,"
                " run again with --force-unsynced.",
                code="decommission.unknown",
            ) from exc
        pending = None
    if pending and not force_unsynced:
        raise StationError(
            f"{pending} packet(s) have not been acknowledged by central yet. Connect the station and run"
            " 'station sync once' until it reports nothing pending; only if these packets are known to be"
            " lost, run again with --force-unsynced.",
            urdu="کچھ اندراجات ابھی مرکز کو نہیں پہنچے: پہلے ہم آہنگی مکمل کریں۔",
            code="decommission.unsynced",
        )
    report = DecommissionReport(station_id=cfg.station_id, pending=pending)
    report.keys_destroyed = keystore.destroy_all()
    for suffix in ("", "-wal", "-shm", "-journal"):
        _remove(home.db_path.with_name(home.db_path.name + suffix), report.removed)
    for directory in (home.keys_dir, home.pki_dir, home.operators_dir, home.log_dir):
        _remove(directory, report.removed)
    if home.root.is_dir():
        for leftover in sorted(home.root.iterdir()):
            _remove(leftover, report.removed)
    config = home.config_path
    if config.exists():
        _remove(config, report.removed)
    if home.root.is_dir():
        fd = os.open(home.root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    return report
