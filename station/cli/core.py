"""Core commands: ``init``, ``enroll``, ``status``, ``audit``, ``purge``.

Output meant for scripts is stable: ``enroll`` prints the packet id alone on its last line,
``status --json`` prints one JSON object, ``audit verify`` exits 1 when the chain is broken.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from station.errors import StationError
from station.home import StationHome

if TYPE_CHECKING:
    from station.status import StationStatus


def _home(ctx: click.Context) -> StationHome:
    home: StationHome = ctx.obj.home
    return home


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds")


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 120:
        return f"{s} s"
    if s < 7200:
        return f"{s // 60} min"
    if s < 172_800:
        return f"{s // 3600} h"
    return f"{s // 86_400} days"


@click.command("init")
@click.option(
    "--station-id", default=None, help="This station's id, e.g. uc-lhr-0421-01 (demo: demo-station)."
)
@click.option(
    "--demo",
    is_flag=True,
    help="A demo station: it gets its own stand-in central key so it can enroll before provisioning.",
)
@click.option(
    "--key-backend",
    type=click.Choice(["file", "systemd-creds"]),
    default="file",
    show_default=True,
    help="Where keys live: 0600 files, or sealed with systemd-creds (TPM2 when present).",
)
@click.option(
    "--suite",
    type=click.Choice(["x25519", "mlkem768-x25519"]),
    default="x25519",
    show_default=True,
    help="HPKE suite for sealing packets (the hybrid one resists quantum attacks).",
)
@click.pass_context
def init_cmd(ctx: click.Context, station_id: str | None, demo: bool, key_backend: str, suite: str) -> None:
    """Create a new station: keys, an empty encrypted queue and station.toml."""
    from station.session import init_station

    if station_id is None:
        if not demo:
            raise click.UsageError("Give --station-id (or --demo for a demo station).")
        station_id = "demo-station"
    home = _home(ctx)
    station = init_station(home, station_id, demo=demo, key_backend=key_backend, hpke_suite=suite)
    station.close()
    click.echo(f"Station {station.station_id} created in {home.root}")
    click.echo(f"  config: {home.config_path}")
    click.echo(f"  queue:  {home.db_path} (SQLCipher, key in {key_backend} backend)")
    if demo:
        click.echo("  demo:   packets are sealed to a local stand-in key until 'station provision'.")
    else:
        click.echo("Next: station provision --central URL --token TOKEN --ca-fingerprint SHA256")


@click.command("enroll")
@click.option(
    "--from-json",
    "from_json",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Commit the enrollment in this JSON file (images are files beside it).",
)
@click.option(
    "--example",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write an example enrollment (JSON and synthetic images) into this folder and stop.",
)
@click.option(
    "--operator",
    default=None,
    help="The operator vouching for the capture; they log in here with their PIN and finger.",
)
@click.option(
    "--operator-finger",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="An image of the operator's finger (the second factor, as at the kiosk's login).",
)
@click.option("--pin-stdin", is_flag=True, help="Read the operator's PIN from the first line of stdin.")
@click.pass_context
def enroll_cmd(
    ctx: click.Context,
    from_json: Path | None,
    example: Path | None,
    operator: str | None,
    operator_finger: Path | None,
    pin_stdin: bool,
) -> None:
    """Validate, seal and queue one enrollment; prints the packet id on the last line.

    \b
    Without --operator the packet is marked as imported by a technician (entered_by
    technician-import in the packet and in the audit entry): no operator id is recorded without
    that operator's login. With --operator ID the operator logs in as at the kiosk: PIN (prompted,
    or --pin-stdin) and a finger image (--operator-finger FILE) matching one of theirs.
    """
    if (from_json is None) == (example is None):
        raise click.UsageError("Give exactly one of --from-json FILE or --example DIR.")
    if operator_finger is not None and operator is None:
        raise click.UsageError("--operator-finger goes with --operator ID.")
    if operator is not None and operator_finger is None:
        raise click.UsageError(
            "--operator ID needs that operator's login: add --operator-finger FILE (and the PIN when"
            " asked). Leave --operator out to import as a technician."
        )
    if example is not None:
        from station.enrollment.example import write_example

        path = write_example(example)
        click.echo(f"Example enrollment written: {path}")
        click.echo(f"Commit it with: station enroll --from-json {path}")
        return
    assert from_json is not None
    import dataclasses

    from station.commit import commit_enrollment
    from station.enrollment.files import load_enrollment
    from station.enrollment.model import TECHNICIAN_IMPORT
    from station.errors import ValidationFailed
    from station.session import open_station

    home = _home(ctx)
    operator_id = TECHNICIAN_IMPORT
    if operator is not None and operator_finger is not None:
        operator_id = _operator_login(home, operator, operator_finger, pin_stdin)
    with open_station(home) as station:
        station.check_disk()
        enrollment = load_enrollment(from_json, station_id=station.station_id)
        entered_by = "operator" if operator is not None else TECHNICIAN_IMPORT
        enrollment = dataclasses.replace(enrollment, operator_id=operator_id, entered_by=entered_by)
        if operator is None:
            click.echo("No operator logged in: the packet is marked as imported by a technician.", err=True)
        try:
            committed = commit_enrollment(station, enrollment)
        except ValidationFailed as exc:
            for problem in exc.problems:
                field = getattr(problem, "field", "")
                message = getattr(problem, "en", None) or getattr(problem, "message", None) or str(problem)
                click.echo(f"  {field}: {message}", err=True)
                urdu = getattr(problem, "ur", None)
                if urdu:
                    click.echo(f"  {field}: {urdu}", err=True)
            raise
    click.echo(f"Committed and sealed: {committed.size} bytes, sha256 {committed.sha256[:16]}...")
    click.echo(committed.packet_id)


def _operator_login(home: StationHome, operator_id: str, finger: Path, pin_stdin: bool) -> str:
    """The kiosk's login on the command line: PIN, then a finger image matching the operator's."""
    import sys

    from station.auth import AuthError, OperatorDirectory, OperatorFile
    from station.enrollment.files import MAX_IMAGE_BYTES, finger_wsq
    from station.enrollment.folder import read_file
    from station.session import open_station

    if pin_stdin:
        pin = sys.stdin.readline().rstrip("\r\n")
    else:
        pin = click.prompt(f"PIN of operator {operator_id}", hide_input=True, err=True)
    cfg = home.load_config()
    directory = OperatorDirectory(OperatorFile.for_home(home, backend=cfg.key_backend))
    raw = read_file(finger, limit=MAX_IMAGE_BYTES, what="operator finger")
    with open_station(home, integrity_check=False) as station:
        try:
            pending = directory.check_pin(operator_id, pin)
            _, pixels = finger_wsq(finger, raw, "operator finger")
            from drivers import match

            live = match.template_from_image(pixels)
            op = directory.check_finger(pending, live, lambda t, lv: match.verify(t, lv).matched)
        except AuthError as exc:
            known = operator_id if directory.get(operator_id) is not None else "unknown"
            station.audit.append("auth.failed", operator=known, step="cli", code=exc.code)
            raise
        station.audit.append("auth.login", operator=op.operator_id, role=str(op.role.value), by="cli")
    return op.operator_id


def status_fields(status: StationStatus) -> dict[str, Any]:
    """``station status --json``: the snapshot as one flat object (its keys are a contract)."""
    q = status.queue
    if q is None:  # read_status raises instead; a snapshot without its queue has nothing to print here
        raise StationError(
            status.problem or "The queue could not be read: run 'station doctor' to see why.",
            code="status.no_queue",
        )
    return {
        "station_id": status.station_id,
        "counts": dict(q.counts),
        "pending": q.pending,
        "oldest_pending_age_s": q.oldest_pending_age_s,
        "last_sync_at": q.last_sync_at,
        "sync_status": q.sync_status,
        "central_url": status.central_url or None,
        "provisioned": status.provisioned,
        "disk_free_bytes": status.disk.free_bytes,
        "disk_floor_bytes": status.disk.floor_bytes,
        "retention_days": status.retention_days,
        "audit_seq": q.audit_seq,
        "audit_head": q.audit_head,
        "policy_version": q.policy_version,
        "outcomes": dict(q.outcomes),
    }


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="One JSON object, for scripts.")
@click.pass_context
def status_cmd(ctx: click.Context, as_json: bool) -> None:
    """Queue counts, oldest pending packet, last sync, disk free."""
    from station.status import read_status

    data = status_fields(read_status(_home(ctx)))
    if as_json:
        click.echo(json.dumps(data, sort_keys=True))
        return
    c = data["counts"]
    free_mb = data["disk_free_bytes"] // (1024 * 1024)
    floor_mb = data["disk_floor_bytes"] // (1024 * 1024)
    click.echo(f"station       {data['station_id']}")
    click.echo(
        f"queue         sealed {c['sealed']}  uploading {c['uploading']}"
        f"  acked {c['acked']}  purged {c['purged']}"
    )
    click.echo(f"oldest unsent {_age(data['oldest_pending_age_s'])}")
    click.echo(f"last sync     {data['last_sync_at'] or 'never'}  {data['sync_status'] or ''}".rstrip())
    click.echo(f"central       {data['central_url'] or 'not provisioned'}")
    low = "  LOW: no new enrollment can start" if free_mb < floor_mb else ""
    click.echo(f"disk free     {free_mb} MB (floor {floor_mb} MB){low}")
    click.echo(f"audit         #{data['audit_seq']} {data['audit_head'][:16]}")
    o = data["outcomes"]
    click.echo(f"policy        version {data['policy_version']}")
    click.echo(
        f"outcomes      accepted {o['accepted']}  re-enroll {o['re-enroll']}  rejected {o['rejected']}"
    )


@click.group("audit")
def audit_group() -> None:
    """The hash-chained audit log (no personal data: ids and codes only)."""


@audit_group.command("verify")
@click.pass_context
def audit_verify_cmd(ctx: click.Context) -> None:
    """Check the whole chain; exit 1 if any entry was edited, deleted or reordered."""
    from station.session import open_station

    with open_station(_home(ctx)) as station:
        result = station.audit.verify()
    if result.ok:
        click.echo(f"audit chain OK: {result.entries} entries, head {result.head}")
        return
    click.echo(
        f"audit chain BROKEN at entry #{result.first_bad_seq}: {result.problem}."
        " Do not use the station; call a technician.",
        err=True,
    )
    ctx.exit(1)


@audit_group.command("acknowledge-rollback")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def audit_ack_rollback_cmd(ctx: click.Context, yes: bool) -> None:
    """Accept a queue that is older than the station last wrote (a restored copy), on the record.

    \b
    The station refuses to run when queue.db was rolled back behind its anchor (queue.anchor):
    enrollments sealed since the copy was made are gone from it. Find out why first (and whether
    those packets reached central: 'central status', the ops views). This command records an
    audit.rollback_acknowledged entry with both positions and lets the station run again.
    """
    from station.anchor import RolledBack, anchor_key, check
    from station.rollback import acknowledge
    from station.session import open_station

    home = _home(ctx)
    with open_station(home, rollback_check=False) as station:
        key = anchor_key(station.keys.db_key())
        try:
            check(station.store, key)
        except RolledBack as exc:
            click.echo(exc.message, err=True)
        else:
            click.echo("The queue is not rolled back: nothing to acknowledge.")
            return
        if not yes:
            click.confirm("Accept this queue as it is, and record that you did?", abort=True)
        was, now = acknowledge(station.store, key)
    shown = {-1: "missing", -2: "damaged"}.get(was, f"#{was}")
    click.echo(
        f"Rollback acknowledged (anchor was {shown}, the queue is at #{now}); recorded in the audit log."
    )


@audit_group.command("tail")
@click.option("-n", "count", default=20, show_default=True, help="How many of the newest entries.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_context
def audit_tail_cmd(ctx: click.Context, count: int, as_json: bool) -> None:
    """Show the newest entries."""
    from station.session import open_station

    with open_station(_home(ctx), integrity_check=False) as station:
        entries = station.audit.tail(count)
    for e in entries:
        if as_json:
            click.echo(json.dumps({"seq": e.seq, "at": _iso(e.at), "event": e.event, "fields": e.fields}))
        else:
            fields = " ".join(f"{k}={v}" for k, v in sorted(e.fields.items()))
            click.echo(f"#{e.seq:<6} {_iso(e.at)}  {e.event:<22} {fields}")


@click.command("purge")
@click.option(
    "--days", type=click.IntRange(min=0), default=None, help="Override retention_days from station.toml."
)
@click.pass_context
def purge_cmd(ctx: click.Context, days: int | None) -> None:
    """Remove envelopes central acknowledged more than the retention period ago."""
    from station.retention import purge
    from station.session import open_station

    with open_station(_home(ctx)) as station:
        result = purge(station, retention_days=days)
    click.echo(
        f"purged {len(result.purged)} packet(s) acknowledged more than {result.retention_days} day(s) ago"
    )
