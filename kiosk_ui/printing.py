"""The receipt on paper: a QR code (packet id + station signature), the tracking number and the purpose.

What goes on the receipt is decided here (:func:`receipt_document`, English and Urdu lines, no PII);
how it is printed is the printer driver's (``drivers/printer``: ESC/POS over USB or a device file,
a PDF page, the ``sim://printer`` simulator), opened by the URL in the station's ``printer``
setting and driven by one owner thread per printer. The Urdu lines are rasterised by the driver
with the same Nastaliq font file the screen uses. A Qt system printer (``qt:NAME``) is printed
with QPrinter here, since it is Qt's.
"""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

from PySide6.QtCore import QMarginsF, QRectF, Qt
from PySide6.QtGui import QFont, QImage, QPageLayout, QPageSize, QPainter
from PySide6.QtPrintSupport import QPrinter

from drivers.errors import DeviceError
from drivers.printer.document import ReceiptDocument, render_qr
from drivers.printer.opener import open_printer, printer_url
from drivers.printer.owner import PrinterOwner
from drivers.printer.printers import PdfPrinter
from kiosk_ui.fonts import FONT_DIRS, URDU_FAMILY
from station.errors import StationError
from station.wizard import Receipt

URDU_TITLE = "اندراج کی رسید"
URDU_KEEP = "یہ رسید سنبھال کر رکھیں۔ ٹریکنگ نمبر سے اپنے کارڈ کی صورتحال معلوم کریں۔"


def qr_png(payload: str, box_size: int = 6) -> bytes:
    """The receipt's QR code as PNG bytes (for the screen; the printer driver draws the same code)."""
    buf = io.BytesIO()
    render_qr(payload, box_size).save(buf, format="PNG")
    return buf.getvalue()


def qr_image(payload: str, box_size: int = 6) -> QImage:
    return QImage.fromData(qr_png(payload, box_size), "PNG")


def receipt_lines(receipt: Receipt) -> list[str]:
    when = dt.datetime.fromtimestamp(receipt.created_at, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return [
        "ENROLLMENT RECEIPT",
        f"Tracking number: {receipt.tracking_number}",
        f"Station: {receipt.station_id}",
        f"Date: {when}",
        f"Packet: {receipt.packet_id}",
        "Purpose:",
        receipt.purpose,
    ]


def print_pdf(receipt: Receipt, path: Path, *, printer_name: str | None = None) -> Path | None:
    """Render the receipt with QPrinter: to ``path`` as PDF, or to the system printer ``printer_name``."""
    printer = QPrinter(QPrinter.PrinterMode.HighResolution)
    if printer_name:
        printer.setPrinterName(printer_name)
        if not printer.isValid():
            raise StationError(
                f"Printer {printer_name} is not available: check that it is on and connected.",
                urdu="پرنٹر دستیاب نہیں: دیکھیں کہ وہ چالو اور جڑا ہوا ہے۔",
                code="print.unavailable",
            )
    else:
        printer.setOutputFormat(QPrinter.OutputFormat.PdfFormat)
        printer.setOutputFileName(str(path))
    printer.setPageLayout(
        QPageLayout(
            QPageSize(QPageSize.PageSizeId.A5), QPageLayout.Orientation.Portrait, QMarginsF(12, 12, 12, 12)
        )
    )
    painter = QPainter()
    if not painter.begin(printer):
        raise StationError("The receipt could not be printed: check the printer.", code="print.failed")
    try:
        page = printer.pageLayout().paintRectPixels(printer.resolution())
        w = page.width()
        y = 0.0
        font = QFont("DejaVu Sans", 11)
        painter.setFont(font)
        line = painter.fontMetrics().height() * 1.3
        for text in receipt_lines(receipt)[:-1]:
            painter.drawText(QRectF(0, y, w, line), Qt.AlignmentFlag.AlignLeft, text)
            y += line
        purpose_rect = QRectF(0, y, w, line * 4)
        painter.drawText(purpose_rect, Qt.TextFlag.TextWordWrap, receipt.purpose)
        y += line * 4
        urdu = QFont(URDU_FAMILY, 12)
        painter.setFont(urdu)
        uline = painter.fontMetrics().height() * 1.2
        painter.drawText(QRectF(0, y, w, uline), Qt.AlignmentFlag.AlignRight, URDU_TITLE)
        y += uline
        painter.drawText(
            QRectF(0, y, w, uline * 2), Qt.AlignmentFlag.AlignRight | Qt.TextFlag.TextWordWrap, URDU_KEEP
        )
        y += uline * 2
        qr = qr_image(receipt.qr_payload, box_size=10)
        side = min(w * 0.6, page.height() - y)
        painter.drawImage(QRectF((w - side) / 2, y, side, side), qr)
    finally:
        painter.end()
    return None if printer_name else path


def _font_file(name: str) -> Path | None:
    for folder in (*FONT_DIRS, Path("/usr/share/fonts/truetype/dejavu")):
        if (folder / name).is_file():
            return folder / name
    return None


def _arabic(text: str) -> bool:
    return any("\u0600" <= ch <= "\u06ff" or "\u0750" <= ch <= "\u077f" for ch in text)


def receipt_document(receipt: Receipt) -> ReceiptDocument:
    """The receipt as the printer driver prints it: English lines, the Urdu block, the QR code."""
    lines = receipt_lines(receipt)
    latin = [line for line in lines[1:] if not _arabic(line)]
    tracking = f"ٹریکنگ نمبر: \u2066{receipt.tracking_number}\u2069"
    urdu = [URDU_TITLE, tracking, *[line for line in lines[1:] if _arabic(line)], URDU_KEEP]
    return ReceiptDocument(
        title=lines[0],
        lines=tuple(latin),
        qr_payload=receipt.qr_payload,
        rtl_lines=tuple(urdu),
        rtl_font=_font_file("NotoNastaliqUrdu-Regular.ttf"),
        latin_font=_font_file("NotoSans-Regular.ttf") or _font_file("DejaVuSans.ttf"),
    )


_OWNERS: dict[str, PrinterOwner] = {}


def printer_owner(url: str) -> PrinterOwner:
    """The one owner thread of the printer at ``url`` (made on first use)."""
    owner = _OWNERS.get(url)
    if owner is None:
        owner = _OWNERS[url] = PrinterOwner(url, open_printer)
    return owner


def print_receipt(receipt: Receipt, spec: str, fallback_dir: Path) -> str:
    """Print according to the station's ``printer`` setting; returns where it went."""
    if spec.startswith("qt:"):
        print_pdf(receipt, fallback_dir / "receipt.pdf", printer_name=spec[3:])
        return spec
    try:
        if not spec:  # no printer configured: a PDF per receipt (a file holds nothing open)
            pdf = PdfPrinter(fallback_dir / f"receipt-{receipt.tracking_number}.pdf")
            return pdf.print_receipt(receipt_document(receipt))
        return printer_owner(printer_url(spec)).print_receipt(receipt_document(receipt))
    except DeviceError as exc:
        raise StationError(exc.message, code=exc.code, urdu=_URDU_PRINT_ERRORS.get(exc.code)) from exc


_URDU_PRINT_ERRORS = {
    "printer.unplugged": "پرنٹر منقطع یا بند ہے: اسے دوبارہ جوڑیں اور پھر پرنٹ دبائیں۔",
    "device.not_found": "پرنٹر نہیں ملا: اسے جوڑیں، چالو کریں اور پھر پرنٹ دبائیں۔",
    "printer.font_missing": "رسید کے لیے فونٹ موجود نہیں: fonts-noto-core انسٹال کریں۔",
}
