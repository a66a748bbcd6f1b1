"""``central status`` and ``central station list|show|move|retire``: the fleet from the terminal.

``central status`` prints the summary first (stations by state, packets today, the oldest unsynced
packet anywhere, alerts by kind), then the stations in trouble; ``--all`` lists every station.
The filters (``--district``, ``--alert``, ``--stale``) apply to the summary and the list alike.
"""

from __future__ import annotations

import json
import time

import click

from sync.central.fleet import ALERT_KINDS, STATES, UNASSIGNED, Location, StationFilter
from sync.central.home import CentralError, CentralHome
from sync.central.ops import (
    fleet_view,
    format_summary,
    format_table,
    human_age,
    human_bytes,
    iso_utc,
    thresholds,
)
from sync.central.storage import Storage
from sync.common.wire import station_uri
from sync.pki.tokens import parse_duration


def _home(ctx: click.Context) -> CentralHome:
    home = ctx.obj
    assert isinstance(home, CentralHome)
    home.require()
    return home


def open_storage(home: CentralHome) -> Storage:
    """The central's storage backend (``[storage] url``: the server opens the same one)."""
    from sync.central.database import open_storage as open_configured

    return open_configured(home)


def location_from(
    district: str | None, tehsil: str | None, union_council: str | None, label: str
) -> Location | None:
    given = [v for v in (district, tehsil, union_council) if v is not None]
    if not given and not label:
        return None
    if len(given) != 3:
        raise click.UsageError("give --district, --tehsil and --union-council together")
    assert district is not None and tehsil is not None and union_council is not None
    return Location.checked(district, tehsil, union_council, label)


