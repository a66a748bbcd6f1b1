"""Prometheus metrics for ``/metrics`` (ops certificates only).

Counters live for the server process (packets, bytes, conflicts, rejections by reason); per-station
gauges are read from storage at scrape time so they are right after a restart too.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from sync.central.ops import StationStatus


class StationCollector(Collector):
    def __init__(
        self, statuses: Callable[[], list[StationStatus]], totals: Callable[[], dict[str, int]]
    ) -> None:
        self._statuses = statuses
        self._totals = totals

    def collect(self) -> Iterable[Metric]:
        statuses = self._statuses()
        now = time.time()
        pending = GaugeMetricFamily(
            "central_station_pending_packets", "Packets queued at the station", labels=["station"]
        )
        seen = GaugeMetricFamily(
            "central_station_last_seen_timestamp_seconds", "Last contact from the station", labels=["station"]
        )
        oldest = GaugeMetricFamily(
            "central_station_oldest_pending_age_seconds",
            "Age of the oldest unsynced packet",
            labels=["station"],
        )
        expiry = GaugeMetricFamily(
            "central_station_cert_expiry_seconds",
            "Seconds until the station certificate expires",
            labels=["station"],
        )
        alerts = GaugeMetricFamily("central_station_alerts", "Active alerts", labels=["station", "alert"])
        for s in statuses:
            if s.pending is not None:
                pending.add_metric([s.station_id], float(s.pending))
            if s.last_seen is not None:
                seen.add_metric([s.station_id], s.last_seen)
            if s.oldest_pending_age_s is not None:
                oldest.add_metric([s.station_id], s.oldest_pending_age_s)
            if s.cert_not_after is not None:
                expiry.add_metric([s.station_id], s.cert_not_after - now)
            for a in s.alerts:
                alerts.add_metric([s.station_id, a], 1.0)
        totals = self._totals()
        stored = GaugeMetricFamily("central_packets_stored", "Packets stored durably")
        stored.add_metric([], float(totals.get("packets", 0)))
        stored_bytes = GaugeMetricFamily("central_stored_bytes", "Bytes of stored envelopes")
        stored_bytes.add_metric([], float(totals.get("bytes", 0)))
        partial = GaugeMetricFamily("central_partial_uploads", "Uploads started and not finalised")
        partial.add_metric([], float(totals.get("partial_uploads", 0)))
        partial_bytes = GaugeMetricFamily("central_partial_upload_bytes", "Bytes held by unfinished uploads")
        partial_bytes.add_metric([], float(totals.get("partial_bytes", 0)))
        return [pending, seen, oldest, expiry, alerts, stored, stored_bytes, partial, partial_bytes]


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

    def attach(
        self, statuses: Callable[[], list[StationStatus]], totals: Callable[[], dict[str, int]]
    ) -> None:
        self.registry.register(StationCollector(statuses, totals))

    def render(self) -> bytes:
        return generate_latest(self.registry)
