"""The kiosk driven through its real widgets on the offscreen platform, with simulated scanner and camera.

The devices are ``kiosk_ui.demo_devices`` (the ``drivers.base`` interfaces in process, unplug/replug,
real fixture images); the protocol simulators ``sim://r30x`` / ``sim://camera`` replace them once those
drivers are in the tree.
"""

from __future__ import annotations

import dataclasses
import functools
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QComboBox, QLabel, QLineEdit, QPlainTextEdit
from pytestqt.qtbot import QtBot

from kiosk_ui import devices
from kiosk_ui.app import KioskWindow
from kiosk_ui.context import KioskContext
from kiosk_ui.demo_devices import CAMERAS, SCANNERS, CameraControl, ScannerControl
from kiosk_ui.script import ScriptedFlow, wait_until
from kiosk_ui.services import KioskServices
from packetformat.packet import open_packet
from station.auth import AuthError, OperatorDirectory, OperatorFile, Role
from station.enrollment.example import EXAMPLE_DEMOGRAPHICS
from station.home import StationHome
from station.keys import KeyStore
from station.session import init_station, open_station
from station.wizard import Step

pytestmark = pytest.mark.qt
FIX = Path(__file__).parent / "fixtures" / "kiosk"
PII = (
    "Ahmed Raza",
    "35202-1234567-1",
    "3520212345671",
    "0300-1234567",
    "+923001234567",
    "احمد",
    "Muhammad Akram",
)


# -- a station ---------------------------------------------------------------------------------------
@dataclass
class Station:
    home: StationHome
    scanner: ScannerControl
    camera: CameraControl
    recipient_private: bytes
    window: KioskWindow

    @property
    def queue(self) -> list[tuple[str, bytes]]:
        """(packet id, envelope) of every packet in the station's real encrypted queue."""
        with open_station(self.home) as st:
            return [(p.packet_id, st.store.envelope(p.packet_id)) for p in st.store.pending()]


@functools.lru_cache(maxsize=1)
def finger_template() -> bytes:
    """The operators' enrolled template (extraction takes ~0.5 s: once per session)."""
    return devices.finger_template(cv2.imread(str(FIX / "egis0570.png"), cv2.IMREAD_GRAYSCALE))


@pytest.fixture
def station(tmp_path: Path, qtbot: QtBot, request: pytest.FixtureRequest) -> Iterator[Station]:
    name = request.node.name
    finger = cv2.imread(str(FIX / "egis0570.png"), cv2.IMREAD_GRAYSCALE)
    scanner = ScannerControl(finger)
    scanner.finger.set()
    camera = CameraControl(cv2.imread(str(FIX / "astronaut-portrait.jpg")))
    SCANNERS[name], CAMERAS[name] = scanner, camera
    home = StationHome(tmp_path / "home")
    init_station(home, "uc-test-01", demo=True).close()  # keys, the real queue, a stand-in central key
    cfg = dataclasses.replace(
        home.load_config(),
        scanner_url=f"sim://kiosk-scanner?name={name}",
        camera_url=f"sim://kiosk-camera?name={name}",
        printer=f"pdf:{tmp_path / 'receipt.pdf'}",
    )
    home.save_config(cfg)
    keys = KeyStore(home)
    private = keys.get("demo-recipient")
    directory = OperatorDirectory(OperatorFile.for_home(home))
    template = finger_template()
    directory.add("sup-1", "2580", Role.SUPERVISOR, templates=[template])
    directory.add("tech-1", "1357", Role.TECHNICIAN, templates=[template])

    ctx = KioskContext(home=home, config=cfg, services=KioskServices(home, cfg))
    ctx.extra["offscreen"] = True
    window = KioskWindow(ctx, windowed=True)
    qtbot.addWidget(window)
    window.attach_devices()
    window.resize(1280, 800)
    window.show()
    yield Station(home, scanner, camera, private, window)
    window.force_close()
    ctx.services.close()
    SCANNERS.pop(name, None)
    CAMERAS.pop(name, None)


def texts(window: KioskWindow) -> list[str]:
    out: list[str] = []
    for w in window.findChildren(QLineEdit):
        out.append(w.text())
    for w in window.findChildren(QLabel):
        out.append(w.text())
    for w in window.findChildren(QPlainTextEdit):
        out.append(w.toPlainText())
    return out


