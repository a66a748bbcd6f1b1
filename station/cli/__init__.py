"""The station core's commands: the ``station`` group without what lives above the core.

Subcommands live in small modules and are imported lazily (see ``lazy.py``). The console command
``station`` (``enrollment_station.cli``) adds provisioning, the sync agent and the kiosk to this
table; the core never names them. Every command takes the station home from ``--home``, else
``$STATION_HOME``, else ``/var/lib/station``; it is available to subcommands as ``ctx.obj.home``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import click

from station import __version__
from station.cli.lazy import LazyGroup
from station.home import StationHome, resolve_home

COMMANDS: dict[str, tuple[str, str]] = {
    # core (station/cli/core.py)
    "init": ("station.cli.core:init_cmd", "Create a new station home (keys, store, config)."),
    "enroll": (
        "station.cli.core:enroll_cmd",
        "Commit an enrollment from JSON, or write an example.",
    ),
    "status": ("station.cli.core:status_cmd", "Queue counts, oldest pending age, disk free."),
    "audit": ("station.cli.core:audit_group", "Inspect and verify the hash-chained audit log."),
    "purge": ("station.cli.core:purge_cmd", "Remove acknowledged packets past retention."),
    "policy": ("station.cli.policy:policy_group", "Show the policy in force (from central, or built in)."),
    # devices (station/cli/device.py, sim.py, quality.py)
    "device": ("station.cli.device:device_group", "List, inspect and test-capture devices."),
    "sim": ("station.cli.sim:sim_group", "Run device simulators (R30x on a pty)."),
    "quality": ("station.cli.quality:quality_group", "Fingerprint and face quality checks."),
    "operator": ("station.cli.operator:operator_group", "Add and manage operators (supervisor)."),
    # appliance (station/cli/appliance.py)
    "doctor": (
        "station.cli.appliance:doctor_cmd",
        "Check devices, keys, certificate, clock, disk.",
    ),
    "decommission": ("station.cli.appliance:decommission_cmd", "Destroy keys and wipe the store."),
    "update": ("station.cli.appliance:update_group", "Verify and apply signed update bundles."),
}


@dataclass
class CliContext:
    home: StationHome


def station_group(commands: Mapping[str, tuple[str, str]]) -> click.Group:
    """The ``station`` group over a table of lazy ``name -> ("module:attribute", help)`` commands."""

    @click.group(
        cls=LazyGroup,
        lazy=dict(commands),
        name="station",
        context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    )
    @click.option(
        "--home",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Station home directory (default: $STATION_HOME, then /var/lib/station).",
    )
    @click.version_option(__version__, prog_name="station")
    @click.pass_context
    def group(ctx: click.Context, home: Path | None) -> None:
        """Enrollment station: enroll citizens, keep the sealed queue, sync to central.

        \b
        First steps on a new machine:
          station --home /tmp/demo init --demo
          station --home /tmp/demo enroll --example /tmp/demo-example
          station --home /tmp/demo enroll --from-json /tmp/demo-example/enrollment.json
          station --home /tmp/demo status
        """
        ctx.obj = CliContext(home=StationHome(resolve_home(home)))
        ctx.call_on_close(lambda: _settle(ctx.obj.home))

    return group


def _settle(home: StationHome) -> None:
    """After a command run as root, give the station's files back to its user (see ownership.py)."""
    if os.geteuid() == 0:
        from station.ownership import settle

        settle(home)


cli = station_group(COMMANDS)
