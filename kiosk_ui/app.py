"""The kiosk window: header (operator, status, language, lock), banners, and one page at a time.

* Fullscreen and frameless unless ``windowed``; Escape and closing are refused unless a technician is
  logged in and asks to exit from the technician screen.
* The language switch sets the application's layout direction (the whole layout mirrors for Urdu) and
  font (Noto Nastaliq Urdu).
* Idle lock: every input event resets the timer; when it runs out, every page forgets its PII, the
  wizard is cleared, and the login screen comes back.
* The systemd watchdog is pinged from a timer on this (GUI) thread: if the loop freezes, pings stop.
"""

from __future__ import annotations

import logging
import time
from functools import partial

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QKeyEvent
from PySide6.QtWidgets import (
    QApplication,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from kiosk_ui.context import KioskContext, cancel_capture
from kiosk_ui.fonts import URDU_FAMILY, latin_font, load_fonts, urdu_font
from kiosk_ui.i18n import Lang
from kiosk_ui.logbuffer import RingLog, TraceBuffer
from kiosk_ui.pages.consent import ConsentPage
from kiosk_ui.pages.demographics import DemographicsPage
from kiosk_ui.pages.face import FacePage
from kiosk_ui.pages.fingers import FingersPage
from kiosk_ui.pages.login import LoginPage
from kiosk_ui.pages.operators import OperatorsPage
from kiosk_ui.pages.outcomes import OutcomesPage
from kiosk_ui.pages.receipt import ReceiptPage
from kiosk_ui.pages.review import ReviewPage
from kiosk_ui.pages.status import StatusPage
from kiosk_ui.pages.technician import TechnicianPage
from kiosk_ui.widgets import Banner, Page, big_button
from kiosk_ui.workers import ignore_result
from station.auth import IdleLock, Operator, Role, idle_lock_seconds
from station.enrollment.problem import Problem
from station.errors import StationError
from station.sdnotify import Notifier
from station.wizard import Receipt, Step, StepBlocked

log = logging.getLogger("kiosk")

STYLE = """
QWidget { font-size: 15pt; font-family: "%(family)s"; }
QPushButton { min-height: %(button)dpx; padding: 0px 18px; border-radius: 8px; background: #e4e8ee; }
QPushButton[primary="true"] { background: #1b6e3a; color: white; font-weight: bold; }
QPushButton:disabled { color: #8a9099; }
QLineEdit, QComboBox { min-height: 48px; padding: 4px 10px; border: 2px solid #9aa3ad; border-radius: 6px; }
QLineEdit:focus { border-color: #24527a; }
QLabel#title { color: #1d2733; }
QLabel#message, QLabel#loginMessage, QLabel#reviewMessage { color: #7a1d16; }
QWidget#header { background: #24527a; }
QWidget#header QLabel { color: white; }
QCheckBox::indicator, QRadioButton::indicator { width: 32px; height: 32px; }
"""


class _InputWatcher(QObject):
    """Application-wide event filter: any input resets the idle timer; Escape is swallowed."""

    def __init__(self, window: KioskWindow) -> None:
        super().__init__(window)
        self.window = window

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        t = event.type()
        if t in (
            QEvent.Type.MouseButtonPress,
            QEvent.Type.KeyPress,
            QEvent.Type.TouchBegin,
            QEvent.Type.Wheel,
        ):
            self.window.idle.touch(time.monotonic())
        if t == QEvent.Type.KeyPress and isinstance(event, QKeyEvent) and event.key() == Qt.Key.Key_Escape:
            self.window.refuse_exit()
            return True
        return False


class KioskWindow(QMainWindow):
    locked = Signal()
    page_changed = Signal(str)

    def __init__(self, ctx: KioskContext, *, windowed: bool = False) -> None:
        super().__init__()
        self.ctx = ctx
        self.windowed = windowed
        self._may_close = False
        load_fonts()
        self.ring_log = RingLog()
        logging.getLogger().addHandler(self.ring_log)
        self.trace = TraceBuffer()
        self.idle = IdleLock(idle_lock_seconds(ctx.config))
        self.setWindowTitle("Enrollment Station")
        app = QApplication.instance()
        assert isinstance(app, QApplication)
        self.watcher = _InputWatcher(self)
        app.installEventFilter(self.watcher)

        central = QWidget()
        root = QVBoxLayout(central)
        root.setContentsMargins(0, 0, 0, 0)
        root.setSpacing(0)
        header = QWidget()
        header.setObjectName("header")
        header.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        hl = QHBoxLayout(header)
        self.app_title = QLabel()
        self.operator_label = QLabel()
        self.operator_label.setObjectName("operatorLabel")
        self.step_label = QLabel()
        self.step_label.setObjectName("stepLabel")
        self.new_btn = big_button()
        self.status_btn = big_button()
        self.outcomes_btn = big_button()
        self.outcomes_btn.setObjectName("outcomesButton")
        self.operators_btn = big_button()
        self.tech_btn = big_button()
        self.lock_btn = big_button()
        self.lang_btn = big_button()
        self.lang_btn.setObjectName("languageSwitch")
        for w in (self.app_title, self.operator_label, self.step_label):
            hl.addWidget(w)
        hl.addStretch(1)
        for b in (
            self.new_btn,
            self.status_btn,
            self.outcomes_btn,
            self.operators_btn,
            self.tech_btn,
            self.lock_btn,
            self.lang_btn,
        ):
            hl.addWidget(b)
        root.addWidget(header)
        self.demo_banner = Banner("demo")
        self.demo_banner.setObjectName("demoBanner")
        self.device_banner = Banner("error")
        self.device_banner.setObjectName("deviceBanner")
        root.addWidget(self.demo_banner)
        root.addWidget(self.device_banner)

        self.stack = QStackedWidget()
        self.login = LoginPage(ctx)
        self.consent = ConsentPage(ctx)
        self.demographics = DemographicsPage(ctx)
        self.face = FacePage(ctx)
        self.fingers = FingersPage(ctx)
        self.review = ReviewPage(ctx)
        self.receipt = ReceiptPage(ctx)
        self.status = StatusPage(ctx)
        self.technician = TechnicianPage(ctx, self.ring_log, self.trace)
        self.operators = OperatorsPage(ctx)
        self.outcomes = OutcomesPage(ctx)
        self.pages: list[Page] = [
            self.login, self.consent, self.demographics, self.face, self.fingers, self.review,
            self.receipt, self.status, self.technician, self.operators, self.outcomes,
        ]  # fmt: skip
        self.step_pages: dict[Step, Page] = {
            Step.KIND_CONSENT: self.consent,
            Step.DEMOGRAPHICS: self.demographics,
            Step.FACE: self.face,
            Step.FINGERS: self.fingers,
            Step.REVIEW: self.review,
            Step.RECEIPT: self.receipt,
        }
        for p in self.pages:
            self.stack.addWidget(p)
        body = QVBoxLayout()
        body.setContentsMargins(24, 16, 24, 16)
        body.addWidget(self.stack, 1)
        nav = QHBoxLayout()
        self.cancel_btn = big_button()
        self.cancel_btn.setObjectName("cancelEnrollment")
        self.back_btn = big_button()
        self.back_btn.setObjectName("back")
        self.next_btn = big_button(primary=True)
        self.next_btn.setObjectName("next")
        nav.addWidget(self.cancel_btn)
        nav.addStretch(1)
        nav.addWidget(self.back_btn)
        nav.addWidget(self.next_btn)
        self.nav = QWidget()
        self.nav.setLayout(nav)
        body.addWidget(self.nav)
        root.addLayout(body, 1)
        self.setCentralWidget(central)

        self.login.logged_in.connect(self._logged_in)
        self.next_btn.clicked.connect(self.go_next)
        self.back_btn.clicked.connect(self.go_back)
        self.cancel_btn.clicked.connect(self.cancel_enrollment)
        self.lock_btn.clicked.connect(lambda: self.lock(idle=False))
        self.lang_btn.clicked.connect(self.toggle_language)
        self.new_btn.clicked.connect(self.start_enrollment)
        self.status_btn.clicked.connect(lambda: self.show_page(self.status))
        self.outcomes_btn.clicked.connect(lambda: self.show_page(self.outcomes))
        self.outcomes.closed.connect(self.back_to_work)
        self.tech_btn.clicked.connect(lambda: self.show_page(self.technician))
        self.operators_btn.clicked.connect(lambda: self.show_page(self.operators))
        self.status.closed.connect(self.back_to_work)
        self.technician.closed.connect(self.back_to_work)
        self.technician.exit_requested.connect(self.technician_exit)
        self.operators.closed.connect(self.back_to_work)
        self.review.edit_requested.connect(self._edit)
        self.review.committed.connect(self._committed)
        self.receipt.next_citizen.connect(self.start_enrollment)

        self.idle_timer = QTimer(self)
        self.idle_timer.setInterval(1000)
        self.idle_timer.timeout.connect(self._check_idle)
        self.idle_timer.start()
        self.notifier = Notifier()
        self.watchdog_timer = QTimer(self)
        interval = self.notifier.ping_interval()
        if interval is not None:
            self.watchdog_timer.setInterval(max(100, int(interval * 1000 / 2)))
            self.watchdog_timer.timeout.connect(self.notifier.watchdog)
            self.watchdog_timer.start()

        if ctx.demo is not None:
            self.demo_banner.show_message("")
        self.apply_language()
        self.show_page(self.login)

    # -- devices ------------------------------------------------------------------------------------
    def attach_devices(self) -> None:
        """Start the device threads and connect their signals to the pages."""
        self.ctx.start_devices(trace=self.trace)
        for page in (self.login, self.fingers, self.technician, self.operators):
            page.connect_scanner()  # type: ignore[attr-defined]
        self.face.connect_camera()
        self.ctx.scanner_worker.state.connect(lambda s, m: self._device_state("scanner", s, m))
        self.ctx.camera_worker.state.connect(lambda s, m: self._device_state("camera", s, m))

    def _device_state(self, device: str, state: str, message: str) -> None:
        if state == "unplugged":
            self.device_banner.show_message(self.ctx.tr.t(f"dev.{device}_lost"), "error")
            self.device_banner.setProperty("device_state", f"{device}:unplugged")
        elif state == "replugged":
            self.device_banner.show_message(self.ctx.tr.t(f"dev.{device}_back"), "ok")
            self.device_banner.setProperty("device_state", f"{device}:replugged")
            QTimer.singleShot(5000, self._hide_ok_banner)
        log.info("device %s %s", device, state)

    def _hide_ok_banner(self) -> None:
        if self.device_banner.kind == "ok":
            self.device_banner.hide()

    # -- language -----------------------------------------------------------------------------------
    def toggle_language(self) -> None:
        self.ctx.tr.lang = Lang.EN if self.ctx.tr.urdu else Lang.UR
        self.apply_language()

    def apply_language(self) -> None:
        app = QApplication.instance()
        assert isinstance(app, QApplication)
        urdu = self.ctx.tr.urdu
        app.setLayoutDirection(Qt.LayoutDirection.RightToLeft if urdu else Qt.LayoutDirection.LeftToRight)
        app.setFont(urdu_font() if urdu else latin_font())
        # A style sheet's font wins over QApplication.setFont on polished widgets: set the family there.
        # Nastaliq needs about twice the line height of Latin text: taller buttons in Urdu.
        app.setStyleSheet(
            STYLE % {"family": URDU_FAMILY if urdu else "DejaVu Sans", "button": 72 if urdu else 56}
        )
        t = self.ctx.tr.t
        self.app_title.setText(t("app.title"))
        self.lang_btn.setText(t("lang.switch"))
        self.lang_btn.setFont(latin_font() if urdu else urdu_font())
        self.lock_btn.setText(t("hdr.lock"))
        self.status_btn.setText(t("hdr.status"))
        self.outcomes_btn.setText(t("hdr.outcomes"))
        self.tech_btn.setText(t("hdr.tech"))
        self.operators_btn.setText(t("hdr.operators"))
        self.new_btn.setText(t("hdr.new"))
        self.back_btn.setText(t("nav.back"))
        self.next_btn.setText(t("nav.next"))
        self.cancel_btn.setText(t("nav.cancel"))
        if self.ctx.demo is not None:
            self.demo_banner.setText(t("demo.banner", op=self.ctx.demo.operator_id, pin=self.ctx.demo.pin))
        if self.device_banner.isVisible():
            state = str(self.device_banner.property("device_state") or "")
            if ":" in state:
                dev, st = state.split(":")
                self.device_banner.setText(t(f"dev.{dev}_{'lost' if st == 'unplugged' else 'back'}"))
        for p in self.pages:
            p.retranslate()
        self._refresh_chrome()

    # -- navigation ---------------------------------------------------------------------------------
    def current_page(self) -> Page:
        page = self.stack.currentWidget()
        assert isinstance(page, Page)
        return page

    def show_page(self, page: Page) -> None:
        old = self.stack.currentWidget()
        if isinstance(old, Page) and old is not page:
            old.leave()
        self.stack.setCurrentWidget(page)
        page.retranslate()
        page.enter()
        self._refresh_chrome()
        self.page_changed.emit(type(page).__name__)

    def _refresh_chrome(self) -> None:
        op = self.ctx.operator
        page = self.stack.currentWidget()
        logged_in = op is not None
        self.operator_label.setText(self.ctx.tr.t("hdr.operator", op=op.operator_id) if op else "")
        self.lock_btn.setVisible(logged_in)
        self.status_btn.setVisible(logged_in)
        self.outcomes_btn.setVisible(logged_in)
        self.new_btn.setVisible(
            logged_in and page in (self.status, self.technician, self.operators, self.outcomes)
        )
        self.tech_btn.setVisible(logged_in and op is not None and op.role is Role.TECHNICIAN)
        self.operators_btn.setVisible(logged_in and op is not None and op.role is Role.SUPERVISOR)
        w = self.ctx.wizard
        in_wizard = (
            logged_in and w is not None and page in self.step_pages.values() and page is not self.receipt
        )
        self.nav.setVisible(in_wizard)
        if in_wizard and w is not None:
            self.back_btn.setEnabled(w.step > Step.KIND_CONSENT)
            self.next_btn.setVisible(w.step < Step.REVIEW)
            names = ("step.kind", "step.demo", "step.face", "step.fingers", "step.review")
            self.step_label.setText(
                " › ".join(
                    ("[" + self.ctx.tr.t(n) + "]") if i == w.step else self.ctx.tr.t(n)
                    for i, n in enumerate(names)
                )
            )
        else:
            self.step_label.setText("")

    def _logged_in(self, op: object) -> None:
        assert isinstance(op, Operator)
        self.ctx.operator = op
        self.idle.touch(time.monotonic())
        log.info("login ok role=%s", op.role.value)
        self.start_enrollment()

    def start_enrollment(self) -> None:
        if self.ctx.operator is None:
            self.show_page(self.login)
            return
        for p in self.step_pages.values():
            p.clear_pii()
        if self.ctx.wizard is not None:
            self.ctx.wizard.clear()
        self.ctx.new_wizard()
        self._apply_central_settings()
        self.show_page(self.consent)

    def _apply_central_settings(self) -> None:
        """The idle lock central sets in its policy (station.toml's until central sent one)."""
        in_force = self.ctx.services.last_policy
        if in_force is not None and in_force.source == "central":
            self.idle.seconds = float(in_force.policy.settings.idle_lock_seconds)

    def back_to_work(self) -> None:
        w = self.ctx.wizard
        if w is None or w.step is Step.RECEIPT:
            self.start_enrollment()
        else:
            self.show_page(self.step_pages[w.step])

    def go_next(self) -> None:
        w = self.ctx.wizard
        if w is None:
            return
        try:
            step = w.advance()
        except StepBlocked as exc:
            self._show_problems(exc.problems)
            return
        except StationError as exc:
            log.warning("wizard: %s", exc.code)
            return
        if step is Step.REVIEW:
            self.review.finger_previews = dict(self.fingers.previews)
        self.show_page(self.step_pages[step])

    def _show_problems(self, problems: list[Problem]) -> None:
        page = self.current_page()
        show = getattr(page, "show_problems", None)
        if show is not None:
            show(problems)

    def go_back(self) -> None:
        w = self.ctx.wizard
        if w is None:
            return
        self.show_page(self.step_pages[w.back()])

    def _edit(self, step: int) -> None:
        w = self.ctx.wizard
        if w is not None:
            self.show_page(self.step_pages[w.edit(Step(step))])

    def _committed(self, receipt: object) -> None:
        assert isinstance(receipt, Receipt)
        for p in self.step_pages.values():
            if p is not self.receipt:
                p.clear_pii()
        log.info("enrollment committed")
        self.receipt.show_receipt(receipt, self.review.qr_png)
        self.show_page(self.receipt)

    def cancel_enrollment(self) -> None:
        self.start_enrollment()

    # -- locking and leaving ------------------------------------------------------------------------
    def _check_idle(self) -> None:
        if self.ctx.operator is not None and self.idle.due(time.monotonic()):
            self.lock(idle=True)

    def lock(self, *, idle: bool) -> None:
        """Forget the operator and every piece of PII on every page; show the login screen."""
        if self.ctx.scanner is not None:
            cancel_capture(self.ctx)
        if self.ctx.wizard is not None:
            self.ctx.wizard.clear()
        self.ctx.wizard = None
        for p in self.pages:
            p.clear_pii()
        operator, self.ctx.operator = self.ctx.operator, None
        log.info("locked (%s)", "idle" if idle else "operator")
        if operator is not None:
            reason = "idle" if idle else "operator"
            who = operator.operator_id
            audit = partial(self.ctx.services.audit, "session.lock", operator=who, reason=reason)
            self.ctx.tasks.run(audit, ignore_result)
        self.login.show_locked(int(self.idle.seconds) if idle else None)
        self.show_page(self.login)
        self.locked.emit()

    def refuse_exit(self) -> None:
        page = self.current_page()
        msg = getattr(page, "message", None)
        if isinstance(msg, QLabel):
            msg.setText(self.ctx.tr.t("tech.only"))

    def technician_exit(self) -> None:
        op = self.ctx.operator
        if op is None or op.role is not Role.TECHNICIAN:
            self.refuse_exit()
            return
        log.info("technician exit")
        self._may_close = True
        self.close()

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self._may_close:
            event.ignore()
            self.refuse_exit()
            return
        self.lock(idle=False)
        self.notifier.stopping()
        self.ctx.stop()
        event.accept()

    def force_close(self) -> None:
        """For tests and the scripted demo: close without a technician."""
        self._may_close = True
        self.close()

    def present(self) -> None:
        if self.windowed:
            self.resize(1280, 800)
            self.show()
        else:
            self.setWindowFlag(Qt.WindowType.FramelessWindowHint, True)
            self.showFullScreen()
        self.notifier.ready("kiosk up")
