"""Qt's messages go through logging: platform-plugin chatter at DEBUG, real warnings kept."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import QtMsgType

from kiosk_ui.qtlog import level_for

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.qt


def test_levels_by_category() -> None:
    notice = "This plugin does not support propagateSizeHints()"
    assert level_for(QtMsgType.QtWarningMsg, "default", notice) == logging.DEBUG
    assert (
        level_for(QtMsgType.QtWarningMsg, "qt.qpa.fonts", "Populating font family aliases") == logging.DEBUG
    )
    painter = "QPainter::begin: Paint device returned engine == 0"
    assert level_for(QtMsgType.QtWarningMsg, "default", painter) == logging.WARNING
    assert level_for(QtMsgType.QtWarningMsg, "default", "something else") == logging.WARNING
    assert level_for(QtMsgType.QtCriticalMsg, "qt.text", notice) == logging.ERROR


PROGRAM = """
import logging, os, sys
logging.basicConfig(level=getattr(logging, sys.argv[1]), format="%(levelname)s %(name)s: %(message)s")
from kiosk_ui import qtlog
qtlog.install()
from PySide6.QtCore import qWarning
from PySide6.QtWidgets import QApplication, QWidget
app = QApplication([])
w = QWidget()
w.setMinimumSize(100, 100)
w.show()
w.setMaximumSize(300, 300)
app.processEvents()
qWarning("a real problem")
print("done", flush=True)
sys.stderr.flush()
os._exit(0)
"""


@pytest.mark.parametrize("level", ["INFO", "DEBUG"])
def test_offscreen_chatter_hidden_at_info_kept_at_debug(level: str) -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", PROGRAM, level], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0 and "done" in proc.stdout, proc.stderr
    assert "WARNING qt.default: a real problem" in proc.stderr
    chatter = "qt.default: This plugin does not support propagateSizeHints()"
    assert (chatter in proc.stderr) == (level == "DEBUG"), proc.stderr
