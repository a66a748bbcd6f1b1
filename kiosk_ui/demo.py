"""The demo station behind ``station kiosk --demo``.

* The station home is made as ``station init --demo`` makes it (keys, the encrypted queue, a stand-in
  central key until ``station provision``; ``scripts/demo.sh`` provisions it against a local central).
* Devices: the protocol simulators ``sim://r30x`` (on a pty) and ``sim://camera`` (the demo
  portrait). The in-process doubles of ``kiosk_ui.demo_devices`` are for the kiosk's tests only.
* A demo supervisor ``demo-sup`` (PIN 2468) and technician ``demo-tech`` (PIN 1357), whose finger is
  enrolled from the demo scanner itself; the demo banner shows these credentials.
* Receipts go to ``<home>/receipts/last-receipt.pdf``.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

from kiosk_ui import devices
from kiosk_ui.context import DemoInfo
from station.auth import OperatorDirectory, OperatorFile, Role
from station.home import StationHome

log = logging.getLogger("kiosk.demo")

DEMO_OPERATOR = "demo-sup"
DEMO_PIN = "2468"
DEMO_TECHNICIAN = "demo-tech"
DEMO_TECH_PIN = "1357"
ASSETS = Path(__file__).parent / "assets"


def ensure_demo_home(home: StationHome) -> DemoInfo:
    """Create (once) the demo station, its simulated devices' settings and the demo operators."""
    if not home.exists():
        from station.session import init_station

        init_station(home, "demo-station", demo=True).close()
    cfg = home.load_config()
    demo_dir = home.root / "demo"
    demo_dir.mkdir(parents=True, exist_ok=True)
    finger = demo_dir / "finger.png"
    if not finger.exists():
        from PIL import Image

        Image.open(ASSETS / "demo-finger.png").save(finger)
    scanner_url = f"sim://r30x?image={finger}&finger=1"
    camera_url = f"sim://camera?source={ASSETS / 'demo-portrait.png'}&fps=15"
    wanted = replace(
        cfg,
        scanner_url=scanner_url,
        camera_url=camera_url,
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


def demo_receipt_text(receipt: Any) -> str:
    from kiosk_ui.printing import receipt_lines

    return "\n".join(receipt_lines(receipt))
