"""``station quality``: fingerprint and face quality checks on image files."""

from __future__ import annotations

import click

from station.cli.lazy import LazyGroup


@click.group(
    cls=LazyGroup,
    lazy={
        "finger": ("station.cli.quality_finger:finger_cmd", "Score a fingerprint image 0-100."),
        "face": ("station.cli.quality_face:face_cmd", "Run the ICAO-style face checks on a photo."),
    },
)
def quality_group() -> None:
    """Quality checks on image files (the same checks the kiosk runs live)."""
