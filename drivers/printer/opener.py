"""Open a receipt printer by URL (``escpos+usb://``, ``escpos+file://``, ``pdf://``, ``sim://printer``).

The station's ``printer`` setting also takes the older spellings ``escpos-usb:VID:PID``,
``escpos-file:/dev/usb/lp0`` and ``pdf:PATH``; :func:`printer_url` turns them into URLs, so a
configuration written before printers were devices keeps working.
"""

from __future__ import annotations

import threading
from pathlib import Path

from drivers.device_url import parse_url
from drivers.errors import UnsupportedURL
from drivers.printer.printers import (
    DummyPrinter,
    EscposFilePrinter,
    EscposUsbPrinter,
    PdfPrinter,
    ReceiptPrinter,
)

_SIMULATORS: dict[str, DummyPrinter] = {}
_SIM_LOCK = threading.Lock()


def printer_url(setting: str) -> str:
    """The URL for a ``printer`` setting, old spellings included."""
    if setting.startswith("escpos-usb:"):
        return "escpos+usb://" + setting.removeprefix("escpos-usb:")
    if setting.startswith("escpos-file:"):
        return "escpos+file://" + setting.removeprefix("escpos-file:")
    if setting.startswith("pdf:") and not setting.startswith("pdf://"):
        return "pdf://" + str(Path(setting.removeprefix("pdf:")).absolute())
    return setting


def simulator(name: str = "") -> DummyPrinter:
    """The simulated printer behind ``sim://printer[?name=N]`` (one per name, kept for inspection)."""
    with _SIM_LOCK:
        return _SIMULATORS.setdefault(name, DummyPrinter())


def open_printer(url: str) -> ReceiptPrinter:
    """The printer named by ``url``; :class:`UnsupportedURL` with the accepted forms otherwise."""
    parsed = parse_url(printer_url(url))
    if parsed.scheme == "escpos+usb":
        vid, _, pid = parsed.host.partition(":")
        try:
            return EscposUsbPrinter(int(vid, 16), int(pid, 16))
        except ValueError:
            raise UnsupportedURL(f"{url!r}: write the USB ids as escpos+usb://VID:PID in hex") from None
    if parsed.scheme == "escpos+file" and parsed.path:
        return EscposFilePrinter(Path(parsed.path))
    if parsed.scheme == "pdf" and parsed.path:
        return PdfPrinter(Path(parsed.path))
    if parsed.scheme == "sim" and parsed.host == "printer":
        return simulator(parsed.param("name", "") or "")
    raise UnsupportedURL(
        f"Unknown printer {url!r}: use escpos+usb://VID:PID, escpos+file:///dev/usb/lp0, pdf:///path "
        "or sim://printer"
    )
