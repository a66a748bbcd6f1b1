"""The kiosk under central's policy, against the REAL central and the real agent (``station sync once``).

A threshold changed at central changes the kiosk's accept decision for the same finger after one sync,
and never in the middle of an enrollment; an outcome set at central shows in the kiosk's "to re-enroll"
list and lookup after one sync and after a restart; an operator central disabled is refused at login
after one heartbeat, and the login page says why. pytest-qt on the offscreen platform.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import cv2
import pytest
from pytestqt.qtbot import QtBot

from kiosk_ui.app import KioskWindow
from kiosk_ui.context import KioskContext
from kiosk_ui.demo_devices import CAMERAS, SCANNERS, CameraControl, ScannerControl
from kiosk_ui.script import ScriptedFlow, wait_until
from kiosk_ui.services import KioskServices
from station.auth import OperatorDirectory, OperatorFile, Role
from station.enrollment import FingerPosition
from station.home import StationHome
from tests.sync_live import Central, central_cli, provision, running_central, station_cli
from tests.test_kiosk_flow import FIX, finger_template


@pytest.fixture(scope="module")
def central(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Central]:
    with running_central(tmp_path_factory.mktemp("central") / "home") as c:
        yield c


def open_kiosk(home: StationHome, name: str, qtbot: QtBot) -> KioskWindow:
    cfg = home.load_config()
    ctx = KioskContext(home=home, config=cfg, services=KioskServices(home, cfg))
    ctx.extra["offscreen"] = True
    window = KioskWindow(ctx, windowed=True)
    qtbot.addWidget(window)
    window.attach_devices()
    window.resize(1280, 800)
    window.show()
    return window


@pytest.fixture
def kiosk_home(
    tmp_path: Path, central: Central, request: pytest.FixtureRequest
) -> Iterator[tuple[StationHome, str]]:
    name = request.node.name
    station_id = f"kiosk-{abs(hash(name)) % 10_000}"
    root = tmp_path / "home"
    station_cli(root, "init", "--demo", "--station-id", station_id)
    provision(central, root, station_id)
    home = StationHome(root)
    finger = cv2.imread(str(FIX / "egis0570.png"), cv2.IMREAD_GRAYSCALE)
    scanner = ScannerControl(finger)
    scanner.finger.set()
    SCANNERS[name] = scanner
    CAMERAS[name] = CameraControl(cv2.imread(str(FIX / "astronaut-portrait.jpg")))
    cfg = dataclasses.replace(
        home.load_config(),
        scanner_url=f"sim://kiosk-scanner?name={name}",
        camera_url=f"sim://kiosk-camera?name={name}",
        printer=f"pdf:{tmp_path / 'receipt.pdf'}",
    )
    home.save_config(cfg)
    OperatorDirectory(OperatorFile.for_home(home)).add(
        "sup-1", "2580", Role.SUPERVISOR, templates=[finger_template()]
    )
    yield home, station_id
    SCANNERS.pop(name, None)
    CAMERAS.pop(name, None)


def set_threshold(central: Central, tmp_path: Path, threshold: int) -> None:
    doc = json.loads(central_cli(central.home, "policy", "show", "--json").stdout)
    doc.pop("version")
    doc["modalities"]["fingers"]["threshold"] = threshold
    path = tmp_path / f"policy-{threshold}.json"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    central_cli(central.home, "policy", "set", str(path))


def to_first_finger(flow: ScriptedFlow) -> None:
    """Log in and go to the fingers step; wait for the first finger's first capture to be scored."""
    flow.login("sup-1", "2580")
    flow.consent()
    flow.demographics()
    flow.face()
    wizard = flow.w.ctx.wizard
    assert wizard is not None
    wait_until(lambda: wizard.attempts(FingerPosition.RIGHT_THUMB) >= 1, 60, "first finger scored")


