"""``/metrics`` at fleet scale, and the Prometheus rules and Grafana dashboard shipped in packaging/.

promtool is not part of the machine, so the rules file is parsed as YAML and checked for shape,
and every metric name the rules and the dashboard use must appear in a real ``/metrics`` answer.
No metric may carry a per-station label; the series count stays bounded by districts, not stations.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from packetformat.packet import uuid7
from sync.central.fleet import DistrictRow, Location
from sync.central.home import CentralHome
from sync.central.metrics import OTHER, fold_districts
from sync.central.storage import SqliteStorage
from sync.common.wire import Heartbeat, packet_path
from tests.central_support import (
    REPO,
    CentralProcess,
    Client,
    http_client,
    make_home,
    sealed,
    station_client,
    upload,
)

RULES = REPO / "packaging" / "prometheus" / "central-alerts.yml"
GRAFANA = REPO / "packaging" / "grafana" / "central-fleet.json"
NAME = re.compile(r"\bcentral_[a-z_]+\b")
SUFFIXES = ("_bucket", "_count", "_sum", "_created")


@dataclass
class Ops:
    home: CentralHome
    server: CentralProcess
    ops: Client
    station: Client
    metrics: str


@pytest.fixture(scope="module")
def central_ops(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ops]:
    root = tmp_path_factory.mktemp("metrics")
    home = make_home(root / "home")
    now = time.time()
    storage = SqliteStorage(home.db, home.blobs, home.uploads)
    try:
        for i in range(300):  # 300 stations in 6 districts
            storage.register_station(
                f"uc-{i:03d}", Location.checked(f"District {i % 6}", "T", f"UC-{i}"), now - 60
            )
        storage.record_heartbeat(
            Heartbeat(
                "uc-001", "2020-01-01T00:00:00Z", {"sealed": 500}, 9e5, None, 1, {"scanner": "missing"}
            ),
            now,
        )
    finally:
        storage.close()
    server = CentralProcess(home)
    try:
        station = station_client(home, root, "uc-002")
        with http_client(station, home) as http:
            assert upload(http, server.url, sealed(home, station)).status_code == 200
            assert http.get(f"{server.url}/metrics").status_code == 403  # counts a rejection too
            assert http.get(f"{server.url}{packet_path(uuid7())}").status_code == 200
        from sync.central.authority import Authority

        paths = Authority(home).ops_cert("prom", root / "ops")
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        from tests.central_support import write_identity

        key = serialization.load_pem_private_key(paths[0].read_bytes(), None)
        cert = x509.load_pem_x509_certificate(paths[1].read_bytes())
        ops = write_identity(root / "o", "prom", key, cert)  # type: ignore[arg-type]
        with http_client(ops, home) as http:
            r = http.get(f"{server.url}/metrics")
        assert r.status_code == 200
        yield Ops(home, server, ops, station, r.text)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def scraped(central_ops: Ops) -> str:
    return central_ops.metrics


def test_ops_json_api_and_station_page(central_ops: Ops) -> None:
    o = central_ops
    with http_client(o.station, o.home) as http:  # a station certificate sees none of it
        assert http.get(f"{o.server.url}/ops/v1/fleet").status_code == 403
        assert http.get(f"{o.server.url}/dashboard/station/uc-001").status_code == 403
    with http_client(o.ops, o.home) as http:
        fleet = http.get(f"{o.server.url}/ops/v1/fleet", params={"district": "district 1", "page": "1"})
        assert fleet.status_code == 200
        body = fleet.json()
        assert body["summary"]["stations"] == 50 and body["total"] == 50 and body["page_size"] == 50
        first = body["stations"][0]
        assert first["station_id"] == "uc-001" and "scanner_missing" in first["alerts"]
        assert len(body["ingest_per_day"]) == 14 and sum(d["packets"] for d in body["ingest_per_day"]) == 1
        assert {d["district"] for d in body["districts"]} >= {f"District {i}" for i in range(6)}
        odd = http.get(f"{o.server.url}/ops/v1/fleet", params={"alert": "nonsense", "page": "x"})
        assert odd.status_code == 200 and odd.json()["total"] == 300
        one = http.get(f"{o.server.url}/ops/v1/stations/uc-002").json()
        assert one["packets_stored"] == 1 and one["state"] == "ok"
        assert http.get(f"{o.server.url}/ops/v1/stations/uc-nobody").status_code == 404
        page = http.get(f"{o.server.url}/dashboard/station/uc-001")
        assert page.status_code == 200 and "scanner_missing" in page.text and "District 1" in page.text
        assert "<script" not in page.text and "default-src 'none'" in page.headers["Content-Security-Policy"]
        assert http.get(f"{o.server.url}/dashboard/station/uc-nobody").status_code == 404
        search = http.get(f"{o.server.url}/dashboard", params={"q": "<b>uc-00", "state": "trouble"})
        assert search.status_code == 200 and "&lt;b&gt;uc-00" in search.text and "<b>uc-00" not in search.text
        assert 'http-equiv="refresh"' not in search.text  # a search does not reload under the reader


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    return [
        (s.name, dict(s.labels), s.value) for f in text_string_to_metric_families(text) for s in f.samples
    ]


def test_fleet_gauges_are_per_district_and_state_only(scraped: str) -> None:
    got = samples(scraped)
    assert all("station" not in labels for _, labels, _ in got)
    stations = {(lb["district"], lb["state"]): v for n, lb, v in got if n == "central_stations"}
    assert sum(v for (_, state), v in stations.items() if state != "retired") == 300
    assert stations[("District 2", "ok")] == 1  # uc-002 uploaded a packet
    assert stations[("District 1", "trouble")] == 1 and stations[("District 1", "new")] == 49
    alerts = {lb["alert"]: v for n, lb, v in got if n == "central_alert_stations"}
    assert alerts["scanner_missing"] == 1 and alerts["low_disk"] == 1 and alerts["clock_skew"] == 1
    assert alerts["queue_depth"] == 1 and alerts["oldest_pending"] == 1
    assert next(v for n, _, v in got if n == "central_packets_today") == 1
    assert next(v for n, _, v in got if n == "central_oldest_pending_age_seconds") >= 9e5
    routes = {lb.get("route") for n, lb, _ in got if n == "central_request_duration_seconds_count"}
    assert "PUT /v1/packets/{packet_id}" in routes and "POST /v1/packets/{packet_id}/finalise" in routes
    assert len(got) < 600  # 7 districts x (4 states + 3 gauges) + per-kind + per-route: bounded


def test_districts_beyond_the_cap_fold_into_other() -> None:
    rows = [DistrictRow(f"D{i}", 10 + i, {"ok": 10 + i}, 0, i, float(i)) for i in range(500)]
    folded = fold_districts(rows, 300)
    assert len(folded) == 300 and folded[-1].district == OTHER
    assert sum(r.stations for r in folded) == sum(r.stations for r in rows)
    assert folded[-1].oldest_pending_age_s == 200.0  # the largest among the folded (D0..D200)


def test_rules_and_dashboard_use_only_metrics_that_exist(scraped: str) -> None:
    exposed = {n for n, _, _ in samples(scraped)} | set(re.findall(r"^# (?:HELP|TYPE) (\S+)", scraped, re.M))
    rules = yaml.safe_load(RULES.read_text())
    assert isinstance(rules["groups"], list) and rules["groups"]
    used: set[str] = set()
    for group in rules["groups"]:
        assert group["name"] and group["rules"]
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}
            assert rule["alert"] and rule["expr"] and rule["annotations"]["summary"]
            assert rule["expr"].count("(") == rule["expr"].count(")")
            used |= set(NAME.findall(rule["expr"]))
    dash = json.loads(GRAFANA.read_text())
    assert dash["panels"] and all(p["targets"] for p in dash["panels"])
    for panel in dash["panels"]:
        for target in panel["targets"]:
            assert target["expr"].count("(") == target["expr"].count(")")
            used |= set(NAME.findall(target["expr"]))
    assert len(used) >= 12
    missing = sorted(n for n in used if n not in exposed)
    assert not missing, f"metric names the packaging files use but /metrics does not have: {missing}"
    assert {n for n in used if n.endswith(SUFFIXES)} <= exposed
    assert Path(GRAFANA).read_text().count("station=") == 0
