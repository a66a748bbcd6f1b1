"""What ops look at, as text: the fleet summary and the table of stations (``central status``).

The numbers come from the storage backend's fleet queries (:mod:`sync.central.fleet_sql`), so
the same summary, filters and order serve the CLI, the dashboard and the JSON API. Alert kinds and
states are defined in :mod:`sync.central.fleet`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from dataclasses import dataclass
from typing import Any

from sync.central.fleet import (
    STATES,
    UNASSIGNED,
    FleetSummary,
    StationFilter,
    StationPage,
    StationStatus,
    Thresholds,
)
from sync.central.home import CentralHome
from sync.central.storage import Storage

__all__ = ["FleetView", "StationStatus", "fleet_view", "format_summary", "format_table", "thresholds"]


def iso_utc(ts: float | None) -> str:
    if ts is None:
        return "-"
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def human_age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = max(0.0, seconds)
    if s < 120:
        return f"{s:.0f}s"
    if s < 7200:
        return f"{s / 60:.0f}m"
    if s < 172800:
        return f"{s / 3600:.1f}h"
    return f"{s / 86400:.1f}d"


def human_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"


def thresholds(home: CentralHome) -> Thresholds:
    """The alert thresholds of this central (``[alerts]`` in ``central.toml``)."""
    return Thresholds.from_config(home.config())


@dataclass(frozen=True)
class FleetView:
    summary: FleetSummary
    page: StationPage
    totals: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        return {
            "summary": self.summary.to_json(),
            "totals": self.totals,
            "total": self.page.total,
            "offset": self.page.offset,
            "stations": [s.to_json() for s in self.page.stations],
        }


def fleet_view(
    storage: Storage,
    th: Thresholds,
    flt: StationFilter,
    *,
    offset: int = 0,
    limit: int = 100,
    now: float | None = None,
) -> FleetView:
    """The summary of the stations ``flt`` selects (ignoring ``trouble_only``) and one page of them."""
    t = time.time() if now is None else now
    summary_filter = dataclasses.replace(flt, trouble_only=False)
    summary = storage.fleet_summary(th, summary_filter, t)
    page = storage.station_page(th, flt, t, offset, limit)
    return FleetView(summary, page, storage.totals())


def format_summary(view: FleetView) -> str:
    s = view.summary
    states = ", ".join(f"{s.by_state.get(k, 0)} {k}" for k in STATES)
    alerts = ", ".join(f"{k} {n}" for k, n in s.alerts.items() if n) or "none"
    if s.oldest_pending_station is None:
        oldest = "none reported (no station's last heartbeat had a packet waiting)"
    else:
        oldest = f"{human_age(s.oldest_pending_age_s)} old, at {s.oldest_pending_station}"
    totals = view.totals
    return "\n".join(
        [
            f"stations          {s.stations} ({states})",
            f"packets today     {s.packets_today} (UTC day); {totals.get('packets', 0)} stored,"
            f" {totals.get('partial_uploads', 0)} uploads in progress",
            f"oldest unsynced   {oldest}",
            f"alerts            {alerts}",
        ]
    )


def format_table(statuses: list[StationStatus], *, now: float | None = None) -> str:
    t = time.time() if now is None else now
    header = ("STATION", "DISTRICT", "STATE", "LAST SEEN", "PENDING", "OLDEST", "CERT EXPIRES", "ALERTS")
    lines = [header]
    for s in statuses:
        seen = "never" if s.last_seen is None else f"{human_age(t - s.last_seen)} ago"
        lines.append(
            (
                s.station_id,
                s.district or UNASSIGNED,
                s.state,
                seen,
                "-" if s.pending is None else str(s.pending),
                human_age(s.oldest_pending_age_s),
                iso_utc(s.cert_not_after),
                ",".join(s.alerts) or ("-" if s.state in ("new", "retired") else "ok"),
            )
        )
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    text = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in lines]
    return "\n".join(text)
