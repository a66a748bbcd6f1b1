"""The Qt binding must not drop references it does not own: PySide6 6.12.0's ``Signal.emit()`` did.

Each emit there returned ``True`` without a new reference, so ``True``'s refcount fell by one per emit
(a kiosk emits about 300 progress signals per finger) until CPython aborted with "bool_dealloc" in the
second enrollment of a session. pyproject.toml keeps PySide6 below 6.12; this test fails on any version
that brings the bug back.
"""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal


class _Emitter(QObject):
    plain = Signal()
    progress = Signal(str, int, int)


def test_emitting_a_signal_leaves_the_refcount_of_true_and_false_alone() -> None:
    emitter = _Emitter()
    seen: list[int] = []
    emitter.progress.connect(lambda job, done, total: seen.append(done))
    before = sys.getrefcount(True), sys.getrefcount(False)
    for n in range(200):
        emitter.plain.emit()
        emitter.progress.emit("finger-1", n, 200)
    after = sys.getrefcount(True), sys.getrefcount(False)
    assert len(seen) == 200
    assert abs(after[0] - before[0]) < 20 and abs(after[1] - before[1]) < 20, (before, after)