# -- tests -------------------------------------------------------------------------------------------
def test_full_enrollment_ends_with_one_sealed_packet_and_a_receipt(station: Station, tmp_path: Path) -> None:
    flow = ScriptedFlow(station.window)
    receipt = flow.enroll("sup-1", "2580")
    queue = station.queue
    assert len(queue) == 1
    packet_id, envelope = queue[0]
    assert receipt.packet_id == packet_id
    identity_pub = KeyStore(station.home).identity_public_key()
    doc = open_packet(envelope, station.recipient_private, identity_pub)
    assert doc["demographics"]["cnic"] == "35202-1234567-1"
    assert doc["demographics"]["name_ur"] == "احمد رضا"  # typed on the on-screen phonetic keyboard
    assert doc["face"]["image"][:2] == b"\xff\xd8"
    fingers = {f["position"]: f for f in doc["fingers"]}
    assert len(fingers) == 10 and fingers[10]["exception"]
    assert doc["operator_id"] == "sup-1"
    # receipt on screen and on paper
    assert station.window.receipt.tracking.text() == receipt.tracking_number
    assert not station.window.receipt.qr.pixmap().isNull()
    where = flow.print_receipt()
    assert Path(where).read_bytes().startswith(b"%PDF")
    # and on an ESC/POS printer (the driver's simulator): the tracking number as text, Urdu as raster
    from drivers.printer.opener import simulator
    from kiosk_ui.printing import print_receipt

    assert print_receipt(receipt, "sim://printer?name=kiosk-flow", tmp_path) == "sim://printer"
    job = simulator("kiosk-flow").jobs[-1]
    assert receipt.tracking_number.encode() in job and b"\x1dv0" in job and b"\x1dV" in job
    # nothing about the citizen stays on screen after the commit
    assert not any(p in t for t in texts(station.window) for p in PII)


def test_idle_lock_clears_pii_from_every_widget(station: Station, qtbot: QtBot) -> None:
    w = station.window
    flow = ScriptedFlow(w)
    flow.login("sup-1", "2580")
    flow.consent()
    flow.demographics()
    flow.face()
    wizard = w.ctx.wizard
    assert wizard is not None
    wait_until(lambda: len(wizard.fingers) >= 2, 30, "two fingers")
    assert any("Ahmed Raza" in t for t in texts(w))
    assert w.idle.seconds == 120  # idle_lock_seconds from station.toml (default)
    w.idle.seconds = 1
    w.idle.last_input = time.monotonic() - 5
    with qtbot.waitSignal(w.locked, timeout=5000):
        pass
    assert w.ctx.operator is None and w.ctx.wizard is None
    assert w.stack.currentWidget() is w.login
    leftovers = [t for t in texts(w) if any(p in t for p in PII)]
    assert leftovers == []
    pictures = [lbl.objectName() for lbl in w.findChildren(QLabel) if not lbl.pixmap().isNull()]
    assert pictures == []
    assert w.fingers.previews == {} and w.review.finger_previews == {}
    for combo in w.findChildren(QComboBox):
        assert combo.currentText() not in ("Male", "Female")
    assert "120" not in w.login.notice.text()  # the lock message shows the configured seconds
    assert "1" in w.login.notice.text()


def test_wrong_pin_locks_out(station: Station) -> None:
    page = station.window.login
    for _ in range(5):
        page.operator_id.setText("sup-1")
        page.pin.setText("0001")
        page.next_btn.click()
        wait_until(lambda: page.next_btn.isEnabled(), 10, "pin check")
    assert "locked" in page.message.text().lower()
    page.operator_id.setText("sup-1")
    page.pin.setText("2580")
    page.next_btn.click()
    wait_until(lambda: page.next_btn.isEnabled(), 10, "pin check")
    assert "locked" in page.message.text().lower()
    assert station.window.ctx.operator is None


def test_unplugging_the_scanner_mid_capture_shows_the_banner_and_capture_resumes(station: Station) -> None:
    w = station.window
    flow = ScriptedFlow(w)
    flow.login("sup-1", "2580")
    flow.consent()
    flow.demographics()
    station.scanner.finger.clear()  # no finger yet: the capture waits, polling
    flow.face()
    wizard = w.ctx.wizard
    assert wizard is not None and wizard.step is Step.FINGERS
    done = len(wizard.fingers)
    station.scanner.unplug_mid_upload = True  # the cable comes out while the image is uploading
    station.scanner.finger.set()
    wait_until(lambda: w.device_banner.isVisible() and "unplugged" in w.device_banner.text(), 10, "banner")
    assert "reconnect" in w.device_banner.text()
    assert len(wizard.fingers) == done
    station.scanner.replug()
    wait_until(lambda: "connected again" in w.device_banner.text(), 10, "replugged banner")
    wait_until(lambda: len(wizard.fingers) > done, 20, "capture resumed")


