"""The ``station`` console command, composed from the parts.

``station`` is the core's command group (``station.cli``) plus the commands that live above the
core: provisioning and the sync agent (``sync.agent.cli``) and the kiosk (``kiosk_ui.cli``). Every
entry is a lazy ``module:attribute`` reference, imported only when its command runs, so
``station --help`` and the kiosk's cold start do not pay for aiohttp, OpenCV or Qt.
It prints the program's own errors (the four roots of ``docs/errors.md``) as
``error [code]: message`` and exits 1 (:mod:`enrollment_station.entry`). The ``central`` command
is :mod:`enrollment_station.central`, which imports nothing of the station, so the central package
can ship without it.
"""

from __future__ import annotations

import click

from drivers.errors import DeviceError
from enrollment_station.entry import run
from packetformat.errors import PacketFormatError
from station.cli import COMMANDS as CORE_COMMANDS
from station.cli import station_group
from station.errors import StationError
from sync.errors import SyncError

ABOVE_CORE: dict[str, tuple[str, str]] = {
    # sync agent and provisioning (sync/agent/cli.py)
    "provision": ("sync.agent.cli:provision_cmd", "Enroll this station with the central office."),
    "sync": ("sync.agent.cli:sync_group", "Upload sealed packets to central (agent)."),
    # kiosk (kiosk_ui/cli.py; imports Qt only when run)
    "kiosk": ("kiosk_ui.cli:kiosk_cmd", "Start the fullscreen enrollment kiosk."),
}

station_cli: click.Group = station_group({**CORE_COMMANDS, **ABOVE_CORE})


# The roots of the trees a station command can raise (docs/errors.md): each has ``code`` and ``message``.
HANDLED: tuple[type[StationError | SyncError | DeviceError | PacketFormatError], ...] = (
    StationError,
    SyncError,
    DeviceError,
    PacketFormatError,
)


def _describe_station(exc: BaseException) -> str:
    assert isinstance(exc, HANDLED)
    return f"error [{exc.code}]: {exc.message}"


def station_main() -> None:
    """The ``station`` console command."""
    run(station_cli, HANDLED, _describe_station)