def test_threshold_from_central_changes_the_kiosk_decision_after_one_sync(
    kiosk_home: tuple[StationHome, str], central: Central, qtbot: QtBot, tmp_path: Path
) -> None:
    home, _ = kiosk_home
    window = open_kiosk(home, "test_threshold_from_central_changes_the_kiosk_decision_after_one_sync", qtbot)
    try:
        flow = ScriptedFlow(window)
        to_first_finger(flow)
        first = window.ctx.wizard
        assert first is not None
        quality = first.best_attempt(FingerPosition.RIGHT_THUMB).quality  # type: ignore[union-attr]
        assert first.min_quality == 40 and quality >= 40
        assert FingerPosition.RIGHT_THUMB in first.fingers  # accepted under the built-in policy

        set_threshold(central, tmp_path, quality + 1)
        station_cli(home.root, "sync", "once")  # one sync with the real agent
        assert first.min_quality == 40  # the enrollment under way keeps its policy

        window.lock(idle=False)
        to_first_finger(flow)
        second = window.ctx.wizard
        assert second is not None and second is not first and second.min_quality == quality + 1
        again = second.best_attempt(FingerPosition.RIGHT_THUMB)
        assert again is not None and again.quality == quality  # the same finger, the same score...
        assert FingerPosition.RIGHT_THUMB not in second.fingers  # ...now below the threshold: not accepted
        assert second.policy.version >= 1
    finally:
        window.force_close()
        window.ctx.services.close()


def test_outcome_shows_in_the_reenroll_list_after_one_sync_and_a_restart(
    kiosk_home: tuple[StationHome, str], central: Central, qtbot: QtBot
) -> None:
    home, _ = kiosk_home
    name = "test_outcome_shows_in_the_reenroll_list_after_one_sync_and_a_restart"
    window = open_kiosk(home, name, qtbot)
    try:
        receipt = ScriptedFlow(window).enroll("sup-1", "2580")
        station_cli(home.root, "sync", "once")  # the packet goes up
        central_cli(
            central.home, "outcome", "set", receipt.packet_id, "re-enroll", "--reason", "face_quality"
        )
        station_cli(home.root, "sync", "once")  # one sync brings the outcome
        window.show_page(window.outcomes)
        wait_until(lambda: bool(window.outcomes.rows), 20, "re-enroll list")
        table = window.outcomes.table
        assert table.rowCount() == 1 and table.item(0, 0).text() == receipt.tracking_number
        assert table.item(0, 2).text() == "Photograph quality"
    finally:
        window.force_close()
        window.ctx.services.close()
    window = open_kiosk(home, name, qtbot)  # a restart: the outcome is kept beside the packet
    try:
        ScriptedFlow(window).login("sup-1", "2580")
        window.show_page(window.outcomes)
        wait_until(lambda: bool(window.outcomes.rows), 20, "re-enroll list after restart")
        window.outcomes.tracking.setText(receipt.tracking_number.lower().replace("-", ""))
        window.outcomes.lookup_btn.click()
        wait_until(lambda: window.outcomes.result is not None, 20, "lookup")
        assert "must be enrolled again" in window.outcomes.answer.text()
        window.outcomes.tracking.setText("AAAA-BBBB-CCCC")
        window.outcomes.lookup_btn.click()
        wait_until(lambda: window.outcomes.error is not None, 20, "unknown number")
        assert "No application with tracking number" in window.outcomes.answer.text()
    finally:
        window.force_close()
        window.ctx.services.close()


def test_disabled_operator_is_refused_after_one_heartbeat(
    kiosk_home: tuple[StationHome, str], central: Central, qtbot: QtBot
) -> None:
    home, station_id = kiosk_home
    window = open_kiosk(home, "test_disabled_operator_is_refused_after_one_heartbeat", qtbot)
    try:
        flow = ScriptedFlow(window)
        flow.login("sup-1", "2580")
        window.lock(idle=False)
        central_cli(central.home, "operator", "disable", "sup-1", "--station", station_id)
        station_cli(home.root, "sync", "once")  # one heartbeat brings the roster
        page = window.login
        wait_until(lambda: window.stack.currentWidget() is page, 5, "login page")
        page.operator_id.setText("sup-1")
        page.pin.setText("2580")
        page.next_btn.click()
        wait_until(lambda: "disabled" in page.message.text(), 20, "refusal shown")
        assert window.ctx.operator is None
        assert "central office has disabled this operator" in page.message.text()
    finally:
        window.force_close()
        window.ctx.services.close()
