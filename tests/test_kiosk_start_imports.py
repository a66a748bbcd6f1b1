"""The kiosk's login screen starts without NumPy, OpenCV or Pillow (issue 17: cold start).

They load later, on the device and task threads that need them (camera, scanner, the commit's QR
code). A top-level import of one of them anywhere on the kiosk's start-up path puts 100-200 ms back on
every cold start: this test names the module that did it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("numpy", "cv2", "PIL")

PROBE = """
import sys, traceback
heavy = set(sys.argv[1:])
class Spy:
    def find_spec(self, name, path=None, target=None):
        if name in heavy:
            where = [f"{f.filename}:{f.lineno}" for f in traceback.extract_stack()[:-1]]
            print("HEAVY", name, " <- ".join(reversed(where[-4:])))
        return None
sys.meta_path.insert(0, Spy())
import kiosk_ui.run
import kiosk_ui.app
import kiosk_ui.pages.review
import kiosk_ui.pages.receipt
print("DONE")
"""


def test_the_kiosk_modules_import_without_numpy_opencv_or_pillow() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *HEAVY],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(ROOT)),
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("DONE"), proc.stdout + proc.stderr
    assert [line for line in proc.stdout.splitlines() if line.startswith("HEAVY")] == []
