"""The station's status as one typed snapshot: what ``station status``, the kiosk's status screen,
the sync agent's heartbeat and ``station doctor`` all show.

:func:`take_status` builds a :class:`StationStatus` from the pieces a process has at hand (the
open queue and its audit log, the configuration, the certificate, the device presence);
:func:`home_status` gathers those pieces from a station home, :func:`read_status` opens the home
first. Each part has its own builder (:func:`queue_status`,
:func:`certificate_status`, :func:`disk_status`) so the doctor can check a part even when another
cannot be read (a queue that will not open still leaves the disk and the certificate to check).
Renderers only format: nothing here prints, and no business rule lives in a renderer.

The snapshot holds counts, times, codes and versions, never a citizen's data.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cryptography import x509

from station import __version__
from station.home import PkiLayout, StationConfig, StationHome
from station.session import free_bytes
from station.store import PENDING_STATES, STATES

# Written by the sync agent into the queue's meta table, read by every status view.
LAST_SYNC_AT = "last_sync_at"  # ISO 8601 UTC of the last pass that reached central
SYNC_STATUS = "sync_status"  # the agent's one-line state ("idle", "offline", ...)
CENTRAL_REACHABLE = "central_reachable"  # "1"/"0" from the agent's last heartbeat


class StatusStore(Protocol):
    """What a status snapshot reads of ``station.store.Store``."""

    def counts(self) -> dict[str, int]: ...
    def oldest_pending_created_at(self) -> float | None: ...
    def meta_get(self, key: str) -> str | None: ...
    def meta_set(self, key: str, value: str) -> None: ...
    def select(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]: ...
    def transaction(self) -> Any: ...


class StatusAudit(Protocol):
    def head(self) -> tuple[int, str]: ...


@dataclass(frozen=True)
class QueueStatus:
    """The queue's part: packet counts per state, the oldest unsent packet, the sync agent's notes,
    the audit head, the policy in force and the outcomes central sent back."""

    counts: Mapping[str, int]
    oldest_pending_age_s: float | None
    last_sync_at: str | None  # ISO 8601 UTC, written by the sync agent
    sync_status: str | None
    central_reachable: bool | None  # from the agent's last heartbeat; None before the first
    audit_seq: int
    audit_head: str
    policy_version: int
    outcomes: Mapping[str, int]

    @property
    def pending(self) -> int:
        return sum(int(self.counts.get(state, 0)) for state in PENDING_STATES)

    @property
    def last_sync_timestamp(self) -> float | None:
        if not self.last_sync_at:
            return None
        try:
            return dt.datetime.fromisoformat(self.last_sync_at.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None


@dataclass(frozen=True)
class CertificateStatus:
    """The station's TLS certificate: whether the file is there and, when it reads, its validity."""

    present: bool
    not_before: dt.datetime | None = None
    not_after: dt.datetime | None = None
    problem: str = ""  # why a present file could not be read

    def days_left(self, now: dt.datetime) -> int | None:
        return None if self.not_after is None else (self.not_after - now).days


@dataclass(frozen=True)
class DiskStatus:
    free_bytes: int
    floor_bytes: int

    @property
    def free_mb(self) -> int:
        return self.free_bytes // (1024 * 1024)

    @property
    def floor_mb(self) -> int:
        return self.floor_bytes // (1024 * 1024)

    @property
    def below_floor(self) -> bool:
        return self.free_bytes < self.floor_bytes


@dataclass(frozen=True)
class StationStatus:
    """One station at one moment. ``queue`` is None when the queue could not be read (``problem``
    says why, in words a person can act on)."""

    station_id: str
    taken_at: float
    version: str
    central_url: str
    retention_days: int
    disk: DiskStatus
    certificate: CertificateStatus
    devices: Mapping[str, str] = field(default_factory=dict)  # name -> drivers.discovery.presence
    queue: QueueStatus | None = None
    problem: str = ""

    @property
    def provisioned(self) -> bool:
        return self.certificate.present


def _flag(raw: str | None) -> bool | None:
    if raw in (None, ""):
        return None
    return str(raw) in ("1", "true", "True", "yes")