def test_invalid_cnic_blocks_next_with_the_field_message(station: Station) -> None:
    w = station.window
    flow = ScriptedFlow(w)
    flow.login("sup-1", "2580")
    flow.consent()
    flow.demographics({"cnic": "35202-12345"})
    wizard = w.ctx.wizard
    assert wizard is not None and wizard.step is Step.DEMOGRAPHICS
    problem = wizard.check("cnic")
    assert problem is not None
    assert w.demographics.errors["cnic"].text() == problem.en
    assert w.stack.currentWidget() is w.demographics


def test_language_switch_mirrors_the_layout_and_uses_nastaliq(station: Station) -> None:
    w = station.window
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    w.toggle_language()
    assert app.layoutDirection().name == "RightToLeft"
    assert app.font().family() == "Noto Nastaliq Urdu"
    assert w.login.title.text() == "آپریٹر لاگ اِن"
    w.toggle_language()
    assert app.layoutDirection().name == "LeftToRight"


def test_escape_and_close_need_a_technician(station: Station, qtbot: QtBot) -> None:
    w = station.window
    w.close()
    assert w.isVisible()
    flow = ScriptedFlow(w)
    flow.login("tech-1", "1357")
    assert w.tech_btn.isVisible()
    w.show_page(w.technician)
    assert "sim://kiosk-scanner" in w.technician.devices.toPlainText()
    w.technician.exit_btn.click()
    assert not w.isVisible()


def test_preview_frames_drop_rather_than_queue(station: Station) -> None:
    w = station.window
    flow = ScriptedFlow(w)
    flow.login("sup-1", "2580")
    flow.consent()
    flow.demographics()
    worker = w.ctx.camera_worker
    # The GUI thread is busy for a while (not serving its event loop): the worker keeps one slot.
    wait_until(lambda: worker.frames_seen > 0, 10, "first frame")
    # Busy until the worker has produced three more frames (face checks can be slow on a loaded
    # machine): the GUI takes none of them, so all but the newest are dropped, none queued.
    seen = worker.frames_seen
    deadline = time.monotonic() + 30
    while worker.frames_seen < seen + 3 and time.monotonic() < deadline:
        pass
    assert worker.frames_seen >= seen + 3, "the camera worker stalled"
    assert worker.frames_dropped > 0
    result = worker.take()
    assert result is None or result.seq >= worker.frames_seen


