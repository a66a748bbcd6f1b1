"""Qt's own messages into Python logging, with the platform plugin's chatter kept out of sight.

Qt prints its warnings straight to stderr, where they land between the kiosk's own messages: the
offscreen platform (the demo and the headless runs) says "This plugin does not support
propagateSizeHints()" for every window whose size hints change, dozens of times per enrollment.
:func:`install` routes every Qt message to the logger ``qt.<category>`` instead. Messages of the
platform-plugin categories (``qt.qpa.*``) and the plugins' known capability notices (they come
through the ``default`` category with a fixed text) are logged at DEBUG, so the journal of a run at
debug level keeps them; everything else keeps its level (a Qt warning stays a WARNING).
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QMessageLogContext, QtMsgType, qInstallMessageHandler

#: Notices a platform plugin gives when it lacks a window-system capability: expected offscreen.
PLATFORM_NOTICES = frozenset(
    {
        "This plugin does not support propagateSizeHints()",
        "This plugin does not support raise()",
        "This plugin does not support grabbing the keyboard",
        "This plugin does not support grabbing the mouse",
        "This plugin does not support setParent!",
        "This plugin does not support QPlatformWindow::setWindowState()",
    }
)
PLATFORM_CATEGORIES = ("qt.qpa",)

_LEVELS = {
    QtMsgType.QtDebugMsg: logging.DEBUG,
    QtMsgType.QtInfoMsg: logging.INFO,
    QtMsgType.QtWarningMsg: logging.WARNING,
    QtMsgType.QtCriticalMsg: logging.ERROR,
    QtMsgType.QtFatalMsg: logging.CRITICAL,
}


def level_for(kind: QtMsgType, category: str, message: str) -> int:
    """The logging level a Qt message is recorded at."""
    if category.startswith(PLATFORM_CATEGORIES) or (category == "default" and message in PLATFORM_NOTICES):
        return logging.DEBUG
    return _LEVELS.get(kind, logging.WARNING)


def _handler(kind: QtMsgType, context: QMessageLogContext, message: str) -> None:
    category = context.category or "default"
    logging.getLogger(f"qt.{category}").log(level_for(kind, category, message), "%s", message)


def install() -> None:
    """Route Qt's messages through :mod:`logging` (call before the QApplication exists)."""
    qInstallMessageHandler(_handler)
