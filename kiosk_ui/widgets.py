"""Small shared widgets: the page base class, banners, the hand diagram, big buttons."""

from __future__ import annotations

from typing import ClassVar

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QLabel, QPushButton, QSizePolicy, QWidget

from drivers.errors import DeviceError
from kiosk_ui.context import KioskContext
from station.enrollment import FingerPosition
from station.enrollment.problem import Problem
from station.errors import StationError


class Page(QWidget):
    """A screen of the kiosk. Pages render state; they hold no rule of their own."""

    holds_pii = False

    def __init__(self, ctx: KioskContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx

    def t(self, key: str, **kwargs: object) -> str:
        return self.ctx.tr.t(key, **kwargs)

    def retranslate(self) -> None:
        """Set every text in the current language."""

    def clear_pii(self) -> None:
        """Forget every value, image and message about a citizen (idle lock, cancel)."""

    def enter(self) -> None:
        """Called when the page is shown."""

    def leave(self) -> None:
        """Called when another page is shown."""

    def show_problems(self, problems: list[Problem]) -> None:
        """Show why the step cannot be left (the pages of the wizard's steps say it; others do not)."""


UNEXPECTED = (
    "Something went wrong: try again; if it repeats, call a technician.",
    "کچھ غلط ہو گیا: دوبارہ کوشش کریں؛ بار بار ہو تو ٹیکنیشن کو بلائیں۔",
)


def error_text(ctx: KioskContext, error: Exception) -> str:
    """What the operator reads about ``error``: our errors' own message (Urdu when shown in Urdu),
    a plain "try again" for anything else (its details go to the log, never to the screen)."""
    if isinstance(error, StationError):
        return ctx.tr.pick(error.message, error.urdu)
    if isinstance(error, DeviceError):
        return error.message
    return ctx.tr.pick(*UNEXPECTED)


def big_button(text: str = "", *, primary: bool = False) -> QPushButton:
    btn = QPushButton(text)
    btn.setMinimumWidth(160)
    btn.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
    if primary:
        btn.setProperty("primary", True)
    return btn


def message_label() -> QLabel:
    lbl = QLabel()
    lbl.setWordWrap(True)
    lbl.setObjectName("message")
    lbl.setMinimumHeight(40)
    return lbl


def title_label() -> QLabel:
    lbl = QLabel()
    lbl.setObjectName("title")
    f = QFont(lbl.font())
    f.setPointSize(f.pointSize() + 6)
    f.setBold(True)
    lbl.setFont(f)
    return lbl


class Banner(QLabel):
    """A coloured strip across the window (device problems, demo mode)."""

    COLOURS: ClassVar[dict[str, str]] = {
        "error": "#b3261e",
        "ok": "#1b6e3a",
        "demo": "#7a4b00",
        "info": "#24527a",
    }

    def __init__(self, kind: str = "info", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWordWrap(True)
        self.set_kind(kind)
        self.setMinimumHeight(44)
        self.hide()

    def set_kind(self, kind: str) -> None:
        self.kind = kind
        self.setStyleSheet(
            f"background:{self.COLOURS[kind]}; color:white; padding:8px 16px; font-weight:bold;"
        )

    def show_message(self, text: str, kind: str | None = None) -> None:
        if kind:
            self.set_kind(kind)
        self.setText(text)
        self.show()


# Finger tip positions on the hand diagram, in a 0..1 box per hand (right hand drawn on the left, as
# seen by the operator facing the citizen's palms down).
_TIPS = {
    "thumb": (0.86, 0.58),
    "index": (0.70, 0.18),
    "middle": (0.50, 0.10),
    "ring": (0.31, 0.16),
    "little": (0.14, 0.32),
}


class HandDiagram(QWidget):
    """Two hands; each finger coloured by state; a click selects a finger."""

    finger_clicked = Signal(int)
    COLOURS: ClassVar[dict[str, str]] = {
        "todo": "#c9ced6",
        "current": "#f2b01e",
        "done": "#2e9d57",
        "exception": "#b3261e",
    }

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.states: dict[FingerPosition, str] = {p: "todo" for p in FingerPosition}
        self.setMinimumSize(420, 200)

    def set_state(self, position: FingerPosition, state: str) -> None:
        self.states[position] = state
        self.update()

    def _tip(self, position: FingerPosition) -> QPointF:
        name = position.name.split("_", 1)[1].lower()
        x, y = _TIPS[name]
        w, h = self.width() / 2, self.height()
        right = position <= FingerPosition.RIGHT_LITTLE
        if right:  # mirror so the right hand's thumb points inwards
            x = 1.0 - x
            return QPointF(w + x * w * 0.9 + w * 0.05, y * h * 0.9 + h * 0.05)
        return QPointF(x * w * 0.9 + w * 0.05, y * h * 0.9 + h * 0.05)

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        w, h = self.width() / 2, self.height()
        for i in range(2):
            palm = QRectF(i * w + w * 0.22, h * 0.45, w * 0.56, h * 0.5)
            p.setPen(QPen(QColor("#7a808a"), 2))
            p.setBrush(QColor("#eef0f3"))
            p.drawRoundedRect(palm, 24, 24)
        r = min(w, h) * 0.09
        for pos in FingerPosition:
            tip = self._tip(pos)
            colour = QColor(self.COLOURS[self.states[pos]])
            p.setPen(QPen(QColor("#4a4f57"), 2))
            p.setBrush(colour)
            p.drawEllipse(tip, r, r)
            p.setPen(QColor("black"))
            p.drawText(
                QRectF(tip.x() - r, tip.y() - r, 2 * r, 2 * r), Qt.AlignmentFlag.AlignCenter, str(int(pos))
            )
        p.end()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        r = min(self.width() / 2, self.height()) * 0.09
        for pos in FingerPosition:
            tip = self._tip(pos)
            d = event.position() - tip
            if d.x() ** 2 + d.y() ** 2 <= r * r:
                self.finger_clicked.emit(int(pos))
                return
