"""Start the kiosk: application, context, window, devices; demo and screenshot modes."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from PySide6.QtWidgets import QApplication

from kiosk_ui.app import KioskWindow
from kiosk_ui.context import KioskContext
from kiosk_ui.services import KioskServices
from station.errors import StationError
from station.home import StationHome

log = logging.getLogger("kiosk")


def application() -> QApplication:
    app = QApplication.instance()
    if isinstance(app, QApplication):
        return app
    app = QApplication(sys.argv[:1])
    app.setApplicationName("Enrollment Station")
    return app


def build_window(home: StationHome, *, windowed: bool = True, demo: bool = False) -> KioskWindow:
    application()
    demo_info = None
    if demo:
        from kiosk_ui.demo import ensure_demo_home

        demo_info = ensure_demo_home(home)
    config = home.load_config()
    services = KioskServices(home, config)
    ctx = KioskContext(home=home, config=config, services=services, demo=demo_info)
    window = KioskWindow(ctx, windowed=windowed)
    window.attach_devices()
    return window


def run_kiosk(
    home: StationHome,
    *,
    windowed: bool,
    demo: bool,
    screenshots: Path | None,
    headless: bool,
    out: Path | None = None,
) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from kiosk_ui import qtlog

    qtlog.install()
    app = application()
    try:
        window = build_window(
            home, windowed=True if (headless or screenshots) else windowed, demo=demo or bool(screenshots)
        )
    except StationError as exc:
        print(f"error [{exc.code}]: {exc.message}", file=sys.stderr)
        return 1
    from kiosk_ui.demo import DEMO_OPERATOR, DEMO_PIN, demo_receipt_text
    from kiosk_ui.script import screenshot_all

    try:
        if screenshots is not None:
            window.ctx.extra["offscreen"] = True
            window.resize(1280, 800)
            window.show()
            paths = screenshot_all(window, screenshots, DEMO_OPERATOR, DEMO_PIN)
            print(f"{len(paths)} screenshots in {screenshots}")
            return 0
        if demo and headless:
            window.ctx.extra["offscreen"] = True
            window.resize(1280, 800)
            window.show()
            shots = out or (home.root / "screenshots")
            paths = screenshot_all(window, shots, DEMO_OPERATOR, DEMO_PIN)
            receipt = window.ctx.extra.get("last_receipt")
            print(f"{len(paths)} screenshots in {shots}")
            print(f"Receipt printed to {window.ctx.extra.get('printed_to')}")
            if receipt is not None:
                print(demo_receipt_text(receipt))
                print(receipt.packet_id)
            return 0
        window.present()
        return app.exec()
    finally:
        window.force_close()
        window.ctx.services.close()
