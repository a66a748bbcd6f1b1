"""SQL for the fleet views, shared by the SQLite and PostgreSQL backends.

Everything is computed in the database over the ``stations`` table (one row per station, the
latest heartbeat's numbers in columns): alert flags, the state, counts by state and kind, the
district roll-up, filtering and paging. A page of 50 out of 10,000 stations never loads the other
9,950 into Python.

Thresholds and the current time are numbers the code controls, written into the SQL as literals;
everything that comes from a person (district, search text) is a bound parameter. ``ph`` is the
driver's placeholder (``?`` for sqlite3, ``%s`` for psycopg); no literal ``%`` appears in the text.
"""

from __future__ import annotations

import math
from typing import Any

from sync.central.fleet import (
    ALERT_KINDS,
    STATES,
    STORED_ALERT_KINDS,
    DistrictRow,
    FleetSummary,
    StationFilter,
    StationStatus,
    Thresholds,
    skew_of,
)
from sync.common.wire import Heartbeat

# The columns a page row carries, in this order (after the alert flags).
ROW_COLUMNS = (
    "station_id",
    "district",
    "tehsil",
    "union_council",
    "label",
    "last_seen",
    "pending",
    "oldest_now",
    "cert_not_after",
    "packets_stored",
    "version",
    "disk_free_bytes",
    "scanner",
    "camera",
    "clock_skew_s",
    "registered_at",
    "retired_at",
)


def _num(x: float) -> str:
    return repr(float(x))


def oldest_now(now: float) -> str:
    """Age now of the oldest packet the station had not synced at its last heartbeat."""
    return (
        "(CASE WHEN s.pending > 0 AND s.oldest_pending_age_s IS NOT NULL"
        f" THEN s.oldest_pending_age_s + ({_num(now)} - s.heartbeat_at) END)"
    )


def conditions(th: Thresholds, now: float) -> list[tuple[str, str]]:
    """(kind, SQL condition over ``stations s``) in :data:`ALERT_KINDS` order; retired raise none."""
    n = _num(now)

    def stored(kind: str) -> str:  # read off the one aggregate of the alerts table (see flagged_select)
        return f"coalesce(al.k_{kind}, 0) = 1"

    raw = {
        "revoked": "s.revoked_at IS NOT NULL",
        "audit_broken": stored("audit_broken"),
        "audit_rewound": stored("audit_rewound"),
        "conflict": stored("conflict"),
        "packet_id_reused": stored("packet_id_reused"),  # this station used another's packet id
        "silent": f"coalesce(s.last_seen, s.created_at) < {n} - {_num(th.silent_after_s)}",
        "cert_expired": f"s.revoked_at IS NULL AND s.cert_not_after <= {n}",
        "cert_expiring": (
            f"s.revoked_at IS NULL AND s.cert_not_after > {n}"
            f" AND s.cert_not_after <= {n} + {_num(th.cert_warning_s)}"
        ),
        "clock_skew": f"abs(s.clock_skew_s) > {_num(th.clock_skew_s)}",
        "low_disk": f"s.disk_free_bytes < {int(th.low_disk_bytes)}",
        "scanner_missing": "s.scanner = 'missing'",
        "camera_missing": "s.camera = 'missing'",
        "queue_depth": f"s.pending > {int(th.queue_depth)}",
        "oldest_pending": f"{oldest_now(now)} > {_num(th.oldest_pending_s)}",
    }
    assert tuple(raw) == ALERT_KINDS
    return [(kind, f"(s.retired_at IS NULL AND ({cond}))") for kind, cond in raw.items()]


def flagged_select(th: Thresholds, now: float) -> str:
    """A derived table ``t``: every station with ``a_<kind>`` flags, ``state``, ``rank``, ``oldest_now``.

    The flags are computed once per row in the inner table; state and rank are read off them.
    """
    conds = conditions(th, now)
    flags = ", ".join(f"CASE WHEN {c} THEN 1 ELSE 0 END AS a_{k}" for k, c in conds)
    anyalert = " + ".join(f"f.a_{k}" for k, _ in conds)
    rank = " ".join(f"WHEN f.a_{k} = 1 THEN {i}" for i, (k, _) in enumerate(conds))
    state = (
        "CASE WHEN f.retired_at IS NOT NULL THEN 'retired'"
        f" WHEN {anyalert} > 0 THEN 'trouble' WHEN f.last_seen IS NULL THEN 'new' ELSE 'ok' END"
    )
    cols = ", ".join(f"s.{c}" for c in ROW_COLUMNS if c != "oldest_now")
    # One pass over the alerts table for every stored kind, instead of one EXISTS per kind and
    # per reference to the flag (the planner inlines the derived table and repeats them).
    kinds = ", ".join(f"max(CASE WHEN kind = '{k}' THEN 1 ELSE 0 END) AS k_{k}" for k in STORED_ALERT_KINDS)
    stored_alerts = (
        f"LEFT JOIN (SELECT station_id, {kinds} FROM alerts"
        f" WHERE kind IN ({', '.join(repr(k) for k in STORED_ALERT_KINDS)}) GROUP BY station_id) al"
        " ON al.station_id = s.station_id"
    )
    inner = f"SELECT {cols}, {oldest_now(now)} AS oldest_now, s.created_at, {flags}"
    inner += f" FROM stations s {stored_alerts}"
    return f"(SELECT f.*, {state} AS state, CASE {rank} ELSE {len(conds)} END AS rank FROM ({inner}) f) t"


