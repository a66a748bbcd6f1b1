"""Host-side 1:1 fingerprint verification: ISO/IEC 19794-2:2005 templates and bozorth3 via ``nbis``.

``template_from_image`` finds NIST minutiae (mindtct, through ``nbis-py``) and writes them as a
standard ISO/IEC 19794-2:2005 finger minutiae record; ``verify`` parses two such records back to
minutiae and scores them with bozorth3.

Record layout written and read here (all integers big-endian)::

    header (24 bytes)  'FMR\\0' ' 20\\0' total-length:u32 equipment:u16 width:u16 height:u16
                       x-res:u16 y-res:u16 (pixels per cm) views:u8 reserved:u8
    view (4 bytes)     finger-position:u8 view/impression:u8 finger-quality:u8 minutiae-count:u8
    minutia (6 bytes)  type:2 bits + x:14 bits, reserved:2 bits + y:14 bits, angle:u8 (1.40625 degree
                       units), quality:u8 (1-100)
    trailer (2 bytes)  extended-data length:u16 (0)

``nbis-py``'s own ``to_iso_19794_2_2005`` writes a shorter variant (26 + 6n bytes: no view
quality/position fields, no trailer); ``parse_template`` reads that variant too, so templates the
kiosk stored before this module existed still verify.

Threshold (measured with ``tests/test_match.py``, which re-measures both sides on every run), on
the real prints in ``tests/fixtures/fingerprints``, bozorth3 scores:

- genuine, same image: 428 (``elan``), 462 (``egis0570``);
- genuine, copies rotated by up to 8 degrees and shifted by up to 10 px: ``egis0570`` 145-193;
  ``elan`` (a noisy swipe capture, quality about 60) 8-63, and 8-17 for three of six copies;
- impostor, different prints and mirror images of a print (the hardest impostor: the same ridge
  structure, reversed): 0-16, different fingers 0-12.

``MATCH_THRESHOLD = 20`` is above every impostor score measured (16) and far below a good print's
genuine scores; on a poor print like ``elan`` some slightly moved retakes fall under it, so such a
print is rejected as a false non-match rather than risk a false match (the quality check names such a
print's faults so the operator retakes it). Prints with fewer than about 15 minutiae (``aes3500``,
``upektc_img``) score 0 even against themselves: bozorth3 cannot verify them at all, and
``drivers.quality.finger`` gives them the "few minutiae" reason. NIST's rule of
thumb for bozorth3 is "about 40" on rolled ten-print cards; on these small single-finger captures it
would also reject ``elan``'s own rotated copies and gains nothing against the measured impostors.
"""

from __future__ import annotations

import io
import struct
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from drivers.base import GreyImage

MATCH_THRESHOLD = 20
MIN_SIDE = 32  # mindtct crashes the process (not an exception) on images under about 11 px a side

_MAGIC = b"FMR\x00 20\x00"
_HEADER = struct.Struct(">8sIHHHHHBB")  # 24 bytes
_VIEW = struct.Struct(">BBBB")
_MINUTIA = struct.Struct(">HHBB")
_KIND_CODE = {"RIDGE_ENDING": 1, "BIFURCATION": 2}
_ANGLE_UNIT = 360.0 / 256.0


@dataclass(frozen=True)
class Minutia:
    """One minutia as stored in a template: pixels, degrees, kind (0 other, 1 ending, 2 bifurcation)."""

    x: int
    y: int
    angle: float
    kind: int
    quality: int  # 1-100, 0 = not reported


@dataclass(frozen=True)
class Template:
    """A parsed finger minutiae record."""

    width: int
    height: int
    ppi: int
    minutiae: tuple[Minutia, ...]


@dataclass(frozen=True)
class MatchResult:
    """Outcome of a 1:1 verification: ``matched`` when the bozorth3 ``score`` reaches the threshold."""

    matched: bool
    score: int


_extractors: dict[int, Any] = {}
_extractors_lock = threading.Lock()


def _extractor(ppi: int) -> Any:
    """A cached nbis extractor for one resolution (creating one costs about 5 ms)."""
    import nbis

    with _extractors_lock:
        ex = _extractors.get(ppi)
        if ex is None:
            settings = nbis.NbisExtractorSettings(
                min_quality=0.0,
                get_center=False,
                check_fingerprint=False,
                compute_nfiq2=False,
                ppi=float(ppi),
            )
            ex = _extractors[ppi] = nbis.new_nbis_extractor(settings)
        return ex


def _check_image(pixels: GreyImage) -> None:
    if not isinstance(pixels, np.ndarray) or pixels.ndim != 2 or pixels.dtype != np.uint8:
        raise ValueError("a fingerprint image must be an 8-bit grey (2-D uint8) array")


def extract_minutiae(pixels: GreyImage, *, ppi: int = 500) -> Any:
    """NIST (mindtct) minutiae of a print as an ``nbis.Minutiae``; ValueError if the image is too small."""
    _check_image(pixels)
    h, w = pixels.shape
    if min(h, w) < MIN_SIDE:
        raise ValueError(f"fingerprint image {w}x{h} is too small: at least {MIN_SIDE} pixels a side needed")
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buf, format="PNG", compress_level=0)
    return _extractor(ppi).extract_minutiae(buf.getvalue())


