"""The fleet model ops work with: where a station stands, its state, its alerts and the thresholds.

Shared by every storage backend, the ``central status`` / ``central station`` commands, the
dashboard and the metrics, so the rules (what "silent" or "low disk" means, which alerts a retired
station still raises: none) live in one place. The thresholds come from ``[alerts]`` in
``central.toml``; :mod:`sync.central.fleet_sql` turns them into SQL so a backend can count, filter
and page 10,000 stations without loading them.

Alert kinds, most serious first: ``revoked``, ``audit_broken``, ``audit_rewound``, ``conflict``,
``packet_id_reused`` (this station uploaded under a packet id another station already holds),
``silent`` (no contact for longer than ``silent_after``; a registered station that never called
counts from its registration), ``cert_expired``, ``cert_expiring``, ``clock_skew``, ``low_disk``,
``scanner_missing``, ``camera_missing``, ``queue_depth``, ``oldest_pending``.

Station states: ``retired`` (``central station retire``: revoked, no alerts), ``trouble`` (at least
one alert), ``new`` (registered, never called, not yet silent), ``ok``.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from dataclasses import asdict, dataclass, field
from typing import Any

from sync.central.home import CentralError
from sync.pki.tokens import parse_duration

ALERT_KINDS: tuple[str, ...] = (
    "revoked",
    "audit_broken",
    "audit_rewound",
    "conflict",
    "packet_id_reused",
    "silent",
    "cert_expired",
    "cert_expiring",
    "clock_skew",
    "low_disk",
    "scanner_missing",
    "camera_missing",
    "queue_depth",
    "oldest_pending",
)
STORED_ALERT_KINDS: tuple[str, ...] = ("audit_broken", "audit_rewound", "conflict", "packet_id_reused")
STATES: tuple[str, ...] = ("ok", "trouble", "new", "retired")
UNASSIGNED = "(unassigned)"  # the district shown for a station seen or certified but never registered

NAME_MAX = 64
LABEL_MAX = 120


@dataclass(frozen=True)
class Thresholds:
    """When a heartbeat value becomes an alert (``[alerts]`` in ``central.toml``)."""

    silent_after_s: float = 86400.0
    cert_warning_s: float = 7 * 86400.0
    low_disk_bytes: int = 1024 * 1024 * 1024
    queue_depth: int = 100
    oldest_pending_s: float = 48 * 3600.0
    clock_skew_s: float = 300.0

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Thresholds:
        """Read ``[alerts]``: durations as ``30m``/``24h``/``7d``, ``low_disk_mb`` and ``queue_depth``."""
        table = config.get("alerts", {})
        if not isinstance(table, dict):
            raise CentralError("[alerts] in central.toml must be a table", code="config.alerts")
        base = cls()

        def duration(key: str, default: float) -> float:
            raw = table.get(key)
            if raw is None:
                return default
            try:
                return parse_duration(str(raw))
            except ValueError as exc:
                raise CentralError(f"[alerts] {key} in central.toml: {exc}", code="config.alerts") from exc

        def count(key: str, default: int) -> int:
            raw = table.get(key, default)
            if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
                raise CentralError(
                    f"[alerts] {key} in central.toml must be a whole number >= 0", code="config.alerts"
                )
            return raw

        known = {"silent_after", "cert_warning", "low_disk_mb", "queue_depth", "oldest_pending", "clock_skew"}
        unknown = sorted(set(table) - known)
        if unknown:
            raise CentralError(
                f"[alerts] in central.toml has unknown key(s) {', '.join(unknown)}:"
                f" use {', '.join(sorted(known))}",
                code="config.alerts",
            )
        return cls(
            silent_after_s=duration("silent_after", base.silent_after_s),
            cert_warning_s=duration("cert_warning", base.cert_warning_s),
            low_disk_bytes=count("low_disk_mb", base.low_disk_bytes // (1024 * 1024)) * 1024 * 1024,
            queue_depth=count("queue_depth", base.queue_depth),
            oldest_pending_s=duration("oldest_pending", base.oldest_pending_s),
            clock_skew_s=duration("clock_skew", base.clock_skew_s),
        )


@dataclass(frozen=True)
class Location:
    """Where a station stands: district, tehsil, union council, and a free label (no PII)."""

    district: str
    tehsil: str
    union_council: str
    label: str = ""

    @classmethod
    def checked(cls, district: str, tehsil: str, union_council: str, label: str = "") -> Location:
        """Trimmed names; ``CentralError`` naming the field that is empty, too long or not printable."""
        values = {}
        for name, value, limit, required in (
            ("district", district, NAME_MAX, True),
            ("tehsil", tehsil, NAME_MAX, True),
            ("union council", union_council, NAME_MAX, True),
            ("label", label, LABEL_MAX, False),
        ):
            clean = " ".join(unicodedata.normalize("NFC", value).split())
            if required and not clean:
                raise CentralError(
                    f"the {name} is empty: give the name as the registry spells it",
                    code="registry.bad_location",
                )
            if len(clean) > limit:
                raise CentralError(
                    f"the {name} is longer than {limit} characters: shorten it", code="registry.bad_location"
                )
            if not clean.isprintable() or any(c in clean for c in "<>&\"'`"):
                raise CentralError(
                    f"the {name} has characters that are not allowed (<>&\"'` or control)",
                    code="registry.bad_location",
                )
            values[name] = clean
        return cls(values["district"], values["tehsil"], values["union council"], values["label"])


@dataclass(frozen=True)
class StationFilter:
    """Which stations a listing shows. ``trouble_only`` is the default view of ``central status``."""

    district: str | None = None
    alert: str | None = None
    stale_s: float | None = None
    search: str | None = None
    state: str | None = None
    trouble_only: bool = False
    order: str = "trouble"  # "trouble": in trouble first, worst first; "id": by station id

    def __post_init__(self) -> None:
        if self.order not in ("trouble", "id"):
            raise ValueError(f"unknown order {self.order!r}")
        if self.alert is not None and self.alert not in ALERT_KINDS:
            raise ValueError(f"unknown alert kind {self.alert!r}")
        if self.state is not None and self.state not in STATES:
            raise ValueError(f"unknown state {self.state!r}")


@dataclass
class StationStatus:
    """One station as ops see it (no PII: ids, place names, counts, times)."""

    station_id: str
    state: str
    district: str | None
    tehsil: str | None
    union_council: str | None
    label: str | None
    last_seen: float | None
    pending: int | None
    oldest_pending_age_s: float | None
    cert_not_after: float | None
    packets_stored: int
    version: str | None
    disk_free_bytes: int | None = None
    scanner: str | None = None
    camera: str | None = None
    clock_skew_s: float | None = None
    registered_at: float | None = None
    retired_at: float | None = None
    alerts: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class FleetSummary:
    """The first thing ``central status`` and the dashboard show."""

    stations: int
    by_state: dict[str, int]
    alerts: dict[str, int]
    packets_today: int
    oldest_pending_age_s: float | None
    oldest_pending_station: str | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DistrictRow:
    """One line of the district roll-up."""

    district: str
    stations: int
    by_state: dict[str, int]
    silent: int
    pending: int
    oldest_pending_age_s: float | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class StationPage:
    total: int
    offset: int
    stations: list[StationStatus]


def utc_day(ts: float) -> str:
    """``YYYY-MM-DD`` of a POSIX time in UTC (the key of the per-day ingest counts)."""
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d")


def last_days(now: float, days: int) -> list[str]:
    """The ``days`` UTC days ending today, oldest first."""
    today = dt.datetime.fromtimestamp(now, dt.UTC).date()
    return [(today - dt.timedelta(days=n)).isoformat() for n in range(days - 1, -1, -1)]


def skew_of(sent_at: str, received: float) -> float | None:
    """Station clock minus central clock, from the heartbeat's ``sent_at`` (None if unreadable)."""
    try:
        sent = dt.datetime.fromisoformat(sent_at.replace("Z", "+00:00"))
    except ValueError:
        return None
    if sent.tzinfo is None:
        return None
    return sent.timestamp() - received