def where(flt: StationFilter, now: float, ph: str) -> tuple[str, list[Any]]:
    """``WHERE ...`` over the derived table ``t`` and its parameters."""
    parts: list[str] = []
    params: list[Any] = []
    if flt.district is not None:
        parts.append(f"lower(coalesce(t.district, '')) = lower({ph})")
        params.append(flt.district)
    if flt.alert is not None:
        parts.append(f"t.a_{flt.alert} = 1")  # the kind was checked against ALERT_KINDS
    if flt.stale_s is not None:
        parts.append(
            f"t.retired_at IS NULL AND coalesce(t.last_seen, t.created_at) < {_num(now - flt.stale_s)}"
        )
    if flt.search:
        escaped = flt.search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        parts.append(f"lower(t.station_id) LIKE {ph} ESCAPE '\\'")
        params.append(f"%{escaped.lower()}%")
    if flt.state is not None:
        parts.append(f"t.state = '{flt.state}'" if flt.state in STATES else "1 = 0")
    if flt.trouble_only:
        parts.append("t.state = 'trouble'")
    return (" WHERE " + " AND ".join(parts) if parts else ""), params


def summary(th: Thresholds, flt: StationFilter, now: float, ph: str) -> tuple[str, list[Any]]:
    """One row: count, one count per state, one per alert kind."""
    w, params = where(flt, now, ph)
    states = ", ".join(f"coalesce(sum(CASE WHEN t.state = '{s}' THEN 1 ELSE 0 END), 0)" for s in STATES)
    kinds = ", ".join(f"coalesce(sum(t.a_{k}), 0)" for k in ALERT_KINDS)
    return f"SELECT count(*), {states}, {kinds} FROM {flagged_select(th, now)}{w}", params


def oldest(th: Thresholds, flt: StationFilter, now: float, ph: str) -> tuple[str, list[Any]]:
    """The station with the oldest unsynced packet (among the filtered), and that age."""
    w, params = where(flt, now, ph)
    w = (w + " AND" if w else " WHERE") + " t.oldest_now IS NOT NULL AND t.retired_at IS NULL"
    return (
        f"SELECT t.station_id, t.oldest_now FROM {flagged_select(th, now)}{w}"
        " ORDER BY t.oldest_now DESC, t.station_id LIMIT 1",
        params,
    )


def page(
    th: Thresholds, flt: StationFilter, now: float, ph: str, offset: int, limit: int
) -> tuple[str, list[Any]]:
    """Rows of ``a_<kind>`` flags, ``state`` and :data:`ROW_COLUMNS`: trouble first, worst first."""
    w, params = where(flt, now, ph)
    flags = ", ".join(f"t.a_{k}" for k in ALERT_KINDS)
    cols = ", ".join(f"t.{c}" for c in ROW_COLUMNS)
    order = (
        " ORDER BY CASE t.state WHEN 'trouble' THEN 0 WHEN 'new' THEN 1 WHEN 'ok' THEN 2 ELSE 3 END,"
        " t.rank, t.station_id"
        if flt.order == "trouble"
        else " ORDER BY t.station_id"
    )
    return (
        f"SELECT {flags}, t.state, {cols} FROM {flagged_select(th, now)}{w}{order}"
        f" LIMIT {int(limit)} OFFSET {int(offset)}",
        params,
    )


def count(th: Thresholds, flt: StationFilter, now: float, ph: str) -> tuple[str, list[Any]]:
    w, params = where(flt, now, ph)
    return f"SELECT count(*) FROM {flagged_select(th, now)}{w}", params


