"""The fleet in the storage backend: registry, alerts from heartbeats, states, filters, paging, roll-up.

Runs on both real backends (the ``storage`` fixture: SQLite on disk, a throwaway PostgreSQL) with
the clock passed in, so "silent for a day" is tested without waiting a day.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
import uuid

import pytest

from sync.central.fleet import ALERT_KINDS, Location, StationFilter, Thresholds
from sync.central.home import CentralError
from sync.central.storage import Storage, StoredPacket
from sync.common.wire import Heartbeat

NOW = 1_800_000_000.0  # a fixed "now" (2027-01-15)
TH = Thresholds()


def iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def beat(
    sid: str,
    *,
    at: float = NOW,
    sent_offset: float = 0.0,
    sealed: int = 0,
    oldest: float | None = None,
    disk: int = 50 * 10**9,
    scanner: str = "ok",
    camera: str = "ok",
    cert_days: float = 20,
    seq: int = 1,
) -> Heartbeat:
    return Heartbeat(
        station_id=sid,
        sent_at=iso(at + sent_offset),
        counts={"sealed": sealed, "uploading": 0, "acked": 5, "purged": 0},
        oldest_pending_age_s=oldest,
        last_sync_at=None,
        disk_free_bytes=disk,
        devices={"scanner": scanner, "camera": camera},
        version="0.1.0",
        cert_not_after=iso(at + cert_days * 86400),
        audit_head="ab" * 32,
        audit_seq=seq,
    )


def where(district: str, n: int = 0) -> Location:
    return Location.checked(district, f"{district} City", f"UC-{n}", "counter 1")


def test_each_alert_kind_from_heartbeats_and_events(storage: Storage) -> None:
    cases: dict[str, Heartbeat | None] = {
        "uc-ok": beat("uc-ok"),
        "uc-skew": beat("uc-skew", sent_offset=-900),
        "uc-disk": beat("uc-disk", disk=200 * 1024 * 1024),
        "uc-scanner": beat("uc-scanner", scanner="missing"),
        "uc-camera": beat("uc-camera", camera="missing"),
        "uc-queue": beat("uc-queue", sealed=TH.queue_depth + 1, oldest=60.0),
        "uc-oldest": beat("uc-oldest", sealed=2, oldest=TH.oldest_pending_s + 10),
        "uc-expiring": beat("uc-expiring", cert_days=2),
        "uc-expired": beat("uc-expired", cert_days=-1),
    }
    for sid, hb in cases.items():
        storage.register_station(sid, where("Lahore"), NOW - 3600)
        if hb is not None:
            storage.record_heartbeat(hb, NOW)
    storage.register_station("uc-silent", where("Kasur"), NOW - 10 * 86400)
    storage.record_heartbeat(beat("uc-silent", at=NOW - 2 * 86400), NOW - 2 * 86400)
    storage.register_station("uc-revoked", where("Kasur"), NOW - 3600)
    storage.record_heartbeat(beat("uc-revoked"), NOW)
    storage.mark_revoked("uc-revoked", NOW)
    storage.register_station("uc-conflict", where("Kasur"), NOW - 3600)
    storage.record_heartbeat(beat("uc-conflict"), NOW)
    storage.add_alert("uc-conflict", "conflict", "packet uploaded again with other content", NOW)
    storage.register_station("uc-reused", where("Kasur"), NOW - 3600)
    storage.record_heartbeat(beat("uc-reused"), NOW)
    storage.add_alert("uc-reused", "packet_id_reused", "packet id P is already held by station uc-ok", NOW)
    storage.register_station("uc-rewound", where("Kasur"), NOW - 3600)
    storage.record_heartbeat(beat("uc-rewound", seq=9), NOW)
    assert [a.kind for a in storage.record_heartbeat(beat("uc-rewound", seq=3), NOW)] == ["audit_rewound"]

    expect = {
        "uc-ok": [],
        "uc-skew": ["clock_skew"],
        "uc-disk": ["low_disk"],
        "uc-scanner": ["scanner_missing"],
        "uc-camera": ["camera_missing"],
        "uc-queue": ["queue_depth"],
        "uc-oldest": ["oldest_pending"],
        "uc-expiring": ["cert_expiring"],
        "uc-expired": ["cert_expired"],
        "uc-silent": ["silent"],
        "uc-revoked": ["revoked"],
        "uc-conflict": ["conflict"],
        "uc-reused": ["packet_id_reused"],
        "uc-rewound": ["audit_rewound"],
    }
    page = storage.station_page(TH, StationFilter(), NOW, 0, 100)
    got = {s.station_id: s.alerts for s in page.stations}
    assert got == expect
    assert {k for v in expect.values() for k in v} == set(ALERT_KINDS) - {"audit_broken"}
    # the worst first: revoked, then the audit and conflict events, then silent ...; ok last
    order = [s.station_id for s in page.stations]
    assert order[0] == "uc-revoked" and order[-1] == "uc-ok"
    assert order.index("uc-rewound") < order.index("uc-silent") < order.index("uc-disk")
    summary = storage.fleet_summary(TH, StationFilter(), NOW)
    assert summary.stations == 14 and summary.by_state == {"ok": 1, "trouble": 13, "new": 0, "retired": 0}
    assert summary.alerts["low_disk"] == 1 and summary.alerts["audit_broken"] == 0
    assert summary.oldest_pending_station == "uc-oldest"
    assert summary.oldest_pending_age_s == pytest.approx(TH.oldest_pending_s + 10)
    # a filter by alert kind, and stations in trouble only
    only = storage.station_page(TH, StationFilter(alert="camera_missing"), NOW, 0, 100)
    assert [s.station_id for s in only.stations] == ["uc-camera"] and only.total == 1
    assert storage.station_page(TH, StationFilter(trouble_only=True), NOW, 0, 100).total == 13
    # thresholds come from the config: a larger queue allowance clears the queue alert
    relaxed = Thresholds(queue_depth=10_000)
    assert storage.station_status(relaxed, "uc-queue", NOW).alerts == []  # type: ignore[union-attr]


def test_oldest_pending_ages_with_the_clock_between_heartbeats(storage: Storage) -> None:
    storage.record_heartbeat(beat("uc-1", sealed=1, oldest=100.0), NOW)
    later = storage.station_status(TH, "uc-1", NOW + 3600)
    assert later is not None and later.oldest_pending_age_s == pytest.approx(3700.0)
    storage.record_heartbeat(beat("uc-1", at=NOW + 3600, sealed=0, oldest=None), NOW + 3600)
    synced = storage.station_status(TH, "uc-1", NOW + 3600)
    assert synced is not None and synced.oldest_pending_age_s is None and synced.pending == 0


def test_registered_station_is_new_until_silent_and_retired_raises_nothing(storage: Storage) -> None:
    storage.register_station("uc-fresh", where("Multan"), NOW - 3600)
    status = storage.station_status(TH, "uc-fresh", NOW)
    assert status is not None and status.state == "new" and status.alerts == []
    assert status.district == "Multan" and status.union_council == "UC-0" and status.label == "counter 1"
    stale = storage.station_status(TH, "uc-fresh", NOW + 2 * 86400)
    assert stale is not None and stale.state == "trouble" and stale.alerts == ["silent"]
    # retired: out of the staleness alerts (and every other), state retired, still listed
    storage.record_heartbeat(beat("uc-fresh", disk=1, scanner="missing"), NOW)
    storage.add_alert("uc-fresh", "conflict", "x", NOW)
    assert storage.station_state("uc-fresh") == "registered"
    assert storage.retire_station("uc-fresh", "moved to a new building", NOW)
    assert not storage.retire_station("uc-fresh", "again", NOW)
    assert storage.station_state("uc-fresh") == "retired"
    gone = storage.station_status(TH, "uc-fresh", NOW + 30 * 86400)
    assert gone is not None and gone.state == "retired" and gone.alerts == [] and gone.retired_at == NOW
    summary = storage.fleet_summary(TH, StationFilter(), NOW + 30 * 86400)
    assert summary.by_state["retired"] == 1 and sum(summary.alerts.values()) == 0
    assert storage.station_page(TH, StationFilter(stale_s=3600), NOW + 30 * 86400, 0, 10).total == 0


def test_move_keeps_everything_but_the_place(storage: Storage) -> None:
    storage.register_station("uc-m", where("Lahore", 1), NOW - 100)
    storage.record_heartbeat(beat("uc-m"), NOW)
    assert storage.move_station("uc-m", Location.checked("Sheikhupura", "Ferozewala", "UC-77"), NOW)
    moved = storage.station_status(TH, "uc-m", NOW)
    assert moved is not None and (moved.district, moved.tehsil, moved.union_council, moved.label) == (
        "Sheikhupura",
        "Ferozewala",
        "UC-77",
        "",
    )
    assert moved.registered_at == NOW - 100 and moved.last_seen == NOW
    assert not storage.move_station("uc-nobody", where("Lahore"), NOW)


def test_search_district_filter_paging_and_rollup_in_sql(storage: Storage) -> None:
    n = 2000
    districts = ["Lahore", "Kasur", "Okara", "Multan"]
    for i in range(n):
        sid = f"uc-{i:04d}"
        storage.register_station(sid, where(districts[i % 4], i), NOW - 3600)
        if i % 100 != 7:  # every hundredth-and-seventh station never calls: silent after a day
            storage.record_heartbeat(beat(sid, at=NOW + 86400, sealed=i % 3, oldest=10.0), NOW + 86400)
    t = NOW + 86400
    # paging: every station exactly once, trouble (the silent ones) first
    seen: list[str] = []
    first = storage.station_page(TH, StationFilter(), t, 0, 50)
    assert first.total == n
    assert all(s.alerts == ["silent"] for s in first.stations[:20])
    for offset in range(0, n, 50):
        seen += [s.station_id for s in storage.station_page(TH, StationFilter(), t, offset, 50).stations]
    assert len(seen) == n and len(set(seen)) == n
    # search by station id (substring, case-insensitive, LIKE wildcards are literal)
    hit = storage.station_page(TH, StationFilter(search="UC-1207"), t, 0, 50)
    assert [s.station_id for s in hit.stations] == ["uc-1207"] and hit.stations[0].alerts == ["silent"]
    assert storage.station_page(TH, StationFilter(search="uc-12_7"), t, 0, 50).total == 0
    assert storage.station_page(TH, StationFilter(search="%"), t, 0, 50).total == 0
    # a district, case-insensitively; the summary follows the filter
    kasur = storage.fleet_summary(TH, StationFilter(district="kasur"), t)
    assert kasur.stations == n // 4
    rollup = {r.district: r for r in storage.district_rollup(TH, t, 100)}
    assert set(rollup) == set(districts)
    assert sum(r.stations for r in rollup.values()) == n
    assert sum(r.silent for r in rollup.values()) == n // 100
    assert rollup["Multan"].silent == 20 and rollup["Multan"].by_state["trouble"] == 20  # uc-0007, 0107, ...
    assert rollup["Okara"].silent == 0 and rollup["Okara"].by_state["ok"] == 500
    assert rollup["Lahore"].pending == sum(i % 3 for i in range(0, n, 4) if i % 100 != 7)
    # the queries stay quick at this size (bounded, generous for a loaded 2-core machine)
    start = time.perf_counter()
    storage.fleet_summary(TH, StationFilter(), t)
    storage.station_page(TH, StationFilter(), t, 1950, 50)
    storage.district_rollup(TH, t, 100)
    assert time.perf_counter() - start < 2.0


def test_packets_counted_per_station_and_per_day(storage: Storage) -> None:
    storage.register_station("uc-p", where("Lahore"), NOW)
    for day in (0, 0, 1):
        env = uuid.uuid4().bytes * 10
        received = iso(NOW + day * 86400)
        pid = str(uuid.uuid4())
        row = StoredPacket(pid, "uc-p", hashlib.sha256(env).hexdigest(), len(env), received, b"r", b"c")
        assert storage.commit_packet(row, env) is row
        assert storage.commit_packet(row, env) == row  # a second finalise counts nothing
    days = dict(storage.ingest_per_day(NOW + 86400, 14))
    assert len(days) == 14
    assert days[iso(NOW)[:10]] == 2 and days[iso(NOW + 86400)[:10]] == 1
    assert sum(days.values()) == 3
    status = storage.station_status(TH, "uc-p", NOW)
    assert status is not None and status.packets_stored == 3
    assert storage.totals()["packets"] == 3 and storage.totals()["bytes"] == 3 * 160
    assert storage.fleet_summary(TH, StationFilter(), NOW + 86400).packets_today == 1


def test_locations_are_checked() -> None:
    assert Location.checked("  Dera  Ghazi Khan ", "Taunsa", "UC-3").district == "Dera Ghazi Khan"
    assert Location.checked("لاہور", "لاہور شہر", "یونین کونسل 12").district == "لاہور"
    for bad in ("", "   ", "x" * 65, "<script>", "a\x00b"):
        with pytest.raises(CentralError):
            Location.checked(bad, "T", "U")
    with pytest.raises(CentralError, match="label"):
        Location.checked("D", "T", "U", "y" * 121)


def test_thresholds_from_config() -> None:
    th = Thresholds.from_config(
        {"alerts": {"silent_after": "6h", "low_disk_mb": 500, "queue_depth": 20, "clock_skew": "2m"}}
    )
    assert th.silent_after_s == 6 * 3600 and th.low_disk_bytes == 500 * 1024 * 1024
    assert th.queue_depth == 20 and th.clock_skew_s == 120 and th.oldest_pending_s == TH.oldest_pending_s
    with pytest.raises(CentralError, match="silent_after"):
        Thresholds.from_config({"alerts": {"silent_after": "soon"}})
    with pytest.raises(CentralError, match="unknown key"):
        Thresholds.from_config({"alerts": {"silence": "6h"}})
    with pytest.raises(CentralError, match="queue_depth"):
        Thresholds.from_config({"alerts": {"queue_depth": -1}})
