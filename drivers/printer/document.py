"""What a receipt printer prints, and how its parts become pixels.

The driver knows nothing of enrollments: the caller says which lines to print. Latin lines go to an
ESC/POS printer as text; right-to-left lines (Urdu) and the QR code are raster images. The fonts
are files, so the caller can hand over the very files its screen uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import qrcode
from PIL import Image, ImageDraw, ImageFont, features

from drivers.errors import DeviceError

#: Printable width of a 58 mm / 80 mm thermal head at 203 dpi, in dots.
PAPER_DOTS = {"58mm": 384, "80mm": 576}


class PrinterFontMissing(DeviceError):
    code = "printer.font_missing"
    default_message = "A font the receipt needs is missing: install the Debian package fonts-noto-core."


@dataclass(frozen=True)
class ReceiptDocument:
    """One receipt: a bold title, Latin lines, right-to-left lines, a QR code, then a cut."""

    title: str
    lines: tuple[str, ...]
    qr_payload: str
    rtl_lines: tuple[str, ...] = ()
    rtl_font: Path | None = None  # e.g. NotoNastaliqUrdu-Regular.ttf (the screen's Urdu font)
    latin_font: Path | None = None  # for the PDF page (ESC/POS prints Latin text in its own font)
    paper: str = "80mm"
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def width_dots(self) -> int:
        return PAPER_DOTS.get(self.paper, PAPER_DOTS["80mm"])


def _font(path: Path | None, size: int) -> ImageFont.FreeTypeFont:
    if path is None or not path.is_file():
        raise PrinterFontMissing(f"Font file {path} not found: install the Debian package fonts-noto-core.")
    layout = ImageFont.Layout.RAQM if features.check("raqm") else ImageFont.Layout.BASIC
    return ImageFont.truetype(str(path), size, layout_engine=layout)


_ISOLATES = str.maketrans("", "", "\u2066\u2067\u2068\u2069\u200e\u200f")


def _is_rtl(ch: str) -> bool:
    return "\u0590" <= ch <= "\u08ff" or "\ufb1d" <= ch <= "\ufeff"


def _runs(text: str) -> list[tuple[bool, str]]:
    """``text`` cut into right-to-left runs and left-to-right runs (digits, Latin, ids).

    Neutral characters (spaces, punctuation) join the run they are in, a run of them between two
    directions goes with the right-to-left one, as the bidi algorithm does in an RTL paragraph.
    """
    runs: list[tuple[bool, str]] = []
    for ch in text.translate(_ISOLATES):
        strong: bool | None = True if _is_rtl(ch) else (False if ch.isalnum() else None)
        if runs and (strong is None or strong == runs[-1][0]):
            runs[-1] = (runs[-1][0], runs[-1][1] + ch)
        else:
            runs.append((True if strong is None else strong, ch))
    out: list[tuple[bool, str]] = []
    for rtl, chunk in runs:  # an LTR run gives its trailing neutrals back to the RTL text after it
        if not rtl and chunk != chunk.rstrip():
            out.append((False, chunk.rstrip()))
            out.append((True, chunk[len(chunk.rstrip()) :]))
        else:
            out.append((rtl, chunk))
    return [(rtl, chunk) for rtl, chunk in out if chunk]


def render_rtl(
    lines: tuple[str, ...],
    font_path: Path | None,
    width: int,
    size: int = 26,
    latin_path: Path | None = None,
) -> Image.Image:
    """Right-to-left lines, right-aligned and word-wrapped, as a 1-bit image ``width`` dots wide.

    Shaping (joining forms, Nastaliq's stacked glyphs) needs libraqm; without it the letters would
    print unjoined, so it is refused rather than printed wrong. Left-to-right runs inside a line
    (a tracking number in an isolate) are drawn with ``latin_path``, since Nastaliq has no Latin
    letters, and placed as an RTL paragraph places them: runs in logical order from the right.
    """
    if not features.check("raqm"):
        raise DeviceError(
            "Urdu text cannot be shaped here (Pillow has no libraqm): install libraqm0.",
            code="printer.no_shaping",
        )
    font = _font(font_path, size)
    latin = _font(latin_path, int(size * 0.8)) if latin_path is not None else font

    def run_width(rtl: bool, chunk: str) -> float:
        return font.getlength(chunk, direction="rtl") if rtl else latin.getlength(chunk)

    def line_width(text: str) -> float:
        return sum(run_width(rtl, chunk) for rtl, chunk in _runs(text))

    rows: list[str] = []
    for line in lines:
        current = ""
        for word in line.split():
            trial = f"{current} {word}".strip()
            if current and line_width(trial) > width - 8:
                rows.append(current)
                current = word
            else:
                current = trial
        rows.append(current)
    ascent, descent = font.getmetrics()
    row_h = int((ascent + descent) * 1.15)
    image = Image.new("L", (width, max(row_h * len(rows), 1) + 8), 255)
    draw = ImageDraw.Draw(image)
    for i, row in enumerate(rows):
        x = float(width - 4)
        baseline = 4 + i * row_h + ascent
        for rtl, chunk in _runs(row):
            x -= run_width(rtl, chunk)
            if rtl:
                draw.text((x, baseline), chunk, font=font, fill=0, anchor="ls", direction="rtl")
            else:
                draw.text((x, baseline), chunk, font=latin, fill=0, anchor="ls")
    return image.point(lambda v: 0 if v < 160 else 255, mode="1")


def render_qr(payload: str, box_size: int = 6) -> Image.Image:
    """The QR code (error correction M) as a 1-bit image."""
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=box_size, border=2)
    qr.add_data(payload)
    qr.make(fit=True)
    image: Image.Image = qr.make_image(fill_color="black", back_color="white").get_image()
    return image.convert("1")


def render_page(doc: ReceiptDocument, dpi: int = 203) -> Image.Image:
    """The whole receipt as one grey page, as the paper would look (for ``pdf://``)."""
    width = doc.width_dots
    title = _font(doc.latin_font, 30)
    body = _font(doc.latin_font, 22)
    parts: list[Image.Image] = []
    for text, font in [(doc.title, title), *[(line, body) for line in doc.lines]]:
        ascent, descent = font.getmetrics()
        row = Image.new("L", (width, ascent + descent + 6), 255)
        ImageDraw.Draw(row).text((4, 3), text, font=font, fill=0)
        parts.append(row)
    if doc.rtl_lines:
        parts.append(render_rtl(doc.rtl_lines, doc.rtl_font, width, latin_path=doc.latin_font).convert("L"))
    qr = render_qr(doc.qr_payload).convert("L")
    side = min(qr.width, width - 40)
    holder = Image.new("L", (width, side + 20), 255)
    holder.paste(qr.resize((side, side), Image.Resampling.NEAREST), ((width - side) // 2, 10))
    parts.append(holder)
    page = Image.new("L", (width, sum(p.height for p in parts) + 20), 255)
    y = 10
    for part in parts:
        page.paste(part, (0, y))
        y += part.height
    page.info["dpi"] = (dpi, dpi)
    return page
