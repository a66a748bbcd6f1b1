"""``station policy show [--json]``: the policy this station enforces now, where it came from, since when."""

from __future__ import annotations

import datetime as dt
import json

import click

from station.home import StationHome


def _when(ts: float | None) -> str:
    return "-" if ts is None else dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


@click.group("policy")
def policy_group() -> None:
    """The policy central sends (capture rules, thresholds, texts, places, settings)."""


@policy_group.command("show")
@click.option("--json", "as_json", is_flag=True, help="The policy document and where it came from, as JSON.")
@click.pass_context
def show_cmd(ctx: click.Context, as_json: bool) -> None:
    """The policy in force: its version, since when, and what it asks of an enrollment."""
    from station.policy import policy_in_force
    from station.policy.describe import describe
    from station.session import open_station

    home = ctx.obj.home
    assert isinstance(home, StationHome)
    with open_station(home, integrity_check=False) as station:
        in_force = policy_in_force(station.store)
    if as_json:
        data = {
            "version": in_force.version,
            "source": in_force.source,
            "installed_at": None if in_force.installed_at is None else _when(in_force.installed_at),
            "roster_version": in_force.roster_version,
            "roster": dict(in_force.roster),
            "policy": in_force.policy.to_document(),
        }
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    if in_force.source == "builtin":
        click.echo("in force: the built-in default (central has not sent a policy yet)")
    else:
        click.echo(
            f"in force since {_when(in_force.installed_at)} (from central; roster version"
            f" {in_force.roster_version}, {len(in_force.roster)} operator(s) listed)"
        )
    for line in describe(in_force.policy):
        click.echo(line)
