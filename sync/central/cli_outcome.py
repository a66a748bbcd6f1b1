"""``central outcome set PACKET_ID OUTCOME [--reason CODE] [--note TEXT]``, ``list``, ``cert``.

Outcomes say what became of a packet downstream: ``accepted``; ``re-enroll`` with a reason
(``face_quality``, ``finger_quality``, ``missing_document``, ``other`` with a note); ``rejected`` with a
reason code. The station pulls them after its next heartbeat and shows the re-enroll list at the
counter. The downstream identity system sets them itself over mutual TLS with a certificate whose SAN
is ``urn:backoffice:NAME`` (``central outcome cert NAME --out DIR``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from sync.central.cli_policy import policy_office
from sync.central.home import CentralError
from sync.central.p12_password import note_no_p12, p12_password_option, read_p12_password
from sync.central.policy import OUTCOME_KINDS, check_outcome
from sync.common.wire import BACKOFFICE_URI_PREFIX, valid_packet_id


@click.group("outcome")
def outcome_group() -> None:
    """What became of each packet (sent back to its station)."""


@outcome_group.command("set")
@click.argument("packet_id")
@click.argument("outcome", type=click.Choice(OUTCOME_KINDS))
@click.option(
    "--reason",
    default="",
    help="re-enroll: face_quality, finger_quality, missing_document, other; rejected: a reason code.",
)
@click.option("--note", default="", help="A short note (required with re-enroll --reason other). No PII.")
@click.option("--station", "station_id", default=None, help="Station id, when the packet id is not unique.")
@click.pass_context
def set_cmd(
    ctx: click.Context, packet_id: str, outcome: str, reason: str, note: str, station_id: str | None
) -> None:
    """Record the OUTCOME of PACKET_ID."""
    if not valid_packet_id(packet_id):
        raise click.BadParameter("a packet id is a UUID such as 0193...-....", param_hint="PACKET_ID")
    try:
        checked = check_outcome(outcome, reason, note)
    except ValueError as exc:
        raise CentralError(f"{exc}: see 'central outcome set --help'", code="outcome.invalid") from exc
    with policy_office(ctx) as office:
        row = office.set_outcome(packet_id, checked, by="cli", station_id=station_id)
    click.echo(
        f"{row.packet_id} at {row.station_id}: {row.outcome}"
        + (f" ({row.reason})" if row.reason else "")
        + f", sequence {row.seq}"
    )


@outcome_group.command("list")
@click.option("--station", "station_id", required=True, help="Station id.")
@click.option("--after", type=click.IntRange(0), default=0, show_default=True, help="Sequence number.")
@click.pass_context
def list_cmd(ctx: click.Context, station_id: str, after: int) -> None:
    """The outcomes recorded for a station's packets."""
    with policy_office(ctx) as office:
        rows = office.storage.outcomes_after(station_id, after, 10_000)
    click.echo(f"{len(rows)} outcome(s) for {station_id}")
    for r in rows:
        click.echo(
            f"{r.seq:>6}  {r.packet_id}  {r.outcome:<9} {r.reason or '-':<16} {r.decided_at}  {r.decided_by}"
        )


@outcome_group.command("cert")
@click.argument("name")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--days", type=float, default=365, show_default=True)
@p12_password_option
@click.pass_context
def cert_cmd(ctx: click.Context, name: str, out: Path, days: float, p12_password_file: Any) -> None:
    """Issue the downstream identity system's client certificate (SAN urn:backoffice:NAME) into OUT."""
    from sync.central.authority import Authority

    password = read_p12_password(p12_password_file)
    paths = Authority(ctx.obj).ops_cert(
        name, out, days=days, prefix=BACKOFFICE_URI_PREFIX, p12_password=password
    )
    for path in paths:
        click.echo(str(path))
    if password is None:
        note_no_p12()
