"""``central operator allow|disable|list --station ID``: which operators may work at which station.

The roster travels with the station's policy bundle: a disabled operator cannot log in at the station
after its next heartbeat. Operators are still onboarded at the station (PIN and finger, by a
supervisor); their fingers never leave it, and central only knows their ids.
"""

from __future__ import annotations

import click

from sync.central.cli_policy import policy_office
from sync.common.wire import valid_station_id


def _station(station_id: str) -> str:
    if not valid_station_id(station_id):
        raise click.BadParameter(
            "letters, digits, '.', '_' and '-' only (at most 64)", param_hint="--station"
        )
    return station_id


@click.group("operator")
def operator_group() -> None:
    """The operator roster of each station (sent with its policy)."""


def _set(ctx: click.Context, operator_id: str, station_id: str, state: str) -> None:
    with policy_office(ctx) as office:
        version = office.set_operator(_station(station_id), operator_id, state)
    click.echo(
        f"{operator_id} {state} at {station_id} (roster version {version});"
        " the station applies it after its next heartbeat"
    )


@operator_group.command("allow")
@click.argument("operator_id")
@click.option("--station", "station_id", required=True, help="Station id.")
@click.pass_context
def allow_cmd(ctx: click.Context, operator_id: str, station_id: str) -> None:
    """Let OPERATOR_ID work at the station (again)."""
    _set(ctx, operator_id, station_id, "allowed")


@operator_group.command("disable")
@click.argument("operator_id")
@click.option("--station", "station_id", required=True, help="Station id.")
@click.pass_context
def disable_cmd(ctx: click.Context, operator_id: str, station_id: str) -> None:
    """Stop OPERATOR_ID from logging in at the station."""
    _set(ctx, operator_id, station_id, "disabled")


@operator_group.command("list")
@click.option("--station", "station_id", required=True, help="Station id.")
@click.pass_context
def list_cmd(ctx: click.Context, station_id: str) -> None:
    """The station's roster as central holds it."""
    with policy_office(ctx) as office:
        version, roster = office.storage.roster(_station(station_id))
    click.echo(
        f"roster of {station_id}: version {version}, {len(roster)} operator(s)"
        + ("" if roster else " (every operator onboarded at the station may work)")
    )
    for operator_id, state in roster.items():
        click.echo(f"  {operator_id:<32} {state}")
