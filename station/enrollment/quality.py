"""The station's one fingerprint quality scale: NFIQ 2 (0-100, higher is better), through NIST's NBIS.

Every score the station stores or compares is computed here, by the station, from the image itself:
the kiosk's captures (``kiosk_ui/devices.py`` calls :func:`normalise_print`) and enrollment files
(``files.py``) alike; a number written in an enrollment file is never trusted. The drivers' own
heuristic (``drivers.quality.finger``) is only the instant feedback shown while the finger is on the
glass, under its own name, and never reaches a packet.

* **Resolution**: NFIQ 2, WSQ and the minutiae templates are defined for 500 ppi. A print at another
  resolution (the NB-1010's 385 ppi) is resampled to 500 ppi first, as ISO/IEC 19794-4 asks of a
  record stored at the standard resolution: the image is scaled by ``500 / ppi`` on both axes with a
  band-limited interpolation (bicubic when enlarging; pixel-area averaging when reducing, which
  low-pass filters before decimating so no aliasing is added), and then everything downstream works on
  the 500 ppi image.
* **Labels**: a stored score names its algorithm and version (the CBEFF/ISO/IEC 29794-1 idea of a
  quality block naming its quality algorithm): :class:`QualityScore` is written into the packet as
  ``{"algorithm": "NFIQ2", "version": "2.3.0", "score": N}``. The version is the NFIQ 2 release that
  ``nbis-py`` is built with (``tests/test_quality_nfiq2.py`` checks the library still carries it).

NFIQ 2 refuses images it cannot assess (too small, not a fingerprint): :class:`QualityUnavailable`.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
from PIL import Image

from station.enrollment.qualitylabel import (
    MAX_PPI,
    MIN_PPI,
    NFIQ2_ALGORITHM,
    NFIQ2_VERSION,
    PPI,
    QualityScore,
    QualityUnavailable,
    nfiq2_label,
)

__all__ = [
    "MAX_PPI",
    "MIN_PPI",
    "NFIQ2_ALGORITHM",
    "NFIQ2_VERSION",
    "PPI",
    "NormalisedPrint",
    "QualityScore",
    "QualityUnavailable",
    "nfiq2_label",
    "nfiq2_score",
    "normalise_print",
    "resample_to_500",
]


@cache
def _extractor() -> Any:
    import nbis

    settings = nbis.NbisExtractorSettings(
        min_quality=0.0, get_center=False, check_fingerprint=False, compute_nfiq2=True, ppi=float(PPI)
    )
    return nbis.new_nbis_extractor(settings)


def resample_to_500(pixels: np.ndarray, ppi: int) -> np.ndarray:
    """``pixels`` scanned at ``ppi`` as a 500 ppi image (the same array when it already is)."""
    if pixels.ndim != 2 or pixels.dtype != np.uint8:
        raise ValueError("a fingerprint image must be an 8-bit grey (2-D uint8) array")
    if not MIN_PPI <= ppi <= MAX_PPI:
        raise ValueError(f"{ppi} ppi is not a fingerprint resolution ({MIN_PPI}-{MAX_PPI})")
    if ppi == PPI:
        return pixels
    import cv2

    factor = PPI / ppi
    h, w = pixels.shape
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    method = cv2.INTER_CUBIC if factor > 1 else cv2.INTER_AREA
    out: np.ndarray = cv2.resize(np.ascontiguousarray(pixels), size, interpolation=method)
    return out


def nfiq2_score(pixels: np.ndarray) -> int:
    """The NFIQ 2 score (0-100) of an 8-bit grey fingerprint image at 500 ppi."""
    if pixels.ndim != 2 or pixels.dtype != np.uint8:
        raise QualityUnavailable("expected an 8-bit grey image")
    buf = io.BytesIO()
    Image.fromarray(pixels, "L").save(buf, "PNG")
    import nbis

    try:
        score = int(_extractor().extract_minutiae(buf.getvalue()).quality().score)
    except (nbis.NbisError, nbis.InternalError) as exc:
        raise QualityUnavailable(f"NFIQ 2 cannot assess this image ({type(exc).__name__})") from exc
    if not 0 <= score <= 100:
        raise QualityUnavailable(f"NFIQ 2 returned {score}, outside 0-100")
    return score


@dataclass(frozen=True)
class NormalisedPrint:
    """A capture at 500 ppi with its WSQ and NFIQ 2 score (``quality.score`` 0 when NFIQ 2 refused it)."""

    pixels: np.ndarray
    wsq: bytes
    quality: QualityScore
    assessable: bool


def normalise_print(pixels: np.ndarray, ppi: int) -> NormalisedPrint:
    """Resample to 500 ppi, encode WSQ at 500 ppi and score with NFIQ 2: what a capture becomes."""
    from drivers.formats import wsq

    at500 = resample_to_500(pixels, ppi)
    try:
        score, assessable = nfiq2_score(at500), True
    except QualityUnavailable:
        score, assessable = 0, False
    return NormalisedPrint(at500, wsq.encode(at500, ppi=PPI), nfiq2_label(score), assessable)
