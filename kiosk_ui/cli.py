"""``station kiosk``: the fullscreen enrollment kiosk (Qt is imported only when this command runs).

station kiosk                    fullscreen, frameless, devices from station.toml
station kiosk --windowed         in a window (development)
station kiosk --demo             a demo station with simulated scanner and camera and a demo operator;
                                 with no display it runs one enrollment offscreen, writes screenshots
                                 and prints the committed packet's receipt
station kiosk --screenshots DIR  every screen in English and Urdu as PNG files
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import click

from station.home import DEFAULT_HOME, StationHome


def has_display() -> bool:
    if os.environ.get("QT_QPA_PLATFORM", "") in ("offscreen", "minimal"):
        return False
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


@click.command("kiosk")
@click.option("--windowed", is_flag=True, help="Run in a normal window (development).")
@click.option("--demo", is_flag=True, help="Demo station: simulated devices and a demo operator.")
@click.option(
    "--screenshots",
    "screenshots",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Render every screen in English and Urdu to this directory, then exit.",
)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None, hidden=True)
@click.pass_context
def kiosk_cmd(
    ctx: click.Context, windowed: bool, demo: bool, screenshots: Path | None, out: Path | None
) -> None:
    """Start the enrollment kiosk."""
    from kiosk_ui.run import run_kiosk

    home = ctx.obj.home
    if (demo or screenshots is not None) and home.root == DEFAULT_HOME:
        # Never turn the appliance's own station into a demo: without --home, demo next to the user.
        home = StationHome(Path.cwd() / "demo-home")
        click.echo(f"Demo station in {home.root}", err=True)
    headless = not has_display()
    if headless:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    code = run_kiosk(home, windowed=windowed, demo=demo, screenshots=screenshots, headless=headless, out=out)
    # Everything is committed and closed by now. Skip the interpreter's teardown: with PySide6 6.12 its
    # final garbage collection can abort ("bool_dealloc"), which would turn a clean exit into status 134
    # and make systemd count a crash.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
