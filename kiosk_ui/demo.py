"""The demo station behind ``station kiosk --demo``: a station home made by ``station init --demo``,
simulated scanner (``sim://r30x`` with a synthetic print) and camera (``sim://camera``), a PDF receipt
printer, and a demo supervisor whose finger is enrolled from the simulator itself."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from PIL import Image

from kiosk_ui import devices
from kiosk_ui.context import DemoInfo
from station.auth import OperatorDirectory, OperatorFile, Role
from station.errors import StationError
from station.home import StationHome

log = logging.getLogger("kiosk.demo")

DEMO_OPERATOR = "demo-sup"
DEMO_PIN = "2468"
DEMO_TECHNICIAN = "demo-tech"
DEMO_TECH_PIN = "1357"


def ensure_demo_home(home: StationHome) -> DemoInfo:
    """Create (once) the demo station, its simulated devices' settings and the demo operators."""
    if not home.exists():
        from station.cli import cli

        rv = cli.main(["--home", str(home.root), "init", "--demo"], standalone_mode=False)
        if rv not in (None, 0) or not home.exists():
            raise StationError("Could not create the demo station: run 'station init --demo' to see why.")
    cfg = home.load_config()
    demo_dir = home.root / "demo"
    demo_dir.mkdir(parents=True, exist_ok=True)
    finger = demo_dir / "finger.png"
    if not finger.exists():
        from station.enrollment.example import synthetic_fingerprint

        Image.fromarray(synthetic_fingerprint(11, 256, 288)).save(finger)
    wanted = replace(
        cfg,
        scanner_url=f"sim://r30x?image={finger}&finger=1",
        camera_url="sim://camera?source=synthetic&fps=15",
        printer=cfg.printer or f"pdf:{home.root / 'receipts' / 'last-receipt.pdf'}",
    )
    if wanted != cfg:
        home.save_config(wanted)
    directory = OperatorDirectory(OperatorFile.for_home(home, backend=wanted.key_backend))
    if directory.get(DEMO_OPERATOR) is None:
        template = enroll_from_scanner(wanted.scanner_url)
        directory.add(DEMO_OPERATOR, DEMO_PIN, Role.SUPERVISOR, templates=[template], created_by="demo")
        directory.add(
            DEMO_TECHNICIAN, DEMO_TECH_PIN, Role.TECHNICIAN, templates=[template], created_by="demo"
        )
    return DemoInfo(DEMO_OPERATOR, DEMO_PIN)


def enroll_from_scanner(url: str) -> bytes:
    """One capture on the scanner at ``url`` turned into a template (how an operator's finger is enrolled)."""
    with devices.open_scanner(url) as scanner:
        image = scanner.capture(timeout=10.0)
    return devices.finger_template(image.pixels)


def demo_receipt_text(receipt: object) -> str:
    from kiosk_ui.printing import receipt_lines

    return "\n".join(receipt_lines(receipt))  # type: ignore[arg-type]


def default_demo_home() -> Path:
    return Path.cwd() / "demo-home"
