"""The ops dashboard: server-rendered HTML for 10,000 stations (no scripts, no outside resources).

``/dashboard`` shows the fleet summary (stations by state, packets today, the oldest unsynced
packet, alerts by kind), the last 14 days of ingest as an inline SVG bar chart, a search and
filter form, one page of stations (in trouble first, worst first) with paging links, and the
district roll-up. ``/dashboard/station/ID`` shows one station. Every value that came from a
station or a person is escaped; the page is sent with a Content-Security-Policy that forbids
scripts. The overview refreshes itself every :data:`REFRESH_S` seconds; a search, a filter or a
later page does not (someone reading it is not yanked back).
"""

from __future__ import annotations

import html
import time
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from sync.central.fleet import ALERT_KINDS, STATES, UNASSIGNED, DistrictRow, StationFilter, StationStatus
from sync.central.ops import FleetView, human_age, human_bytes, iso_utc

REFRESH_S = 30
PAGE_SIZE = 50
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.2rem;color:#1a1a1a}
h1{font-size:1.4rem;margin:.2rem 0}h2{font-size:1.1rem;margin:1.2rem 0 .4rem}
table{border-collapse:collapse;width:100%}
th,td{padding:.3rem .5rem;border-bottom:1px solid #ddd;text-align:left;font-size:.92rem}
th{background:#f3f3f3}.ok{color:#1b7f3b}.alert{color:#b00020;font-weight:600}small{color:#666}
.cards{display:flex;flex-wrap:wrap;gap:.8rem}
.card{border:1px solid #ddd;border-radius:6px;padding:.5rem .8rem}
.card b{display:block;font-size:1.3rem}.pager a,.pager span{margin-right:.8rem}
form{margin:.6rem 0}input,select{font-size:.95rem;padding:.2rem}
"""


@dataclass(frozen=True)
class DashboardQuery:
    """What the ops person asked for (``?q=&district=&alert=&state=&page=``), already checked."""

    q: str = ""
    district: str = ""
    alert: str = ""
    state: str = ""
    page: int = 1

    @classmethod
    def parse(cls, params: dict[str, str]) -> DashboardQuery:
        q = params.get("q", "").strip()[:64]
        district = " ".join(params.get("district", "").split())[:64]
        alert = params.get("alert", "")
        state = params.get("state", "")
        try:
            page = max(1, min(10**6, int(params.get("page", "1"))))
        except ValueError:
            page = 1
        return cls(
            q=q,
            district=district,
            alert=alert if alert in ALERT_KINDS else "",
            state=state if state in STATES else "",
            page=page,
        )

    def filter(self) -> StationFilter:
        return StationFilter(
            district=self.district or None,
            alert=self.alert or None,
            search=self.q or None,
            state=self.state or None,
        )

    @property
    def is_overview(self) -> bool:
        return not (self.q or self.district or self.alert or self.state) and self.page == 1

    def url(self, **changes: str | int) -> str:
        values: dict[str, str | int] = {
            "q": self.q,
            "district": self.district,
            "alert": self.alert,
            "state": self.state,
            "page": self.page,
        }
        values.update(changes)
        kept = {k: v for k, v in values.items() if v != "" and not (k == "page" and v == 1)}
        return "/dashboard" + ("?" + urlencode(kept) if kept else "")


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def station_href(station_id: str) -> str:
    return "/dashboard/station/" + quote(station_id, safe="")


def chart_svg(days: list[tuple[str, int]]) -> str:
    """Per-day packet counts as an inline SVG bar chart (labels are the day of month)."""
    width, height, pad = 560, 150, 22
    n = max(1, len(days))
    top = max([c for _, c in days] + [1])
    bar = (width - 2 * pad) / n
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" id="ingest-chart" width="{width}" height="{height + 30}"'
        f' viewBox="0 0 {width} {height + 30}" role="img" aria-label="packets stored per day, last {n} days">'
    ]
    for i, (day, count) in enumerate(days):
        h = 0 if top == 0 else (height - pad) * count / top
        x = pad + i * bar
        y = height - h
        parts.append(
            f'<rect class="bar" data-day="{_e(day)}" data-count="{count}" x="{x + 2:.1f}" y="{y:.1f}"'
            f' width="{max(1.0, bar - 4):.1f}" height="{h:.1f}" fill="#3366aa"><title>{_e(day)}: {count}'
            " packets</title></rect>"
            f'<text x="{x + bar / 2:.1f}" y="{height + 14}" font-size="10" text-anchor="middle">'
            f"{_e(day[8:])}</text>"
        )
        if count:
            parts.append(
                f'<text x="{x + bar / 2:.1f}" y="{max(10.0, y - 3):.1f}" font-size="9"'
                f' text-anchor="middle">{count}</text>'
            )
    parts.append(
        f'<line x1="{pad}" y1="{height}" x2="{width - pad}" y2="{height}" stroke="#999"/>'
        f'<text x="{pad}" y="{height + 28}" font-size="10">{_e(days[0][0] if days else "")} to'
        f" {_e(days[-1][0] if days else '')} (UTC)</text></svg>"
    )
    return "".join(parts)


def _station_rows(stations: list[StationStatus], now: float) -> str:
    rows = []
    for s in stations:
        seen = "never" if s.last_seen is None else f"{human_age(now - s.last_seen)} ago"
        alerts = ", ".join(s.alerts)
        cls = "alert" if s.alerts else "ok"
        rows.append(
            f'<tr class="station" data-station="{_e(s.station_id)}">'
            f'<td><a href="{_e(station_href(s.station_id))}">{_e(s.station_id)}</a></td>'
            f"<td>{_e(s.district or UNASSIGNED)}</td><td>{_e(s.union_council or '-')}</td>"
            f"<td>{_e(s.state)}</td><td>{_e(seen)}</td>"
            f"<td>{'-' if s.pending is None else s.pending}</td>"
            f"<td>{_e(human_age(s.oldest_pending_age_s))}</td>"
            f"<td>{_e(iso_utc(s.cert_not_after)[:10])}</td><td>{s.packets_stored}</td>"
            f"<td class='{cls} alerts'>{_e(alerts or 'ok')}</td></tr>"
        )
    return "\n".join(rows) or "<tr><td colspan='10'>No stations match.</td></tr>"


def _rollup_rows(rows: list[DistrictRow], query: DashboardQuery) -> str:
    out = []
    for r in rows:
        name = r.district or UNASSIGNED
        href = query.url(district=r.district or "", page=1, q="", alert="", state="")
        out.append(
            f'<tr class="district"><td><a href="{_e(href)}">{_e(name)}</a></td><td>{r.stations}</td>'
            + "".join(f"<td>{r.by_state.get(s, 0)}</td>" for s in STATES)
            + f"<td>{r.silent}</td><td>{r.pending}</td><td>{_e(human_age(r.oldest_pending_age_s))}</td></tr>"
        )
    return "\n".join(out) or "<tr><td colspan='9'>No stations yet.</td></tr>"


def _form(query: DashboardQuery) -> str:
    alerts = "".join(
        f'<option value="{k}"{" selected" if k == query.alert else ""}>{k}</option>' for k in ALERT_KINDS
    )
    states = "".join(
        f'<option value="{s}"{" selected" if s == query.state else ""}>{s}</option>' for s in STATES
    )
    return (
        '<form method="get" action="/dashboard" id="search">'
        "<label>Station id "
        f'<input type="search" name="q" id="q" value="{_e(query.q)}" maxlength="64"></label> '
        f'<label>District <input name="district" value="{_e(query.district)}" maxlength="64"></label> '
        f'<label>Alert <select name="alert"><option value="">any</option>{alerts}</select></label> '
        f'<label>State <select name="state"><option value="">any</option>{states}</select></label> '
        '<button type="submit" id="go">Show</button> <a href="/dashboard">clear</a></form>'
    )


def _pager(query: DashboardQuery, total: int) -> str:
    pages = max(1, -(-total // PAGE_SIZE))
    parts = [f'<span id="page-info">page {min(query.page, pages)} of {pages} ({total} stations)</span>']
    if query.page > 1:
        parts.append(
            f'<a id="prev-page" rel="prev" href="{_e(query.url(page=query.page - 1))}">‹ previous</a>'
        )
    if query.page < pages:
        parts.append(f'<a id="next-page" rel="next" href="{_e(query.url(page=query.page + 1))}">next ›</a>')
    return '<p class="pager">' + " ".join(parts) + "</p>"


def _page(title: str, body: str, *, refresh: bool) -> str:
    meta = f'<meta http-equiv="refresh" content="{REFRESH_S}">' if refresh else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">{meta}
<title>{_e(title)}</title><style>{_STYLE}</style></head>
<body>{body}</body></html>
"""


def render_dashboard(
    view: FleetView,
    rollup: list[DistrictRow],
    days: list[tuple[str, int]],
    query: DashboardQuery,
    central_id: str,
    *,
    now: float | None = None,
) -> str:
    t = time.time() if now is None else now
    s = view.summary
    cards = [f'<div class="card" id="total"><b>{s.stations}</b>stations</div>']
    for state in STATES:
        href = query.url(state=state, page=1)
        cards.append(
            f'<div class="card" id="state-{state}"><b><a href="{_e(href)}">{s.by_state.get(state, 0)}</a></b>'
            f"{state}</div>"
        )
    cards.append(f'<div class="card" id="packets-today"><b>{s.packets_today}</b>packets today (UTC)</div>')
    if s.oldest_pending_station is None:
        oldest = "<b>-</b>nothing unsynced"
    else:
        oldest = (
            f"<b>{_e(human_age(s.oldest_pending_age_s))}</b>oldest unsynced, at "
            f'<a href="{_e(station_href(s.oldest_pending_station))}">{_e(s.oldest_pending_station)}</a>'
        )
    cards.append(f'<div class="card" id="oldest">{oldest}</div>')
    alert_items = " · ".join(
        f'<a class="alert-kind" data-kind="{k}" href="{_e(query.url(alert=k, page=1))}">{k} {n}</a>'
        for k, n in s.alerts.items()
        if n
    )
    scope = ""
    if not query.is_overview:
        scope = (
            " (for this search or filter)"
            if (query.q or query.district or query.alert or query.state)
            else ""
        )
    heading = (
        "Stations" if not (query.q or query.district or query.alert or query.state) else "Stations found"
    )
    totals = view.totals
    refresh_note = f" · refreshes every {REFRESH_S} s" if query.is_overview else ""
    body = f"""<h1>Station sync status</h1>
<p><small>{_e(central_id)} · {totals.get("packets", 0)} packets stored · {totals.get("partial_uploads", 0)}
uploads in progress · {_e(iso_utc(t))}{refresh_note}</small></p>
<h2>Summary{scope}</h2><div class="cards">{"".join(cards)}</div>
<p id="alerts-by-kind">Alerts: {alert_items or "none"}</p>
<h2>Packets stored per day</h2>{chart_svg(days)}
<h2>{heading}</h2>{_form(query)}
{_pager(query, view.page.total)}
<table id="stations"><thead><tr><th>Station</th><th>District</th><th>Union council</th><th>State</th>
<th>Last seen</th><th>Pending</th><th>Oldest pending</th><th>Cert expires</th><th>Stored</th><th>Alerts</th>
</tr></thead><tbody>
{_station_rows(view.page.stations, t)}
</tbody></table>
{_pager(query, view.page.total)}
<h2>Districts</h2>
<table id="districts"><thead><tr><th>District</th><th>Stations</th>{"".join(f"<th>{x}</th>" for x in STATES)}
<th>Silent</th><th>Pending packets</th><th>Oldest unsynced</th></tr></thead><tbody>
{_rollup_rows(rollup, query)}
</tbody></table>"""
    return _page("Central: station sync status", body, refresh=query.is_overview)


def render_station(
    status: StationStatus, log: list[tuple[str, str, float]], *, now: float | None = None
) -> str:
    t = time.time() if now is None else now
    seen = (
        "never"
        if status.last_seen is None
        else f"{iso_utc(status.last_seen)} ({human_age(t - status.last_seen)} ago)"
    )
    fields = [
        ("State", status.state),
        ("District", status.district or UNASSIGNED),
        ("Tehsil", status.tehsil or "-"),
        ("Union council", status.union_council or "-"),
        ("Label", status.label or "-"),
        ("Registered", iso_utc(status.registered_at)),
        ("Retired", iso_utc(status.retired_at)),
        ("Last seen", seen),
        ("Pending packets", "-" if status.pending is None else str(status.pending)),
        ("Oldest pending", human_age(status.oldest_pending_age_s)),
        ("Packets stored", str(status.packets_stored)),
        ("Disk free", human_bytes(status.disk_free_bytes)),
        ("Scanner", status.scanner or "-"),
        ("Camera", status.camera or "-"),
        ("Clock skew", "-" if status.clock_skew_s is None else f"{status.clock_skew_s:+.0f} s"),
        ("Version", status.version or "-"),
        ("Certificate expires", iso_utc(status.cert_not_after)),
        ("Alerts", ", ".join(status.alerts) or "none"),
    ]
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in fields)
    events = "".join(
        f"<tr><td>{_e(iso_utc(at))}</td><td>{_e(kind)}</td><td>{_e(detail)}</td></tr>"
        for kind, detail, at in log
    )
    body = f"""<p><a href="/dashboard">← all stations</a></p>
<h1 id="station-id">{_e(status.station_id)}</h1>
<table id="station-detail">{rows}</table>
<h2>Recorded alerts</h2>
<table><thead><tr><th>When</th><th>Kind</th><th>Detail</th></tr></thead><tbody>
{events or "<tr><td colspan='3'>none</td></tr>"}</tbody></table>"""
    return _page(f"Station {status.station_id}", body, refresh=False)