def queue_status(store: StatusStore, audit_head: tuple[int, str], *, now: float) -> QueueStatus:
    """The queue's part of the snapshot, read from an open store."""
    from station.outcomes import counts as outcome_counts
    from station.policy import policy_in_force

    raw = store.counts()
    counts = {state: int(raw.get(state, 0)) for state in STATES}
    oldest = store.oldest_pending_created_at()
    seq, head = audit_head
    return QueueStatus(
        counts=counts,
        oldest_pending_age_s=None if oldest is None else max(0.0, now - oldest),
        last_sync_at=store.meta_get(LAST_SYNC_AT),
        sync_status=store.meta_get(SYNC_STATUS),
        central_reachable=_flag(store.meta_get(CENTRAL_REACHABLE)),
        audit_seq=seq,
        audit_head=head,
        policy_version=policy_in_force(store).version,
        outcomes=outcome_counts(store),
    )


def certificate_status(pki: PkiLayout) -> CertificateStatus:
    """The station certificate in ``pki`` (:class:`station.home.PkiLayout` names the file)."""
    path = pki.station_cert
    if not path.is_file():
        return CertificateStatus(present=False)
    try:
        return certificate_of(x509.load_pem_x509_certificate(path.read_bytes()))
    except (OSError, ValueError) as exc:
        return CertificateStatus(
            present=True,
            problem=f"{path} cannot be read ({type(exc).__name__}): provision the station again",
        )


def certificate_of(cert: x509.Certificate) -> CertificateStatus:
    return CertificateStatus(
        present=True, not_before=cert.not_valid_before_utc, not_after=cert.not_valid_after_utc
    )


def disk_status(
    path: Path, config: StationConfig, *, disk_free: Callable[[Path], int] = free_bytes
) -> DiskStatus:
    """Free bytes on the disk holding ``path`` (its nearest existing parent) and the configured floor."""
    return DiskStatus(free_bytes=disk_free(path), floor_bytes=config.disk_floor_mb * 1024 * 1024)


def device_presence(config: StationConfig) -> dict[str, str]:
    """Scanner and camera presence from their configured URLs (``drivers.discovery.presence``)."""
    from drivers.discovery import presence

    return {"scanner": presence(config.scanner_url), "camera": presence(config.camera_url)}


def take_status(
    store: StatusStore | None,
    audit: StatusAudit | None,
    *,
    config: StationConfig,
    disk_path: Path,
    certificate: CertificateStatus,
    devices: Mapping[str, str],
    now: float | None = None,
    disk_free: Callable[[Path], int] = free_bytes,
    problem: str = "",
) -> StationStatus:
    """The snapshot, the one place a :class:`StationStatus` is made: the queue (when ``store`` and its
    ``audit`` log are given), the certificate, the device presence and the disk holding ``disk_path``.

    Every view takes it through here: :func:`home_status` fills the arguments from a station home
    (the CLI, the kiosk, the doctor), the sync agent from what it holds (its certificate, its store)."""
    taken = time.time() if now is None else now
    queue = queue_status(store, audit.head(), now=taken) if store is not None and audit is not None else None
    return StationStatus(
        station_id=config.station_id,
        taken_at=taken,
        version=__version__,
        central_url=config.central_url,
        retention_days=config.retention_days,
        disk=disk_status(disk_path, config, disk_free=disk_free),
        certificate=certificate,
        devices=dict(devices),
        queue=queue,
        problem=problem,
    )


def home_status(
    home: StationHome,
    config: StationConfig,
    store: StatusStore | None,
    audit: StatusAudit | None,
    *,
    now: float | None = None,
    disk_free: Callable[[Path], int] = free_bytes,
    problem: str = "",
) -> StationStatus:
    """:func:`take_status` for a station home: the disk under the home, the certificate in its
    ``pki/``, the presence of the configured scanner and camera."""
    return take_status(
        store,
        audit,
        config=config,
        disk_path=home.root,
        certificate=certificate_status(home.pki),
        devices=device_presence(config),
        now=now,
        disk_free=disk_free,
        problem=problem,
    )


def read_status(home: StationHome, *, now: float | None = None) -> StationStatus:
    """Open the station in ``home`` (without the page-by-page integrity check) and take its status.

    Raises the ``StationError`` of a configuration or queue that cannot be opened (``station
    status`` prints it); the kiosk, which must show something, passes its open store to
    :func:`home_status` instead."""
    from station.session import open_station

    with open_station(home, integrity_check=False) as station:
        return home_status(
            home, station.config, station.store, station.audit, now=now, disk_free=station.free_bytes
        )
