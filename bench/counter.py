"""Counter time: one scripted enrollment through the real kiosk, step by step, against the devices' floor.

The kiosk (``kiosk_ui.run.build_window``, offscreen platform) runs a demo station whose devices are
the real simulators at real rates: the R30x simulator on a pty answering no faster than a UART
(``sim://r30x?...&pace=1``; the driver raises it from 57,600 to 115,200 baud after the handshake, as on
a real module) and the camera simulator at 30 frames a second. ``kiosk_ui.script.ScriptedFlow``
clicks and types as an operator would: login (operator id and PIN, argon2id), consent and
demographics, the photo (taken automatically after consecutive passing frames), ten fingers (each a
GenImg, a paced upload of 36,864 bytes, WSQ and quality), review, commit (sealed and queued), receipt
(printed to PDF).

The baseline, side by side, is the sum of the device-bound minimums: the wire time of ten image
uploads at the rate the module runs at (GenImg's ack, UpImage's ack and the 288 data packets, 10 bits
a byte) plus the photo's frames (the auto-capture streak at the camera's frame rate).

    .venv/bin/python bench/counter.py [--quick] [--runs N]

Last line: the headline ratio (median total / device-bound minimum); goal <= 1.15.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _path import ROOT  # first: the project root on sys.path, not bench/

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

GOAL = 1.15
FPS = 30.0
STEPS = ("login", "demographics", "photo", "ten fingers", "review", "commit", "receipt")


def wire_seconds(baud: int) -> float:
    """Line time of one capture's answers: GenImg's ack, UpImage's ack, the image's data packets."""
    from drivers.r30x import protocol as p

    ack = p.HEADER_LEN + 1 + 2
    data = sum(p.HEADER_LEN + len(chunk) + 2 for _, chunk in p.split_data(bytes(p.IMAGE_BYTES), 128))
    return (2 * ack + data) * 10 / baud


def prepare(home_dir: Path) -> Path:
    """A demo station whose scanner and camera are the paced simulators (returns the home root)."""
    from kiosk_ui.demo import ASSETS, ensure_demo_home
    from station.home import StationHome

    home = StationHome(home_dir)
    ensure_demo_home(home)  # demo station, operators (their template from the scanner), printer
    cfg = home.load_config()
    finger = home.root / "demo" / "finger.png"
    home.save_config(
        dataclasses.replace(
            cfg,
            scanner_url=f"sim://r30x?image={finger}&finger=1&pace=1",
            camera_url=f"sim://camera?source={ASSETS / 'demo-portrait.png'}&fps={FPS:g}",
        )
    )
    return home.root


def one_enrollment(home_root: Path) -> tuple[dict[str, float], int]:
    """Seconds per step of one enrollment, and the baud rate the scanner ran at."""
    from kiosk_ui.demo import DEMO_OPERATOR, DEMO_PIN
    from kiosk_ui.run import build_window
    from kiosk_ui.script import ScriptedFlow, wait_until
    from station.home import StationHome

    window = build_window(StationHome(home_root), windowed=True, demo=False)
    window.ctx.extra["offscreen"] = True
    window.resize(1280, 800)
    window.show()
    times: dict[str, float] = {}
    try:
        flow = ScriptedFlow(window)
        # the scanner thread opens the module (handshake, rate raise) while the login page shows
        wait_until(lambda: window.ctx.scanner is not None, 20, "scanner thread")

        def step(name: str, action: Callable[[], object]) -> None:
            t0 = time.perf_counter()
            action()
            times[name] = time.perf_counter() - t0

        step("login", lambda: flow.login(DEMO_OPERATOR, DEMO_PIN))
        step("demographics", lambda: (flow.consent(), flow.demographics()))
        step("photo", flow.face)
        step("ten fingers", lambda: flow.fingers(exception=None, advance=False))
        step("review", flow.review)
        step("commit", flow.review_and_commit)
        step("receipt", flow.print_receipt)
        scanner = window.ctx.scanner_worker.device
        baud = int(getattr(scanner, "baud", 57600))
    finally:
        window.force_close()
        window.ctx.services.close()
    return times, baud


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="one enrollment (under a minute)")
    ap.add_argument("--runs", type=int, default=None)
    args = ap.parse_args()
    runs = args.runs or (1 if args.quick else 3)
    from drivers.quality.face import AutoCapture

    with tempfile.TemporaryDirectory(dir=ROOT) as tmp:
        home_root = prepare(Path(tmp) / "station")
        results = [one_enrollment(home_root) for _ in range(runs)]
    baud = results[-1][1]
    floor_fingers = 10 * wire_seconds(baud)
    floor_photo = AutoCapture().frames / FPS
    floor = floor_fingers + floor_photo
    per_step = {name: statistics.median(r[0][name] for r in results) for name in STEPS}
    totals = [sum(r[0].values()) for r in results]
    total = statistics.median(totals)
    print(f"enrollments: {runs}; scanner at {baud} baud (paced simulator), camera simulator at {FPS:g} fps")
    for name in STEPS:
        bound = {"photo": floor_photo, "ten fingers": floor_fingers, "login": wire_seconds(baud)}.get(name)
        extra = f"   device-bound minimum {bound:6.2f} s" if bound is not None else ""
        print(f"  {name:<13} {per_step[name]:6.2f} s{extra}")
    print(f"total {total:.2f} s (median; runs {', '.join(f'{t:.2f}' for t in totals)})")
    print(
        f"device-bound minimum {floor:.2f} s = ten images' wire time {floor_fingers:.2f} s at {baud} baud"
        f" + the photo's {AutoCapture().frames} frames at {FPS:g} fps {floor_photo:.2f} s"
    )
    login_wire = wire_seconds(baud)
    print(
        f"(the login's own finger check is one more image, {login_wire:.2f} s on the wire; with it the"
        f" floor is {floor + login_wire:.2f} s and the ratio {total / (floor + login_wire):.2f})"
    )
    ratio = total / floor
    verdict = "met" if ratio <= GOAL else "NOT met"
    print(f"counter time / device-bound minimum = {ratio:.2f} (goal <= {GOAL}: {verdict})")


if __name__ == "__main__":
    main()
    # as the kiosk does (kiosk_ui/cli.py): skip the interpreter's teardown, where PySide6 6.12 can abort
    sys.stdout.flush()
    os._exit(0)
