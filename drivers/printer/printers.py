"""The receipt printers behind the URLs: ESC/POS (USB, device file, Dummy simulator) and PDF.

Every printer takes a :class:`~drivers.printer.document.ReceiptDocument` and either prints all of
it or raises a :class:`~drivers.errors.DeviceError` saying what to do. An ESC/POS job is built
whole in memory first (python-escpos's ``Dummy``) and then written in one piece, so an unplugged
printer never gets half a receipt followed by the next one.
"""

from __future__ import annotations

import abc
import errno
import os
import tempfile
from pathlib import Path
from typing import Any

from drivers.base import DeviceInfo
from drivers.errors import DeviceError, DeviceNotFound, DeviceUnplugged
from drivers.printer.document import ReceiptDocument, render_page, render_qr, render_rtl


class PrinterError(DeviceError):
    code = "printer.error"
    default_message = "The printer reported an error: check the paper and press Print again."


class PrinterUnplugged(DeviceUnplugged):
    code = "printer.unplugged"
    default_message = "Printer unplugged or switched off: reconnect it and press Print again."


class ReceiptPrinter(abc.ABC):
    """A printer that prints whole receipts."""

    url: str

    @abc.abstractmethod
    def info(self) -> DeviceInfo: ...

    @abc.abstractmethod
    def print_receipt(self, doc: ReceiptDocument) -> str:
        """Print ``doc``; returns where it went (the URL, or the file written)."""

    def close(self) -> None:  # noqa: B027  (most printers hold nothing open)
        """Release the device."""


def escpos_job(doc: ReceiptDocument) -> bytes:
    """The exact bytes of one receipt for an ESC/POS printer: title, lines, Urdu raster, QR, cut."""
    from escpos.printer import Dummy

    job: Any = Dummy()
    job.profile.profile_data.setdefault("media", {}).setdefault("width", {})["pixel"] = doc.width_dots
    job.set(align="center", bold=True)
    job.text(doc.title + "\n")
    job.set(align="left", bold=False)
    for line in doc.lines:
        job.text(line + "\n")
    if doc.rtl_lines:
        rtl = render_rtl(doc.rtl_lines, doc.rtl_font, doc.width_dots, latin_path=doc.latin_font)
        job.image(rtl, impl="bitImageRaster")
    job.image(render_qr(doc.qr_payload), impl="bitImageRaster", center=False)
    job.text("\n")
    job.cut()
    return bytes(job.output)


class EscposFilePrinter(ReceiptPrinter):
    """An ESC/POS printer behind a character device (``/dev/usb/lp0``) or any writable file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.url = f"escpos+file://{path}"

    def info(self) -> DeviceInfo:
        return DeviceInfo(kind="printer", url=self.url, model="ESC/POS (device file)", details={})

    def print_receipt(self, doc: ReceiptDocument) -> str:
        data = escpos_job(doc)
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_NOCTTY | os.O_APPEND | os.O_CLOEXEC)
        except FileNotFoundError:
            raise PrinterUnplugged(
                f"Printer {self.path} is not there: reconnect it and press Print again."
            ) from None
        except PermissionError:
            raise PrinterError(
                f"No permission to write to {self.path}: the station user needs the lp group (see docs).",
                code="printer.permission",
            ) from None
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
        except OSError as exc:
            if exc.errno in (errno.ENODEV, errno.EIO, errno.ENXIO, errno.EPIPE):
                raise PrinterUnplugged() from None
            raise PrinterError(
                f"Printing failed ({exc.strerror}): check the printer and press Print again."
            ) from None
        finally:
            os.close(fd)
        return self.url


class EscposUsbPrinter(ReceiptPrinter):
    """An ESC/POS printer on USB through python-escpos (pyusb), opened per job."""

    def __init__(self, vendor: int, product: int) -> None:
        self.vendor, self.product = vendor, product
        self.url = f"escpos+usb://{vendor:04x}:{product:04x}"

    def info(self) -> DeviceInfo:
        return DeviceInfo(kind="printer", url=self.url, model="ESC/POS (USB)", details={})

    def print_receipt(self, doc: ReceiptDocument) -> str:
        from escpos.printer import Usb

        data = escpos_job(doc)
        try:
            device: Any = Usb(self.vendor, self.product)
            device.open()
        except Exception as exc:  # python-escpos raises its own and pyusb's errors here
            raise DeviceNotFound(
                f"No ESC/POS printer {self.vendor:04x}:{self.product:04x} on USB: "
                "plug it in and switch it on."
            ) from exc
        try:
            device._raw(data)
        except Exception as exc:  # usb.core.USBError, escpos's DeviceNotFoundError
            raise PrinterUnplugged() from exc
        finally:
            close = getattr(device, "close", None)
            if close is not None:
                close()
        return self.url


class DummyPrinter(ReceiptPrinter):
    """``sim://printer``: keeps every job's bytes, as a printer would receive them, for inspection.

    ``unplug()`` and ``plug()`` make the next job fail or work, as a cable pulled out would.
    """

    url = "sim://printer"

    def __init__(self) -> None:
        self.jobs: list[bytes] = []
        self.plugged = True

    def info(self) -> DeviceInfo:
        return DeviceInfo(kind="printer", url=self.url, model="ESC/POS simulator", details={})

    def unplug(self) -> None:
        self.plugged = False

    def plug(self) -> None:
        self.plugged = True

    def print_receipt(self, doc: ReceiptDocument) -> str:
        data = escpos_job(doc)
        if not self.plugged:
            raise PrinterUnplugged()
        self.jobs.append(data)
        return self.url


class PdfPrinter(ReceiptPrinter):
    """``pdf:///path``: the receipt as the paper would look, one page, written atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.url = f"pdf://{path}"

    def info(self) -> DeviceInfo:
        return DeviceInfo(kind="printer", url=self.url, model="PDF file", details={})

    def print_receipt(self, doc: ReceiptDocument) -> str:
        page = render_page(doc)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".receipt-", suffix=".pdf")
            with os.fdopen(fd, "wb") as out:
                page.save(out, format="PDF", resolution=page.info["dpi"][0])
            os.replace(tmp, self.path)
        except OSError as exc:
            raise PrinterError(
                f"The receipt PDF could not be written to {self.path} ({exc.strerror}): free disk space.",
                code="printer.pdf",
            ) from None
        return str(self.path)
