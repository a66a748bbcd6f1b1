"""A scripted enrollment driven through the real widgets: used by ``--demo`` without a display, by
``--screenshots``, by ``bench/ui.py`` and by the tests. It clicks and types like an operator would and
waits on conditions by running the Qt event loop (never ``sleep``)."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QBuffer, QEventLoop, QIODevice, QTimer
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication, QComboBox, QLineEdit

from kiosk_ui.app import KioskWindow
from kiosk_ui.i18n import Lang
from station.enrollment import FingerPosition
from station.enrollment.example import EXAMPLE_DEMOGRAPHICS
from station.errors import StationError
from station.wizard import DEMOGRAPHIC_FIELDS, Receipt, Step


class ScriptTimeout(StationError):
    """The demo script waited longer than its bound for the kiosk to get somewhere."""

    code = "demo.timeout"


def wait_until(cond: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    """Run the event loop until ``cond()`` is true (checked every 10 ms), or raise after ``timeout``."""
    deadline = time.monotonic() + timeout
    loop = QEventLoop()
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(loop.quit)
    timer.start()
    try:
        while not cond():
            if time.monotonic() > deadline:
                raise ScriptTimeout(f"timed out after {timeout:.0f} s waiting for {what}")
            loop.exec()
    finally:
        timer.stop()


def type_into(widget: QLineEdit, text: str) -> None:
    """Type as an operator would: the text lands and ``textEdited`` fires (inline validation)."""
    widget.setFocus()
    widget.setText(text)
    widget.textEdited.emit(text)


class ScriptedFlow:
    """Steps of one enrollment; ``shot(name)`` is called at each screen (for screenshots)."""

    def __init__(self, window: KioskWindow, shot: Callable[[str], None] | None = None) -> None:
        self.w = window
        self.shot = shot or (lambda name: None)

    def login(self, operator_id: str, pin: str, timeout: float = 30.0) -> None:
        page = self.w.login
        wait_until(lambda: self.w.stack.currentWidget() is page, 5, "login page")
        type_into(page.operator_id, operator_id)
        type_into(page.pin, pin)
        self.shot("login")
        page.next_btn.click()
        wait_until(lambda: self.w.ctx.operator is not None or "wrong" in page.message.text().lower()
                   or "locked" in page.message.text().lower(), timeout, "login")  # fmt: skip
        if self.w.ctx.operator is None:
            raise ScriptTimeout(f"login refused: {page.message.text()}")

    def consent(self) -> None:
        c = self.w.consent
        c.kind_buttons[next(iter(c.kind_buttons))].click()
        c.consent.setChecked(True)
        self.shot("consent")
        self.w.next_btn.click()
        assert self.w.ctx.wizard is not None and self.w.ctx.wizard.step is Step.DEMOGRAPHICS

    def demographics(self, values: dict[str, object] | None = None) -> None:
        page = self.w.demographics
        data = dict(EXAMPLE_DEMOGRAPHICS, **(values or {}))
        # The Urdu name is typed on the on-screen keyboard; the rest straight into the fields.
        name_ur = page.inputs["name_ur"]
        assert isinstance(name_ur, QLineEdit)
        name_ur.setFocus()
        page.keyboard.set_target(name_ur)
        for key in "ahmd":
            page.keyboard.press(key)
        page.keyboard._insert(" ")
        page.keyboard.press("r")
        page.keyboard.shift_btn.setChecked(True)  # Shift+J gives ض
        page.keyboard.press("j")
        page.keyboard.press("a")
        for name in DEMOGRAPHIC_FIELDS:
            widget = page.inputs[name]
            if name == "name_ur":
                continue
            if isinstance(widget, QComboBox):
                widget.setCurrentIndex(widget.findData(data[name]))
            else:
                type_into(widget, str(data[name]))
        self.shot("demographics")
        self.w.next_btn.click()

    def face(self, timeout: float = 30.0) -> None:
        wizard = self.w.ctx.wizard
        assert wizard is not None
        page = self.w.face
        wait_until(lambda: page.frames_shown > 0, timeout, "camera preview")
        self.shot("face-preview")
        wait_until(lambda: wizard.face is not None, timeout, "automatic photo")
        self.shot("face")
        self.w.next_btn.click()

    def fingers(
        self,
        timeout: float = 60.0,
        exception: FingerPosition | None = FingerPosition.LEFT_LITTLE,
        *,
        advance: bool = True,
    ) -> None:
        wizard = self.w.ctx.wizard
        assert wizard is not None
        page = self.w.fingers
        shot_taken = False
        while wizard.current_finger() is not None:
            pos = wizard.current_finger()
            if pos == exception:
                page.skip_btn.click()
                page.reason.setCurrentIndex(1)
                page.record_btn.click()
                continue
            wait_until(
                lambda p=pos: wizard.current_finger() != p or page.reason.isVisible(),
                timeout,
                f"finger {pos}",
            )
            if page.reason.isVisible() and wizard.current_finger() == pos:
                page.keep_btn.click()
            if not shot_taken and len(wizard.fingers) >= 3:
                self.shot("fingers")
                shot_taken = True
        if advance:
            self.review()

    def review(self) -> None:
        """From the last finger to the review page."""
        wizard = self.w.ctx.wizard
        assert wizard is not None
        self.w.next_btn.click()
        assert wizard.step is Step.REVIEW, wizard.problems()

    def review_and_commit(self, timeout: float = 30.0) -> Receipt:
        self.shot("review")
        self.w.review.commit_btn.click()
        wait_until(lambda: self.w.receipt.receipt is not None or (bool(self.w.review.message.text())
                   and self.w.ctx.wizard is not None and self.w.ctx.wizard.step is Step.REVIEW),
                   timeout, "commit")  # fmt: skip
        if self.w.receipt.receipt is None:
            raise ScriptTimeout(f"commit failed: {self.w.review.message.text()}")
        self.shot("receipt")
        return self.w.receipt.receipt

    def print_receipt(self, timeout: float = 30.0) -> str:
        where: list[str] = []
        self.w.receipt.printed.connect(where.append)
        self.w.receipt.print_btn.click()
        wait_until(lambda: bool(where), timeout, "printing")
        return where[0]

    def enroll(self, operator_id: str, pin: str) -> Receipt:
        self.login(operator_id, pin)
        self.consent()
        self.demographics()
        self.face()
        self.fingers()
        return self.review_and_commit()


def save_small_png(image: QImage, path: Path, colours: int = 96) -> None:
    """A screenshot as a palette PNG (a few hundred colours are plenty for a UI): small to commit."""
    from PIL import Image

    buf = QBuffer()
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buf, "PNG")
    pil = Image.open(io.BytesIO(bytes(buf.data().data()))).convert("RGB")
    pil.quantize(colours, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


def screenshot_all(window: KioskWindow, out_dir: Path, operator_id: str, pin: str) -> list[Path]:
    """Every screen in English and Urdu as PNG files in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    app = QApplication.instance()
    assert app is not None

    def grab(name: str) -> None:
        app.processEvents()
        for lang in (Lang.EN, Lang.UR):
            window.ctx.tr.lang = lang
            window.apply_language()
            app.processEvents()
            path = out_dir / f"{name}-{lang.value}.png"
            save_small_png(window.grab().toImage(), path)
            written.append(path)
        window.ctx.tr.lang = Lang.EN
        window.apply_language()

    flow = ScriptedFlow(window, grab)
    receipt = flow.enroll(operator_id, pin)
    window.ctx.extra["last_receipt"] = receipt
    window.ctx.extra["printed_to"] = flow.print_receipt()
    for page, name in (
        (window.status, "status"),
        (window.technician, "technician"),
        (window.operators, "operators"),
    ):
        window.show_page(page)
        if page is window.status:
            wait_until(lambda: window.status.snapshot is not None, 20, "status")
        grab(name)
    demo_outcome(window, receipt.packet_id)
    window.show_page(window.outcomes)
    wait_until(lambda: bool(window.outcomes.rows), 20, "re-enroll list")
    grab("reenroll")
    type_into(window.outcomes.tracking, receipt.tracking_number)
    window.outcomes.lookup_btn.click()
    wait_until(lambda: window.outcomes.result is not None, 20, "lookup")
    grab("lookup")
    window.lock(idle=True)
    grab("locked")
    return written


def demo_outcome(window: KioskWindow, packet_id: str) -> None:
    """For the demo's screenshots: central's answer for the demo packet, as the agent would store it.

    A demo station has no central; a throwaway key signs a real outcome list ("re-enroll: fingerprint
    quality") and the station's own code verifies and stores it.
    """
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from station.outcomes import install_outcomes
    from station.policy.signed import OUTCOMES, sign_document

    key = ed25519.Ed25519PrivateKey.generate()
    station = window.ctx.services.station()
    item = {"seq": 1, "packet_id": packet_id, "outcome": "re-enroll", "reason": "finger_quality", "note": "",
            "decided_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}  # fmt: skip
    doc = {"station_id": station.station_id, "after": 0, "more": False, "outcomes": [item]}
    install_outcomes(station.store, station.audit, sign_document(OUTCOMES, doc, key), key.public_key(),
                     station_id=station.station_id)  # fmt: skip
