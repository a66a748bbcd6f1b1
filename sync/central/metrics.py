"""Prometheus metrics for ``/metrics`` (ops certificates only), bounded at 10,000 stations.

No metric has a per-station label: fleet gauges are aggregates per district and state (districts
come from the registry; past :data:`MAX_DISTRICTS` the smallest are folded into ``other``), alert
counts are per kind, request latency is per route. Per-station detail is on the dashboard and in
the ops JSON API. Fleet gauges are computed in the database at scrape time (right after a restart
and the same on every node); counters and histograms are this process's own.

Names (``packaging/prometheus/central-alerts.yml`` and the Grafana dashboard use them; a test
checks that every name they use is in this output):

- ``central_stations{district,state}``, ``central_alert_stations{alert}``
- ``central_district_silent_stations{district}``, ``central_district_pending_packets{district}``,
  ``central_district_oldest_pending_age_seconds{district}``, ``central_oldest_pending_age_seconds``
- ``central_packets_today``, ``central_packets_stored``, ``central_stored_bytes``,
  ``central_partial_uploads``
- counters ``central_packets_received_total``, ``central_packets_duplicate_total``,
  ``central_bytes_received_total``, ``central_conflicts_total``, ``central_rejections_total{reason}``,
  ``central_heartbeats_total``; histogram ``central_request_duration_seconds{route}``
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from sync.central.fleet import (
    ALERT_KINDS,
    STATES,
    UNASSIGNED,
    DistrictRow,
    FleetSummary,
    StationFilter,
    Thresholds,
)
from sync.central.storage import Storage

MAX_DISTRICTS = 300
OTHER = "other"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0, 10.0)


def fold_districts(rows: list[DistrictRow], limit: int = MAX_DISTRICTS) -> list[DistrictRow]:
    """At most ``limit`` rows: the largest districts, the rest summed into ``other``."""
    if len(rows) <= limit:
        return rows
    ordered = sorted(rows, key=lambda r: (-r.stations, r.district))
    keep, rest = ordered[: limit - 1], ordered[limit - 1 :]
    ages = [r.oldest_pending_age_s for r in rest if r.oldest_pending_age_s is not None]
    other = DistrictRow(
        district=OTHER,
        stations=sum(r.stations for r in rest),
        by_state={s: sum(r.by_state.get(s, 0) for r in rest) for s in STATES},
        silent=sum(r.silent for r in rest),
        pending=sum(r.pending for r in rest),
        oldest_pending_age_s=max(ages) if ages else None,
    )
    return [*keep, other]


class FleetCollector(Collector):
    def __init__(
        self, storage: Storage, thresholds: Callable[[], Thresholds], clock: Callable[[], float] = time.time
    ) -> None:
        self._storage = storage
        self._thresholds = thresholds
        self._clock = clock

    def collect(self) -> Iterable[Metric]:
        now = self._clock()
        th = self._thresholds()
        summary: FleetSummary = self._storage.fleet_summary(th, StationFilter(), now)
        rows = fold_districts(self._storage.district_rollup(th, now, 100_000))
        stations = GaugeMetricFamily(
            "central_stations",
            "Stations by district and state (ok, trouble, new, retired)",
            labels=["district", "state"],
        )
        silent = GaugeMetricFamily(
            "central_district_silent_stations",
            "Stations not heard from past the silent threshold",
            labels=["district"],
        )
        pending = GaugeMetricFamily(
            "central_district_pending_packets",
            "Packets queued at the stations of the district",
            labels=["district"],
        )
        oldest_d = GaugeMetricFamily(
            "central_district_oldest_pending_age_seconds",
            "Age of the oldest unsynced packet in the district",
            labels=["district"],
        )
        for r in rows:
            name = r.district or UNASSIGNED
            for state in STATES:
                stations.add_metric([name, state], float(r.by_state.get(state, 0)))
            silent.add_metric([name], float(r.silent))
            pending.add_metric([name], float(r.pending))
            oldest_d.add_metric([name], float(r.oldest_pending_age_s or 0.0))
        alerts = GaugeMetricFamily("central_alert_stations", "Stations with each alert", labels=["alert"])
        for kind in ALERT_KINDS:
            alerts.add_metric([kind], float(summary.alerts.get(kind, 0)))
        oldest = GaugeMetricFamily(
            "central_oldest_pending_age_seconds", "Age of the oldest unsynced packet anywhere (0: none)"
        )
        oldest.add_metric([], float(summary.oldest_pending_age_s or 0.0))
        today = GaugeMetricFamily("central_packets_today", "Packets stored since 00:00 UTC")
        today.add_metric([], float(summary.packets_today))
        totals = self._storage.totals()
        stored = GaugeMetricFamily("central_packets_stored", "Packets stored durably")
        stored.add_metric([], float(totals.get("packets", 0)))
        stored_bytes = GaugeMetricFamily("central_stored_bytes", "Bytes of stored envelopes")
        stored_bytes.add_metric([], float(totals.get("bytes", 0)))
        partial = GaugeMetricFamily("central_partial_uploads", "Uploads started and not finalised")
        partial.add_metric([], float(totals.get("partial_uploads", 0)))
        return [stations, silent, pending, oldest_d, alerts, oldest, today, stored, stored_bytes, partial]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.packets = Counter("central_packets_received", "Packets accepted (new)", registry=self.registry)
        self.duplicates = Counter(
            "central_packets_duplicate", "Packets uploaded again (same receipt)", registry=self.registry
        )
        self.bytes = Counter("central_bytes_received", "Chunk bytes accepted", registry=self.registry)
        self.conflicts = Counter(
            "central_conflicts", "Same packet id with other content", registry=self.registry
        )
        self.rejections = Counter(
            "central_rejections", "Requests refused, by reason", labelnames=["reason"], registry=self.registry
        )
        self.heartbeats = Counter("central_heartbeats", "Heartbeats received", registry=self.registry)
        self.latency = Histogram(
            "central_request_duration_seconds",
            "Time to answer a request, by route (this node)",
            labelnames=["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

    def attach(self, storage: Storage, thresholds: Callable[[], Thresholds]) -> None:
        self.registry.register(FleetCollector(storage, thresholds))

    def render(self) -> bytes:
        return generate_latest(self.registry)