def template_from_image(pixels: GreyImage, *, ppi: int = 500) -> bytes:
    """An ISO/IEC 19794-2:2005 minutiae record of a grey print."""
    found = extract_minutiae(pixels, ppi=ppi)
    h, w = pixels.shape
    minutiae = []
    for m in found.get():
        kind = _KIND_CODE.get(m.kind().name, 0)
        quality = max(1, min(100, round(float(m.reliability()) * 100)))
        angle = round(float(m.angle()) / _ANGLE_UNIT) % 256
        minutiae.append(Minutia(int(m.x()), int(m.y()), angle * _ANGLE_UNIT, kind, quality))
    return build_template(Template(width=w, height=h, ppi=ppi, minutiae=tuple(minutiae)))


def build_template(template: Template) -> bytes:
    """Serialise a ``Template`` as a standard ISO/IEC 19794-2:2005 record (one finger view)."""
    if len(template.minutiae) > 255:
        template = Template(
            template.width,
            template.height,
            template.ppi,
            tuple(sorted(template.minutiae, key=lambda m: -m.quality)[:255]),
        )
    n = len(template.minutiae)
    total = _HEADER.size + _VIEW.size + n * _MINUTIA.size + 2
    res = round(template.ppi / 2.54)
    out = bytearray(_HEADER.pack(_MAGIC, total, 0, template.width, template.height, res, res, 1, 0))
    mean_q = round(sum(m.quality for m in template.minutiae) / n) if n else 0
    out += _VIEW.pack(0, 0, mean_q, n)
    for m in template.minutiae:
        angle = round(m.angle / _ANGLE_UNIT) % 256
        out += _MINUTIA.pack((m.kind & 3) << 14 | (m.x & 0x3FFF), m.y & 0x3FFF, angle, m.quality)
    out += b"\x00\x00"
    return bytes(out)


def parse_template(data: bytes) -> Template:
    """Parse an ISO/IEC 19794-2:2005 record (or nbis-py's short variant); ValueError when malformed."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ValueError("a fingerprint template must be bytes")
    data = bytes(data)
    if len(data) < _HEADER.size + 2:
        raise ValueError(f"fingerprint template is {len(data)} bytes: too short to be an ISO 19794-2 record")
    magic, total, _equip, width, height, xres, _yres, views, _reserved = _HEADER.unpack_from(data)
    if magic != _MAGIC:
        raise ValueError("not an ISO/IEC 19794-2:2005 fingerprint template (header is not 'FMR 20')")
    if total != len(data):
        raise ValueError(f"fingerprint template says it is {total} bytes but has {len(data)}: truncated?")
    ppi = round(xres * 2.54) if xres else 500
    if (len(data) - 26) % 6 == 0 and data[25] * 6 + 26 == len(data) and views == 0:
        count, offset = data[25], 26  # nbis-py's short variant
    else:
        if views != 1:
            raise ValueError(f"fingerprint template holds {views} finger views; exactly one is supported")
        if len(data) < _HEADER.size + _VIEW.size + 2:
            raise ValueError(f"fingerprint template is {len(data)} bytes: too short for its finger view")
        count = data[_HEADER.size + 3]
        offset = _HEADER.size + _VIEW.size
        if offset + count * _MINUTIA.size + 2 > len(data):
            raise ValueError(f"fingerprint template claims {count} minutiae but is too short for them")
        ext_len = struct.unpack_from(">H", data, offset + count * _MINUTIA.size)[0]
        if offset + count * _MINUTIA.size + 2 + ext_len != len(data):
            raise ValueError("fingerprint template length does not match its minutiae and extended data")
    minutiae = []
    for i in range(count):
        xw, yw, angle, quality = _MINUTIA.unpack_from(data, offset + i * _MINUTIA.size)
        x, y = xw & 0x3FFF, yw & 0x3FFF
        if (width and x >= width) or (height and y >= height):
            raise ValueError(
                f"fingerprint template minutia {i} at ({x}, {y}) is outside the {width}x{height} image"
            )
        minutiae.append(Minutia(x, y, angle * _ANGLE_UNIT, xw >> 14, quality))
    return Template(width=width, height=height, ppi=ppi, minutiae=tuple(minutiae))


def _nbis_bytes(template: Template) -> bytes:
    """The record in the short layout ``nbis-py`` loads (its own writer's format)."""
    n = min(len(template.minutiae), 255)
    out = bytearray(_HEADER.pack(_MAGIC, 26 + 6 * n, 0, template.width, template.height, 0, 0, 0, 0))
    out += bytes([0, n])
    for m in template.minutiae[:n]:
        angle = round(m.angle / _ANGLE_UNIT) % 256
        quality = min(63, round(m.quality * 63 / 100))
        out += _MINUTIA.pack((m.kind & 3) << 14 | m.x, m.y, angle, quality)
    return bytes(out)


def _load(template: Template) -> Any:
    import nbis

    try:
        return _extractor(template.ppi or 500).load_iso_19794_2_2005(_nbis_bytes(template))
    except nbis.NbisError as exc:
        raise ValueError(f"fingerprint template could not be loaded: {exc}") from exc


def score(enrolled: bytes, live: bytes) -> int:
    """The bozorth3 similarity of two templates (0 = unrelated; the same print scores in the hundreds)."""
    a, b = parse_template(enrolled), parse_template(live)
    if not a.minutiae or not b.minutiae:
        return 0
    return int(_load(a).compare(_load(b)))


def verify(enrolled: bytes, live: bytes, *, threshold: int = MATCH_THRESHOLD) -> MatchResult:
    """1:1 verification of a live template against an enrolled one (both ISO/IEC 19794-2:2005)."""
    s = score(enrolled, live)
    return MatchResult(matched=s >= threshold, score=s)
