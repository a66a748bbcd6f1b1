"""The ops dashboard: one self-refreshing HTML page of station status (no PII, no scripts)."""

from __future__ import annotations

import html
import time

from sync.central.ops import StationStatus, human_age, iso_utc

REFRESH_S = 15
_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#1a1a1a}
table{border-collapse:collapse;width:100%}
th,td{padding:.35rem .6rem;border-bottom:1px solid #ddd;text-align:left}
th{background:#f3f3f3}.ok{color:#1b7f3b}.alert{color:#b00020;font-weight:600}small{color:#666}
"""


def render_dashboard(statuses: list[StationStatus], totals: dict[str, int], central_id: str) -> str:
    now = time.time()
    rows = []
    for s in statuses:
        seen = "never" if s.last_seen is None else f"{human_age(now - s.last_seen)} ago"
        alerts = ", ".join(s.alerts)
        cls = "alert" if s.alerts else "ok"
        rows.append(
            "<tr>"
            f"<td>{html.escape(s.station_id)}</td><td>{html.escape(seen)}</td>"
            f"<td>{'-' if s.pending is None else s.pending}</td>"
            f"<td>{html.escape(human_age(s.oldest_pending_age_s))}</td>"
            f"<td>{html.escape(iso_utc(s.cert_not_after))}</td><td>{s.packets_stored}</td>"
            f"<td class='{cls}'>{html.escape(alerts or 'ok')}</td>"
            "</tr>"
        )
    body = "\n".join(rows) or "<tr><td colspan='7'>No stations yet.</td></tr>"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="{REFRESH_S}">
<title>Central: station sync status</title><style>{_STYLE}</style></head>
<body><h1>Station sync status</h1>
<p><small>{html.escape(central_id)} · {totals.get("packets", 0)} packets stored ·
{totals.get("partial_uploads", 0)} uploads in progress ({totals.get("partial_bytes", 0)} bytes) ·
refreshed {html.escape(iso_utc(now))},
every {REFRESH_S} s</small></p>
<table><thead><tr><th>Station</th><th>Last seen</th><th>Pending</th><th>Oldest pending</th>
<th>Certificate expires</th><th>Stored</th><th>Alerts</th></tr></thead>
<tbody>
{body}
</tbody></table></body></html>
"""