def test_watchdog_is_pinged_from_the_main_loop(
    station: Station, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(5)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    monkeypatch.setenv("WATCHDOG_USEC", "400000")
    from kiosk_ui.app import KioskWindow as Window

    window = Window(station.window.ctx, windowed=True)
    try:
        got: list[bytes] = []
        wait_until(lambda: bool(_drain(sock, got)) and b"WATCHDOG=1" in b"".join(got), 5, "watchdog ping")
    finally:
        window.force_close()
        sock.close()


def _drain(sock: socket.socket, got: list[bytes]) -> bool:
    sock.setblocking(False)
    try:
        while True:
            got.append(sock.recv(4096))
    except BlockingIOError:
        pass
    return bool(got)


def test_receipt_pdf_has_the_purpose_and_qr(tmp_path: Path, qtbot: QtBot) -> None:
    from kiosk_ui.printing import print_pdf, qr_png
    from station.wizard import make_receipt

    receipt = make_receipt("0197-x", "uc-1", 1_750_000_000, EXAMPLE_DEMOGRAPHICS["purpose"], lambda b: b"sig")
    path = print_pdf(receipt, tmp_path / "r.pdf")
    assert path is not None and path.read_bytes().startswith(b"%PDF")
    png = qr_png(receipt.qr_payload)
    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE)
    text, _, _ = cv2.QRCodeDetector().detectAndDecode(
        cv2.resize(img, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
    )
    assert text == receipt.qr_payload


def test_supervisor_onboards_an_operator_who_then_logs_in(station: Station) -> None:
    w = station.window
    ScriptedFlow(w).login("sup-1", "2580")
    assert w.operators_btn.isVisible()
    w.operators_btn.click()
    page = w.operators
    page.op_id.setText("op-7")
    page.pin1.setText("4826")
    page.pin2.setText("4826")
    page.finger_btn.click()
    wait_until(lambda: len(page.templates) == 1, 30, "finger enrolled")
    added: list[object] = []
    page.added.connect(added.append)
    page.save_btn.click()
    wait_until(lambda: bool(added), 10, "operator added")
    assert page.pin1.text() == "" and page.templates == []
    w.lock(idle=False)
    ScriptedFlow(w).login("op-7", "4826")
    assert w.ctx.operator is not None and w.ctx.operator.operator_id == "op-7"
    assert not w.operators_btn.isVisible() and not w.tech_btn.isVisible()


def test_review_edit_and_language_switch_keep_the_values(station: Station) -> None:
    w = station.window
    flow = ScriptedFlow(w)
    flow.login("sup-1", "2580")
    flow.consent()
    flow.demographics()
    flow.face()
    flow.fingers()
    wizard = w.ctx.wizard
    assert wizard is not None and wizard.step is Step.REVIEW
    assert w.review.values["cnic"].text() == "35202-1234567-1"
    w.toggle_language()  # Urdu: the CNIC is shown inside a left-to-right isolate
    assert w.review.values["cnic"].text() == "\u206635202-1234567-1\u2069"
    w.toggle_language()
    w.review.edit_btns[Step.DEMOGRAPHICS].click()  # type: ignore[attr-defined]
    assert w.stack.currentWidget() is w.demographics
    name = w.demographics.inputs["name_en"]
    assert isinstance(name, QLineEdit) and name.text() == "Ahmed Raza"
    name.setText("Ahmed Raza Khan")
    name.textEdited.emit(name.text())
    w.next_btn.click()
    assert w.stack.currentWidget() is w.review
    assert w.review.values["name_en"].text() == "Ahmed Raza Khan"


def test_camera_unplug_shows_the_banner_and_the_preview_resumes(station: Station) -> None:
    w = station.window
    flow = ScriptedFlow(w)
    flow.login("sup-1", "2580")
    flow.consent()
    flow.demographics()
    wait_until(lambda: w.face.frames_shown > 0, 10, "preview")
    station.camera.unplug()
    wait_until(
        lambda: w.device_banner.isVisible() and "camera" in w.device_banner.text().lower(), 10, "banner"
    )
    assert "reconnect" in w.device_banner.text()
    shown = w.face.frames_shown
    station.camera.replug()
    wait_until(lambda: "connected again" in w.device_banner.text(), 10, "replugged banner")
    wait_until(lambda: w.face.frames_shown > shown, 10, "preview resumed")


def test_escape_is_swallowed(station: Station, qtbot: QtBot) -> None:
    w = station.window
    qtbot.keyClick(w.login.operator_id, Qt.Key.Key_Escape)
    assert w.isVisible()
    assert "technician" in w.login.message.text()


def test_no_pin_or_citizen_text_survives_in_undo_history(station: Station) -> None:
    w = station.window
    flow = ScriptedFlow(w)
    flow.login("sup-1", "2580")
    flow.consent()
    flow.demographics()
    w.lock(idle=False)
    for edit in w.findChildren(QLineEdit):
        assert not edit.isUndoAvailable(), edit.objectName()
        edit.undo()
        assert edit.text() == "", edit.objectName()


def test_logins_failures_and_locks_are_audited_without_pii(station: Station) -> None:
    w = station.window
    flow = ScriptedFlow(w)
    flow.login("sup-1", "2580")
    w.lock(idle=True)

    def events() -> list[tuple[str, dict[str, object]]]:
        with open_station(station.home) as st:
            return [(e.event, e.fields) for e in st.audit.entries()]

    wait_until(lambda: any(e == "session.lock" for e, _ in events()), 15, "the lock in the audit chain")
    seen = events()
    assert ("auth.login", {"operator": "sup-1", "role": "supervisor"}) in seen
    assert ("session.lock", {"operator": "sup-1", "reason": "idle"}) in seen
    # A PIN typed for an id that is no operator's (here, a CNIC by mistake) is audited as "unknown".
    services = w.ctx.services
    with pytest.raises(AuthError):
        services.check_pin("35202-1234567-1", "2580")
    failed = [f for e, f in events() if e == "auth.failed"]
    assert failed and failed[-1]["operator"] == "unknown"
    with open_station(station.home) as st:
        assert st.audit.verify().ok