def rollup(th: Thresholds, now: float, max_districts: int) -> str:
    """Per district: stations, per state, silent, pending packets, oldest unsynced; trouble first."""
    states = ", ".join(
        f"coalesce(sum(CASE WHEN t.state = '{s}' THEN 1 ELSE 0 END), 0) AS n_{s}" for s in STATES
    )
    return (
        f"SELECT coalesce(t.district, ''), count(*), {states}, coalesce(sum(t.a_silent), 0),"
        " coalesce(sum(CASE WHEN t.retired_at IS NULL THEN coalesce(t.pending, 0) ELSE 0 END), 0),"
        " max(CASE WHEN t.retired_at IS NULL THEN t.oldest_now END)"
        f" FROM {flagged_select(th, now)} GROUP BY coalesce(t.district, '')"
        f" ORDER BY n_trouble DESC, coalesce(t.district, '') LIMIT {int(max_districts)}"
    )


# -- rows back into the fleet model (both backends) ----------------------------------------------
def heartbeat_columns(hb: Heartbeat, now: float) -> dict[str, Any]:
    """The heartbeat's numbers as ``stations`` columns."""
    counts = hb.counts
    cert_end = skew_of(hb.cert_not_after, 0.0) if hb.cert_not_after else None  # as a POSIX time
    skew = skew_of(hb.sent_at, now)
    return {
        "heartbeat_at": now,
        "pending": int(counts.get("sealed", 0)) + int(counts.get("uploading", 0)),
        "oldest_pending_age_s": hb.oldest_pending_age_s,
        "disk_free_bytes": hb.disk_free_bytes,
        "scanner": (hb.devices.get("scanner") or None),
        "camera": (hb.devices.get("camera") or None),
        "clock_skew_s": skew,
        "version": hb.version or None,
        "cert_not_after": cert_end,
    }


def status_from_row(row: tuple[Any, ...]) -> StationStatus:
    """A :func:`fleet_sql.page` row as a :class:`StationStatus`."""
    n = len(ALERT_KINDS)
    flags, state, rest = row[:n], str(row[n]), row[n + 1 :]
    cols = dict(zip(ROW_COLUMNS, rest, strict=True))

    # Defensive: a row edited in the database, restored or written by an older version must not
    # break the views; a value of the wrong type or out of range shows as "no data".
    def opt_f(v: Any) -> float | None:
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and abs(v) < 2**62:
            return float(v)
        return None

    def opt_i(v: Any) -> int | None:
        if isinstance(v, float) and v.is_integer() and abs(v) < 2**62:
            v = int(v)
        return v if isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**63 else None

    def opt_s(v: Any) -> str | None:
        return v[:256] if isinstance(v, str) else None

    return StationStatus(
        station_id=str(cols["station_id"]),
        state=state,
        district=opt_s(cols["district"]),
        tehsil=opt_s(cols["tehsil"]),
        union_council=opt_s(cols["union_council"]),
        label=opt_s(cols["label"]),
        last_seen=opt_f(cols["last_seen"]),
        pending=opt_i(cols["pending"]),
        oldest_pending_age_s=opt_f(cols["oldest_now"]),
        cert_not_after=opt_f(cols["cert_not_after"]),
        packets_stored=opt_i(cols["packets_stored"]) or 0,
        version=opt_s(cols["version"]),
        disk_free_bytes=opt_i(cols["disk_free_bytes"]),
        scanner=opt_s(cols["scanner"]),
        camera=opt_s(cols["camera"]),
        clock_skew_s=opt_f(cols["clock_skew_s"]),
        registered_at=opt_f(cols["registered_at"]),
        retired_at=opt_f(cols["retired_at"]),
        alerts=[k for k, f in zip(ALERT_KINDS, flags, strict=True) if int(f)],
    )


def summary_from_row(
    row: tuple[Any, ...], packets_today: int, oldest: tuple[Any, ...] | None
) -> FleetSummary:
    ns = len(STATES)
    return FleetSummary(
        stations=int(row[0]),
        by_state={s: int(v) for s, v in zip(STATES, row[1 : 1 + ns], strict=True)},
        alerts={k: int(v) for k, v in zip(ALERT_KINDS, row[1 + ns :], strict=True)},
        packets_today=packets_today,
        oldest_pending_age_s=None if oldest is None else float(oldest[1]),
        oldest_pending_station=None if oldest is None else str(oldest[0]),
    )


def rollup_from_rows(rows: list[tuple[Any, ...]]) -> list[DistrictRow]:
    ns = len(STATES)
    out = []
    for r in rows:
        out.append(
            DistrictRow(
                district=str(r[0]),
                stations=int(r[1]),
                by_state={s: int(v) for s, v in zip(STATES, r[2 : 2 + ns], strict=True)},
                silent=int(r[2 + ns]),
                pending=int(r[3 + ns]),
                oldest_pending_age_s=None if r[4 + ns] is None else float(r[4 + ns]),
            )
        )
    return out
