"""Fingerprint quality as an NFIQ 2 score (0-100, higher is better), through NIST's NBIS library.

Used when an enrollment file gives a finger image without a ``quality``: the score is computed from
the image itself, so the record never carries an invented number. NFIQ 2 refuses images it cannot
assess (too small, not a fingerprint); that is reported as :class:`QualityUnavailable`.
"""

from __future__ import annotations

import io
from functools import cache
from typing import Any

import numpy as np
from PIL import Image

PPI = 500.0


class QualityUnavailable(Exception):
    """NFIQ 2 could not score the image (too small, blank, or not a fingerprint)."""


@cache
def _extractor() -> Any:
    import nbis

    settings = nbis.NbisExtractorSettings(
        min_quality=0.0, get_center=False, check_fingerprint=False, compute_nfiq2=True, ppi=PPI
    )
    return nbis.new_nbis_extractor(settings)


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
