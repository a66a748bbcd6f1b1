"""Character files for the simulated module: NIST minutiae (nbis-py) in a 512-byte buffer.

A character file holds a 2-byte big-endian length, an ISO/IEC 19794-2:2005 minutiae record of that
length, then zero padding to 512 bytes, so a client that uploads a template (UpChar) receives a
standard record. Matching is bozorth3 on the stored minutiae: the same print scores in the
hundreds (tens for sparse synthetic prints), different fingers about 0-12.
"""

from __future__ import annotations

import io
import threading
from typing import Any

import numpy as np
import numpy.typing as npt

from drivers.errors import DeviceError
from drivers.r30x.protocol import CHAR_BUFFER_SIZE

MIN_MINUTIAE = 8  # fewer than this: "too few features" (confirmation 0x07)

# bozorth3 score needed for a match, by the module's security level 1..5
MATCH_THRESHOLDS = {1: 20, 2: 30, 3: 40, 4: 50, 5: 60}


class TemplateError(DeviceError):
    """Extraction failed; ``confirmation`` is the R30x confirmation code the module answers with."""

    code = "device.r30x.template"

    def __init__(self, confirmation: int, reason: str) -> None:
        super().__init__(f"The fingerprint has too few usable features ({reason}): place the finger again.")
        self.confirmation = confirmation


_lock = threading.Lock()
_extractor: Any = None


def _nbis_extractor() -> Any:
    global _extractor
    if _extractor is None:
        import nbis

        settings = nbis.NbisExtractorSettings(
            min_quality=0.0, get_center=False, check_fingerprint=False, compute_nfiq2=False, ppi=500.0
        )
        _extractor = nbis.new_nbis_extractor(settings)
    return _extractor


def _png(pixels: npt.NDArray[np.uint8]) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def extract_char_file(pixels: npt.NDArray[np.uint8]) -> bytes:
    """A 512-byte character file from a grey image; TemplateError when unusable."""
    if float(pixels.std()) < 4.0:
        raise TemplateError(0x07, "blank image")
    with _lock:
        extractor = _nbis_extractor()
        try:
            minutiae = extractor.extract_minutiae(_png(pixels))
        except Exception as exc:  # nbis raises its own error tree for unusable images
            raise TemplateError(0x06, f"minutiae extraction failed: {type(exc).__name__}") from exc
        count = len(minutiae.get())
        iso = bytes(minutiae.to_iso_19794_2_2005())
    if count < MIN_MINUTIAE:
        raise TemplateError(0x07, f"{count} minutiae")
    if len(iso) + 2 > CHAR_BUFFER_SIZE:
        raise TemplateError(0x06, f"{count} minutiae do not fit one character file")
    return (len(iso).to_bytes(2, "big") + iso).ljust(CHAR_BUFFER_SIZE, b"\x00")


def iso_record(char_file: bytes) -> bytes | None:
    """The ISO record inside a character file, or None when the buffer holds none."""
    if len(char_file) < 2:
        return None
    length = int.from_bytes(char_file[:2], "big")
    if length == 0 or length + 2 > len(char_file):
        return None
    record = char_file[2 : 2 + length]
    return record if record[:4] == b"FMR\x00" else None


def match_score(a: bytes, b: bytes) -> int:
    """bozorth3 score between two character files (0 when either holds no record)."""
    ra, rb = iso_record(a), iso_record(b)
    if ra is None or rb is None:
        return 0
    with _lock:
        extractor = _nbis_extractor()
        try:
            ma = extractor.load_iso_19794_2_2005(ra)
            mb = extractor.load_iso_19794_2_2005(rb)
        except Exception:
            return 0
        return int(ma.compare(mb))


def minutiae_count(char_file: bytes) -> int:
    record = iso_record(char_file)
    if record is None:
        return 0
    with _lock:
        try:
            return len(_nbis_extractor().load_iso_19794_2_2005(record).get())
        except Exception:
            return 0
