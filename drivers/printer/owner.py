"""One thread owns an open receipt printer; callers hand it jobs and get futures back.

A printer must not be driven from two threads at once (a USB handle, a device file with half a job
written). :class:`PrinterOwner` runs every job on its own thread, in order. When a job fails
because the printer went away, the printer is reopened by its URL for the next job, so plugging
it back in is all an operator has to do.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import threading
from collections.abc import Callable

from drivers.errors import DeviceError, DeviceNotFound, DeviceUnplugged
from drivers.printer.document import ReceiptDocument
from drivers.printer.printers import ReceiptPrinter


class PrinterOwner:
    """Runs print jobs for one printer URL on one thread."""

    def __init__(self, url: str, opener: Callable[[str], ReceiptPrinter]) -> None:
        self.url = url
        self._opener = opener
        self._printer: ReceiptPrinter | None = None
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="printer")
        self._owner: threading.Thread | None = None

    def _on_owner_thread(self) -> None:
        current = threading.current_thread()
        if self._owner is None:
            self._owner = current
        assert self._owner is current, "the printer is driven from its owner thread only"

    def _job(self, doc: ReceiptDocument) -> str:
        self._on_owner_thread()
        if self._printer is None:
            self._printer = self._opener(self.url)
        try:
            return self._printer.print_receipt(doc)
        except (DeviceUnplugged, DeviceNotFound):
            self._drop()
            raise

    def _drop(self) -> None:
        if self._printer is not None:
            with contextlib.suppress(DeviceError):
                self._printer.close()
            self._printer = None

    def submit(self, doc: ReceiptDocument) -> concurrent.futures.Future[str]:
        """Queue one receipt; the future gives where it went, or the device error."""
        return self._pool.submit(self._job, doc)

    def print_receipt(self, doc: ReceiptDocument, timeout: float = 60.0) -> str:
        """Print one receipt and wait for it (from any thread but the owner)."""
        return self.submit(doc).result(timeout=timeout)

    @property
    def printer(self) -> ReceiptPrinter | None:
        """The open printer, if a job has opened it (for tests: the simulator's jobs)."""
        return self._printer

    def close(self) -> None:
        self._pool.submit(self._drop).result(timeout=30)
        self._pool.shutdown(wait=True)
