"""The receipt printer driver: the exact ESC/POS bytes (title, lines, the Urdu raster, the QR code,
the cut), printers opened by URL, one owner thread, an unplugged printer told plainly."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from drivers.errors import UnsupportedURL
from drivers.printer.document import ReceiptDocument, render_qr, render_rtl
from drivers.printer.opener import open_printer, printer_url, simulator
from drivers.printer.owner import PrinterOwner
from drivers.printer.printers import (
    DummyPrinter,
    EscposFilePrinter,
    PdfPrinter,
    PrinterUnplugged,
    escpos_job,
)

NOTO = Path("/usr/share/fonts/truetype/noto")
URDU_FONT = NOTO / "NotoNastaliqUrdu-Regular.ttf"
LATIN_FONT = NOTO / "NotoSans-Regular.ttf"
pytestmark = pytest.mark.skipif(not URDU_FONT.is_file(), reason="fonts-noto-core not installed")

ESC_CUT = b"\x1dV"
RASTER = b"\x1dv0"


def document(payload: str = "0197a5b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b.sig") -> ReceiptDocument:
    return ReceiptDocument(
        title="ENROLLMENT RECEIPT",
        lines=("Tracking number: ABCD-EFGH-IJKL", "Station: uc-lhr-0421-01"),
        qr_payload=payload,
        rtl_lines=("اندراج کی رسید", "ٹریکنگ نمبر: \u2066ABCD-EFGH-IJKL\u2069"),
        rtl_font=URDU_FONT,
        latin_font=LATIN_FONT,
    )


def raster_blocks(data: bytes) -> list[Image.Image]:
    """Every ``GS v 0`` raster image in an ESC/POS stream, decoded back to pixels."""
    images = []
    at = data.find(RASTER)
    while at >= 0:
        width_bytes = data[at + 4] | data[at + 5] << 8
        height = data[at + 6] | data[at + 7] << 8
        body = data[at + 8 : at + 8 + width_bytes * height]
        bits = np.unpackbits(np.frombuffer(body, np.uint8)).reshape(height, width_bytes * 8)
        images.append(Image.fromarray(np.where(bits == 1, 0, 255).astype(np.uint8)))
        at = data.find(RASTER, at + 8 + width_bytes * height)
    return images


def test_escpos_job_byte_by_byte() -> None:
    doc = document()
    data = escpos_job(doc)
    assert data.index(b"ENROLLMENT RECEIPT\n") < data.index(b"Tracking number: ABCD-EFGH-IJKL\n")
    assert data.index(b"Station: uc-lhr-0421-01\n") < data.index(RASTER)
    urdu, qr = raster_blocks(data)
    # the Urdu block is exactly the raster the driver renders with the screen's Nastaliq font
    expected = render_rtl(doc.rtl_lines, URDU_FONT, doc.width_dots, latin_path=LATIN_FONT).convert("L")
    assert urdu.size == expected.size
    assert np.array_equal(np.asarray(urdu) < 128, np.asarray(expected) < 128)
    assert (np.asarray(urdu) < 128).sum() > 1000, "the Urdu lines carry ink"
    # the QR code reads back as the payload, from the bytes the printer receives
    grey = cv2.resize(np.asarray(qr), None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
    text, _, _ = cv2.QRCodeDetector().detectAndDecode(grey)
    assert text == doc.qr_payload
    # and the paper is cut at the end, after everything else
    assert data.rstrip(b"\x00\n").endswith(ESC_CUT + b"\x00") or data.rfind(ESC_CUT) > data.rfind(RASTER)
    assert b"ABCD" in data and "اندراج".encode() not in data, "Urdu never goes out as text"


def test_urdu_with_an_isolated_number_keeps_latin_glyphs() -> None:
    """Nastaliq has no Latin letters: the tracking number is drawn with the Latin font."""
    urdu_only = render_rtl(("ٹریکنگ نمبر:",), URDU_FONT, 576, latin_path=LATIN_FONT)
    with_number = render_rtl(("ٹریکنگ نمبر: \u2066ABCD\u2069",), URDU_FONT, 576, latin_path=LATIN_FONT)
    ink = (np.asarray(with_number.convert("L")) < 128).sum() - (
        np.asarray(urdu_only.convert("L")) < 128
    ).sum()
    assert ink > 150
    # the label stays at the right edge; the number sits to its left
    cols = np.where((np.asarray(with_number.convert("L")) < 128).any(axis=0))[0]
    label_cols = np.where((np.asarray(urdu_only.convert("L")) < 128).any(axis=0))[0]
    assert cols.max() == label_cols.max() and cols.min() < label_cols.min()


def test_simulator_through_the_owner_thread_and_unplug() -> None:
    owner = PrinterOwner("sim://printer?name=owner-test", open_printer)
    try:
        assert owner.print_receipt(document()) == "sim://printer"
        sim = simulator("owner-test")
        assert len(sim.jobs) == 1 and sim.jobs[0] == escpos_job(document())
        sim.unplug()
        with pytest.raises(PrinterUnplugged) as err:
            owner.print_receipt(document())
        assert "reconnect" in err.value.message and err.value.code == "printer.unplugged"
        sim.plug()
        owner.print_receipt(document())
        assert len(sim.jobs) == 2, "nothing half-printed, the retry printed once"
        seen: list[str] = []
        owner.submit(document()).add_done_callback(lambda _f: seen.append(threading.current_thread().name))
        owner.print_receipt(document())
        assert all(name.startswith("printer") for name in seen)
    finally:
        owner.close()


def test_file_printer_writes_the_job_and_tells_a_missing_device(tmp_path: Path) -> None:
    dev = tmp_path / "lp0"
    dev.write_bytes(b"")
    printer = open_printer(f"escpos+file://{dev}")
    assert isinstance(printer, EscposFilePrinter)
    printer.print_receipt(document())
    assert dev.read_bytes() == escpos_job(document())
    os.unlink(dev)
    with pytest.raises(PrinterUnplugged):
        printer.print_receipt(document())


def test_pdf_printer_and_the_old_setting_spellings(tmp_path: Path) -> None:
    out = tmp_path / "r" / "receipt.pdf"
    printer = open_printer(f"pdf:{out}")  # the spelling station.toml used before printer URLs
    assert isinstance(printer, PdfPrinter)
    assert printer.print_receipt(document()) == str(out)
    assert out.read_bytes().startswith(b"%PDF")
    assert printer_url("escpos-usb:0416:5011") == "escpos+usb://0416:5011"
    assert printer_url("escpos-file:/dev/usb/lp0") == "escpos+file:///dev/usb/lp0"
    assert isinstance(open_printer("sim://printer"), DummyPrinter)
    with pytest.raises(UnsupportedURL, match="escpos\\+usb://VID:PID"):
        open_printer("lpr://office")
    with pytest.raises(UnsupportedURL):
        open_printer("escpos+usb://zz:01")


def test_qr_is_the_same_on_screen_and_paper() -> None:
    from kiosk_ui.printing import qr_png

    png = qr_png("payload-1")
    screen = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert np.array_equal(screen < 128, np.asarray(render_qr("payload-1").convert("L")) < 128)
