"""The ``central`` console command: ``sync.central.cli``'s group with one-line errors.

Kept apart from :mod:`enrollment_station.cli` (the ``station`` command) so that it imports
nothing of the station core: the ``enrollment-central`` package ships without it.
"""

from __future__ import annotations

from enrollment_station.entry import run


def main() -> None:
    """The ``central`` console command."""
    from sync.central.cli import cli, describe_error, handled_errors

    run(cli, handled_errors(), describe_error)
