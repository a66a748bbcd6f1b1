"""WSQ encoding and print quality in a helper process.

The WSQ encoder holds Python's GIL for ~30 ms per print, long enough to make the GUI thread miss frames
even though it runs on the scanner thread. A one-process pool (``spawn``: a clean interpreter, never a
fork of the Qt process) does the work instead; the scanner thread waits on the result, which releases
the GIL. :meth:`Encoder.warm` starts the process early so the first finger does not pay its start-up.
"""

from __future__ import annotations

import logging
import multiprocessing
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from kiosk_ui.devices import ProcessedPrint

log = logging.getLogger("kiosk.encoder")


def _encode_and_score(pixels: np.ndarray, ppi: int) -> ProcessedPrint:
    from kiosk_ui.devices import encode_and_score

    return encode_and_score(pixels, ppi)


def _template(pixels: np.ndarray) -> bytes:
    from kiosk_ui.devices import finger_template

    return finger_template(pixels)


def _ready() -> bool:
    import kiosk_ui.devices  # noqa: F401  (imports numpy, Pillow, the WSQ codec)

    return True


class Encoder:
    """Falls back to encoding in the calling thread when a helper process cannot be started."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._broken = False

    def _get(self) -> ProcessPoolExecutor | None:
        if self._pool is None and not self._broken:
            try:
                self._pool = ProcessPoolExecutor(
                    max_workers=1, mp_context=multiprocessing.get_context("spawn")
                )
            except (OSError, RuntimeError) as exc:
                log.warning(
                    "encoder process unavailable (%s): encoding in the scanner thread", type(exc).__name__
                )
                self._broken = True
        return self._pool

    def warm(self) -> Future[bool] | None:
        pool = self._get()
        if pool is None:
            return None
        try:
            return pool.submit(_ready)
        except (OSError, RuntimeError, BrokenProcessPool) as exc:
            log.warning(
                "encoder process failed to start (%s): encoding in the scanner thread", type(exc).__name__
            )
            self._broken = True
            self._pool = None
            return None

    def encode_and_score(self, pixels: np.ndarray, ppi: int = 500) -> ProcessedPrint:
        pool = self._get()
        if pool is not None:
            try:
                return pool.submit(_encode_and_score, pixels, ppi).result(timeout=60)
            except (OSError, RuntimeError, BrokenProcessPool) as exc:
                log.warning("encoder process failed (%s): encoding in the scanner thread", type(exc).__name__)
                self._broken = True
                self._pool = None
        from kiosk_ui.devices import encode_and_score

        return encode_and_score(pixels, ppi)

    def template(self, pixels: np.ndarray) -> bytes:
        """A finger template (minutiae extraction holds the GIL for a long time: done in the helper)."""
        pool = self._get()
        if pool is not None:
            try:
                return pool.submit(_template, pixels).result(timeout=60)
            except (OSError, RuntimeError, BrokenProcessPool) as exc:
                log.warning("encoder process failed (%s): extracting in this thread", type(exc).__name__)
                self._broken = True
                self._pool = None
        from kiosk_ui.devices import finger_template

        return finger_template(pixels)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
