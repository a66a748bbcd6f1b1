"""The labels of the station's fingerprint quality scores (NFIQ 2), without NumPy or Pillow.

A packet's document names each score's algorithm and version (see :mod:`station.enrollment.quality`,
which computes the scores). This half is kept apart so that the enrollment model, and with it the
kiosk's login screen, does not load NumPy and Pillow at start-up only to write a label.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from station.errors import StationError

PPI = 500
NFIQ2_ALGORITHM = "NFIQ2"
NFIQ2_VERSION = "2.3.0"  # the NFIQ 2 release inside nbis-py 0.1.3 (its libnbis.so is built from NFIQ2-2.3.0)
MIN_PPI, MAX_PPI = 100, 2000


class QualityUnavailable(StationError):
    """NFIQ 2 could not score the image (too small, blank, or not a fingerprint)."""

    code = "enrollment.quality_unavailable"


@dataclass(frozen=True)
class QualityScore:
    """A labelled quality score as the packet stores it."""

    score: int
    algorithm: str = NFIQ2_ALGORITHM
    version: str = NFIQ2_VERSION

    def to_document(self) -> dict[str, Any]:
        return {"algorithm": self.algorithm, "version": self.version, "score": self.score}


def nfiq2_label(score: int) -> QualityScore:
    """The label of an NFIQ 2 score computed by :mod:`station.enrollment.quality`."""
    return QualityScore(score=score)
