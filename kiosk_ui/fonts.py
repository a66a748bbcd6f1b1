"""Fonts: Noto Nastaliq Urdu for Urdu (Debian ``fonts-noto-core``), the platform sans for English.

Nastaliq needs about twice the line height of Latin text; :func:`row_height` sizes rows for it.
:func:`missing_glyphs` lists the characters a font cannot draw (no boxes on screen).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QFont, QFontDatabase, QFontMetrics, QRawFont

URDU_FAMILY = "Noto Nastaliq Urdu"
URDU_FALLBACK = "Noto Naskh Arabic"
FONT_DIRS = (Path("/usr/share/fonts/truetype/noto"), Path(__file__).parent / "fonts")
URDU_FILES = ("NotoNastaliqUrdu-Regular.ttf", "NotoNastaliqUrdu-Bold.ttf", "NotoNaskhArabic-Regular.ttf")
BASE_POINT_SIZE = 15

_loaded: list[str] = []


def load_fonts() -> list[str]:
    """Register the Urdu fonts with Qt (once); returns the families found."""
    if _loaded:
        return list(_loaded)
    for name in URDU_FILES:
        for folder in FONT_DIRS:
            path = folder / name
            if path.is_file():
                font_id = QFontDatabase.addApplicationFont(str(path))
                if font_id >= 0:
                    _loaded.extend(QFontDatabase.applicationFontFamilies(font_id))
                break
    if URDU_FAMILY not in _loaded and URDU_FAMILY not in QFontDatabase.families():
        raise RuntimeError(
            "The Urdu font Noto Nastaliq Urdu is missing: install the Debian package fonts-noto-core."
        )
    return list(_loaded)


def urdu_font(point_size: int = BASE_POINT_SIZE) -> QFont:
    font = QFont(URDU_FAMILY)
    font.setFamilies([URDU_FAMILY, URDU_FALLBACK])
    font.setPointSize(point_size)
    return font


def latin_font(point_size: int = BASE_POINT_SIZE) -> QFont:
    font = QFont("DejaVu Sans")
    font.setFamilies(["DejaVu Sans", "Noto Sans", URDU_FAMILY])
    font.setPointSize(point_size)
    return font


def row_height(font: QFont) -> int:
    """Height for one row of text in ``font`` with room for Nastaliq's tall ascenders and descenders."""
    return QFontMetrics(font).height() + 16


def missing_glyphs(text: str, *fonts: QFont) -> list[str]:
    """Characters of ``text`` that none of ``fonts`` has a glyph for (formatting characters excepted).

    Each font is checked in every family of its fallback list (``QFont.families``), as Qt draws it.
    """
    raws: list[QRawFont] = []
    for font in fonts:
        for family in font.families() or [font.family()]:
            f = QFont(font)
            f.setFamilies([family])
            raws.append(QRawFont.fromFont(f))
    out = []
    for ch in set(text):
        if ch in "\u2066\u2067\u2068\u2069\u200c\u200d\u200e\u200f\n\t":
            continue
        # supportsCharacter(str) mishandles characters outside Latin-1 in PySide: pass the code point.
        if not any(raw.supportsCharacter(ord(ch)) for raw in raws):
            out.append(ch)
    return sorted(out)