# -- central status --------------------------------------------------------------------------------
@click.command("status")
@click.option("--district", default=None, help="Only the stations of this district.")
@click.option(
    "--alert", "alert", type=click.Choice(ALERT_KINDS), default=None, help="Only stations with this alert."
)
@click.option(
    "--stale", default=None, metavar="DURATION", help="Only stations not heard from for DURATION (e.g. 6h)."
)
@click.option("--all", "show_all", is_flag=True, help="List every station, not only those in trouble.")
@click.option(
    "--limit", type=click.IntRange(0), default=200, show_default=True, help="Rows at most (0: no limit)."
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def status_cmd(
    ctx: click.Context,
    district: str | None,
    alert: str | None,
    stale: str | None,
    show_all: bool,
    limit: int,
    as_json: bool,
) -> None:
    """The fleet summary, then the stations in trouble (worst first)."""
    home = _home(ctx)
    try:
        stale_s = None if stale is None else parse_duration(stale)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--stale") from exc
    flt = StationFilter(district=district, alert=alert, stale_s=stale_s, trouble_only=not show_all)
    th = thresholds(home)
    storage = open_storage(home)
    try:
        view = fleet_view(storage, th, flt, limit=limit or 1_000_000)
    finally:
        storage.close()
    if as_json:
        click.echo(json.dumps(view.to_json(), indent=2))
        return
    click.echo(format_summary(view))
    click.echo("")
    what = "stations" if show_all else "stations in trouble"
    if view.page.total == 0:
        if view.summary.stations == 0:
            click.echo("no stations yet: register one with 'central token new --station ID --district ...'")
        else:
            click.echo(f"no {what}" + (" matching the filter" if district or alert or stale else ""))
        return
    shown = len(view.page.stations)
    more = f"; showing {shown}, --limit 0 for all" if shown < view.page.total else ""
    click.echo(f"{what}: {view.page.total}{more}")
    click.echo(format_table(view.page.stations))


# -- central station ... ---------------------------------------------------------------------------
@click.group("station")
def station_group() -> None:
    """The station registry: where each station stands, moving and retiring stations."""


@station_group.command("list")
@click.option("--district", default=None, help="Only this district.")
@click.option("--state", type=click.Choice(STATES), default=None, help="Only stations in this state.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def station_list(ctx: click.Context, district: str | None, state: str | None, as_json: bool) -> None:
    """Every station in the registry, by id: district, tehsil, union council, label, state."""
    home = _home(ctx)
    storage = open_storage(home)
    try:
        page = storage.station_page(
            thresholds(home), StationFilter(district=district, state=state, order="id"), time.time(), 0, 10**9
        )
    finally:
        storage.close()
    if as_json:
        click.echo(json.dumps([s.to_json() for s in page.stations], indent=2))
        return
    header = ("STATION", "DISTRICT", "TEHSIL", "UNION COUNCIL", "LABEL", "STATE", "REGISTERED")
    rows = [header] + [
        (
            s.station_id,
            s.district or UNASSIGNED,
            s.tehsil or "-",
            s.union_council or "-",
            s.label or "-",
            s.state,
            iso_utc(s.registered_at)[:10],
        )
        for s in page.stations
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for r in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    click.echo(f"{page.total} station(s)")


@station_group.command("show")
@click.argument("station_id")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def station_show(ctx: click.Context, station_id: str, as_json: bool) -> None:
    """One station: where it stands, its last heartbeat, its alerts and its certificates."""
    from sync.central.authority import Authority
    from sync.central.database import open_backend

    home = _home(ctx)
    now = time.time()
    backend = open_backend(home)
    try:
        status = backend.storage.station_status(thresholds(home), station_id, now)
        log = backend.storage.station_alert_log(station_id, 20)
        if status is None:
            raise CentralError(
                f"no station {station_id}: check the id with 'central station list'",
                code="registry.unknown_station",
            )
        registry = Authority(home, tokens=backend.tokens, registry=backend.registry).registry
        cert = registry.latest().get(station_uri(station_id))
    finally:
        backend.close()
    if as_json:
        out = status.to_json()
        out["alert_log"] = [{"kind": k, "detail": d, "at": t} for k, d, t in log]
        out["certificate_serial"] = None if cert is None else format(cert.serial, "x")
        click.echo(json.dumps(out, indent=2))
        return
    seen = (
        "never"
        if status.last_seen is None
        else f"{iso_utc(status.last_seen)} ({human_age(now - status.last_seen)} ago)"
    )
    skew = "-" if status.clock_skew_s is None else f"{status.clock_skew_s:+.0f} s"
    lines = [
        ("station", status.station_id),
        ("state", status.state),
        ("district", status.district or UNASSIGNED),
        ("tehsil", status.tehsil or "-"),
        ("union council", status.union_council or "-"),
        ("label", status.label or "-"),
        ("registered", iso_utc(status.registered_at)),
        ("retired", iso_utc(status.retired_at)),
        ("last seen", seen),
        ("pending", "-" if status.pending is None else str(status.pending)),
        ("oldest pending", human_age(status.oldest_pending_age_s)),
        ("packets stored", str(status.packets_stored)),
        ("disk free", human_bytes(status.disk_free_bytes)),
        ("scanner", status.scanner or "-"),
        ("camera", status.camera or "-"),
        ("clock skew", skew),
        ("version", status.version or "-"),
        (
            "certificate",
            "-"
            if cert is None
            else f"serial {cert.serial:x}, until {iso_utc(status.cert_not_after)}"
            + (", revoked" if cert.revoked_at else ""),
        ),
        ("alerts", ", ".join(status.alerts) or "none"),
    ]
    for name, value in lines:
        click.echo(f"{name:<16}{value}")
    for kind, detail, at in log:
        click.echo(f"  {iso_utc(at)}  {kind}: {detail}")


@station_group.command("move")
@click.argument("station_id")
@click.option("--district", required=True, help="District the station stands in now.")
@click.option("--tehsil", required=True, help="Tehsil.")
@click.option("--union-council", "union_council", required=True, help="Union council.")
@click.option("--label", default="", help="Free text shown to ops (a building, a counter; no names).")
@click.pass_context
def station_move(
    ctx: click.Context, station_id: str, district: str, tehsil: str, union_council: str, label: str
) -> None:
    """Record that STATION now stands elsewhere (district, tehsil, union council)."""
    from sync.central.registry import move

    home = _home(ctx)
    location = Location.checked(district, tehsil, union_council, label)
    storage = open_storage(home)
    try:
        move(storage, station_id, location)
    finally:
        storage.close()
    click.echo(
        f"station {station_id} now in {location.district} / {location.tehsil} / {location.union_council}"
    )


@station_group.command("retire")
@click.argument("station_id")
@click.option("--reason", default="retired", show_default=True, help="A short reason (no names).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def station_retire(ctx: click.Context, station_id: str, reason: str, yes: bool) -> None:
    """Retire STATION: revoke its certificates (refused at TLS), no more tokens, no more alerts."""
    from sync.central.authority import Authority
    from sync.central.registry import retire

    home = _home(ctx)
    if not yes and not click.confirm(
        f"retire {station_id}? its certificates are revoked for good", default=False
    ):
        raise CentralError("nothing retired", code="registry.not_confirmed")
    from sync.central.database import open_backend

    clean = " ".join(reason.split())[:120]
    backend = open_backend(home)
    try:
        authority = Authority(home, tokens=backend.tokens, registry=backend.registry)
        revoked = retire(backend.storage, authority, station_id, clean)
    finally:
        backend.close()
    click.echo(
        f"station {station_id} retired; {revoked} certificate(s) revoked, CRL updated "
        "(running servers refuse it from their next handshake)"
    )
