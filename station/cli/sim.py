"""``station sim``: run device simulators, e.g. an R30x fingerprint module on a pseudo-terminal.

    station sim r30x --link /tmp/scanner [--image finger.png]

creates ``/tmp/scanner`` as a symlink to the simulator's pty, so any R30x client (the kiosk with
``scanner_url = "serial:///tmp/scanner"``, pyfingerprint, a terminal) can open it; it serves until
SIGINT or SIGTERM and removes the link on exit.
"""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType

import click


class _Stop(Exception):
    pass


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop


@click.group("sim")
def sim_group() -> None:
    """Run device simulators (they speak the real protocols)."""


@sim_group.command("r30x")
@click.option(
    "--link",
    "link",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Create this path as a symlink to the simulator's pty.",
)
@click.option(
    "--image",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="A fingerprint image: a finger with this print is on the sensor.",
)
@click.option(
    "--finger-auto",
    is_flag=True,
    help="A synthetic finger is present whenever the client takes an image.",
)
@click.option(
    "--library",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep the template library in this directory (default: temporary).",
)
@click.option("--password", default="0", show_default=True, help="Module password (e.g. 0x1234).")
@click.option(
    "--baud",
    type=click.IntRange(9600, 115200),
    default=57600,
    show_default=True,
    help="The module's line rate; a client at another rate gets garbled answers.",
)
@click.option("--pace", is_flag=True, help="Answer no faster than a real line at --baud (benchmarks).")
def r30x_cmd(
    link: Path,
    image: Path | None,
    finger_auto: bool,
    library: Path | None,
    password: str,
    baud: int,
    pace: bool,
) -> None:
    """Serve an R30x/ZFM module on a pty until stopped (Ctrl-C or SIGTERM)."""
    from drivers.r30x.simulator import R30xSimulator

    try:
        password_value = int(password, 0)
    except ValueError:
        raise click.BadParameter(f"{password!r} is not a number", param_hint="--password") from None
    if link.exists() and not link.is_symlink():
        raise click.ClickException(f"{link} exists and is not a symlink: choose another --link path.")
    if not link.parent.is_dir():
        raise click.ClickException(f"{link.parent} does not exist: create it or choose another --link path.")

    previous = {sig: signal.signal(sig, _raise_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    if baud % 9600:
        raise click.BadParameter(f"{baud} is not a multiple of 9600", param_hint="--baud")
    simulator = R30xSimulator(
        image=image, finger_auto=finger_auto, library_dir=library, password=password_value, baud=baud
    )
    simulator.pace_line(pace)
    try:
        simulator.start()
        simulator.link(link)
        click.echo(f"link: {link}")
        click.echo(f"pty: {simulator.port}")
        finger = (
            f"finger on the sensor: {image}" if image else "no finger" if not finger_auto else "finger auto"
        )
        click.echo(f"R30x simulator serving ({finger}); Ctrl-C to stop.", err=True)
        while True:
            signal.pause()
    except (_Stop, KeyboardInterrupt):
        pass
    finally:
        simulator.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    click.echo("stopped", err=True)
