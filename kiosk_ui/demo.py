"""The demo station behind ``station kiosk --demo``.

* The station home comes from ``station init --demo`` when the core CLI is installed; otherwise the
  kiosk makes the same pieces itself (config, database and identity keys, a demo central HPKE key pair
  whose private half is written OUTSIDE the home, so the station cannot open what it seals).
* Devices: the protocol simulators ``sim://r30x`` and ``sim://camera`` when their drivers are
  installed, else the in-process ``kiosk_ui.demo_devices`` (same interfaces, same errors).
* A demo supervisor ``demo-sup`` (PIN 2468) and technician ``demo-tech`` (PIN 1357), whose finger is
  enrolled from the demo scanner itself; the demo banner shows these credentials.
* Receipts go to ``<home>/receipts/last-receipt.pdf``.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from kiosk_ui import devices
from kiosk_ui.context import DemoInfo
from station.auth import OperatorDirectory, OperatorFile, Role
from station.errors import StationError
from station.home import StationConfig, StationHome

log = logging.getLogger("kiosk.demo")

DEMO_OPERATOR = "demo-sup"
DEMO_PIN = "2468"
DEMO_TECHNICIAN = "demo-tech"
DEMO_TECH_PIN = "1357"
ASSETS = Path(__file__).parent / "assets"


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def has_core() -> bool:
    return _installed("station.cli.core") and _installed("station.commit") and _installed("station.session")


def ensure_demo_home(home: StationHome) -> DemoInfo:
    """Create (once) the demo station, its simulated devices' settings and the demo operators."""
    if not home.exists():
        if has_core():
            from station.cli import cli

            cli.main(["--home", str(home.root), "init", "--demo"], standalone_mode=False)
        else:
            _init_without_core(home)
        if not home.exists():
            raise StationError("Could not create the demo station: run 'station init --demo' to see why.")
    cfg = home.load_config()
    demo_dir = home.root / "demo"
    demo_dir.mkdir(parents=True, exist_ok=True)
    finger = demo_dir / "finger.png"
    if not finger.exists():
        Image.open(ASSETS / "demo-finger.png").save(finger)
    if _installed("drivers.r30x.opener"):
        scanner_url = f"sim://r30x?image={finger}&finger=1"
    else:
        scanner_url = "sim://kiosk-scanner?name=demo"
    if _installed("drivers.camera.opener"):
        camera_url = f"sim://camera?source={ASSETS / 'demo-portrait.png'}&fps=15"
    else:
        camera_url = "sim://kiosk-camera?name=demo"
    wanted = replace(
        cfg,
        scanner_url=scanner_url,
        camera_url=camera_url,
        printer=cfg.printer or f"pdf:{home.root / 'receipts' / 'last-receipt.pdf'}",
    )
    if wanted != cfg:
        home.save_config(wanted)
    start_demo_devices(finger)
    directory = OperatorDirectory(OperatorFile.for_home(home, backend=wanted.key_backend))
    if directory.get(DEMO_OPERATOR) is None:
        template = enroll_from_scanner(wanted.scanner_url)
        directory.add(DEMO_OPERATOR, DEMO_PIN, Role.SUPERVISOR, templates=[template], created_by="demo")
        directory.add(
            DEMO_TECHNICIAN, DEMO_TECH_PIN, Role.TECHNICIAN, templates=[template], created_by="demo"
        )
    return DemoInfo(DEMO_OPERATOR, DEMO_PIN)


def start_demo_devices(finger: Path) -> None:
    """Register the in-process demo scanner (finger on) and camera (the demo portrait)."""
    import cv2

    from kiosk_ui import demo_devices

    if "demo" not in demo_devices.SCANNERS:
        pixels = np.asarray(Image.open(finger).convert("L"))
        control = demo_devices.ScannerControl(pixels)
        control.finger_on()
        demo_devices.SCANNERS["demo"] = control
    if "demo" not in demo_devices.CAMERAS:
        demo_devices.CAMERAS["demo"] = demo_devices.CameraControl(
            cv2.imread(str(ASSETS / "demo-portrait.png"))
        )


def _init_without_core(home: StationHome) -> None:
    """The pieces of ``station init --demo`` the kiosk needs, for a tree without the core CLI."""
    from station.keys import KeyStore
    from station.packet import generate_recipient_keypair

    cfg = StationConfig(station_id="demo-station-01")
    keys = KeyStore(home, cfg.key_backend)
    keys.create_db_key()
    keys.create_identity_key()
    private, public = generate_recipient_keypair(cfg.hpke_suite)
    home.pki_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    (home.pki_dir / "central-hpke.pub").write_bytes(public)
    central = home.root.parent / f"{home.root.name}-central"
    central.mkdir(parents=True, exist_ok=True, mode=0o700)
    key_file = central / "central-hpke.key"
    key_file.write_bytes(private)
    key_file.chmod(0o600)
    home.save_config(cfg)


def demo_committer(home: StationHome) -> Any:
    """Without the core's store: seal for real and keep envelopes in ``<home>/outbox/`` (demo only)."""
    if has_core():
        return None
    from station.keys import KeyStore
    from station.packet import seal

    cfg = home.load_config()
    public = (home.pki_dir / "central-hpke.pub").read_bytes()
    outbox = home.root / "outbox"

    def commit(enrollment: Any) -> Any:
        sealed = seal(
            enrollment.to_document(),
            station_id=cfg.station_id,
            identity_key=KeyStore(home, cfg.key_backend).identity_key(),
            recipient_public_key=public,
            suite=cfg.hpke_suite,
        )
        outbox.mkdir(parents=True, exist_ok=True, mode=0o700)
        (outbox / f"{sealed.packet_id}.sealed").write_bytes(sealed.envelope)
        return sealed

    return commit


def enroll_from_scanner(url: str) -> bytes:
    """One capture on the scanner at ``url`` turned into a template (how an operator's finger is enrolled)."""
    with devices.open_scanner(url) as scanner:
        image = scanner.capture(timeout=10.0)
    return devices.finger_template(image.pixels)


def demo_receipt_text(receipt: Any) -> str:
    from kiosk_ui.printing import receipt_lines

    return "\n".join(receipt_lines(receipt))
