"""Fingerprint image quality 0-100, with the reasons behind a low score.

Six measures, each mapped to 0..1 and combined as a weighted geometric mean, so any one bad measure
pulls the score down and a blank image (no foreground) scores 0:

- foreground area: 16x16 blocks (at 500 ppi) whose smoothed grey level varies (ridges present) and
  whose gradients agree on a direction; counted in 500 ppi pixels, so a partial print or a finger
  touching a corner of the glass scores low whatever the image size;
- ridge contrast: median standard deviation of the smoothed grey level over foreground blocks;
- orientation certainty: block gradient coherence ``sqrt((gxx-gyy)^2 + 4 gxy^2) / (gxx+gyy)``, mean
  over the foreground (noise, smudges and scars lower it);
- ridge sharpness: RMS gradient over grey-level deviation in the foreground (blur lowers it);
- signal to noise: grey-level deviation over what a one-pixel blur removes (sensor or dirt noise);
- NIST minutiae (mindtct through ``nbis-py``): how many were found and their mean reliability.

The constants were set on the real prints in ``tests/fixtures/fingerprints`` so that each scores above
its blurred, noisy, low-contrast, partial and blank versions (``tests/test_quality_finger.py``).
Scoring a 256x288 print takes about 50 ms of CPU on the target's 2 cores, most of it in mindtct.
"Few minutiae" is reported under 16 minutiae whatever the score: bozorth3 (``drivers.match``) cannot
verify a print with fewer (measured on the fixtures).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from drivers.base import GreyImage

# Reasons, in the order they are reported (worst first is decided by the measures' values).
NO_FINGER = "no finger on the sensor: place a finger flat on the glass"
SMALL_AREA = "small fingerprint area: press the whole finger flat"
LOW_CONTRAST = "low ridge contrast: clean the glass / finger too dry"
UNCLEAR_FLOW = "unclear ridge flow: finger moved, smudged glass or worn ridges"
BLURRED = "blurred ridges: hold the finger still and press evenly"
NOISY = "noisy image: clean the glass and the finger, then retry"
FEW_MINUTIAE = "few minutiae: press the centre of the finger flat"
UNRELIABLE_MINUTIAE = "unreliable minutiae: noisy or smudged image, clean the glass and retry"
TOO_SMALL_IMAGE = "image too small to hold a fingerprint"

MATCHABLE_MINUTIAE = 16  # bozorth3 scores 0 even against the same print below this
LOW_SCORE = 50  # below this a print is reported with at least one reason

_WEIGHTS = {
    "area": 0.2,
    "contrast": 0.15,
    "orientation": 0.2,
    "sharpness": 0.1,
    "noise": 0.15,
    "minutiae": 0.2,
}
_FLAG_BELOW = 0.6  # a factor under this names its reason
_FLAG_CONTRAST_BELOW = 0.33  # ridge contrast under ~10 grey levels (faint prints, low-contrast glass)

_AREA_SCALE = 15_000.0  # 500 ppi pixels; ~60 mm^2 of ridges gives 0.63
_CONTRAST_SCALE = 25.0  # grey levels
_FG_STD = 6.0
_FG_COHERENCE = 0.3
_MIN_SIDE = 32


@dataclass(frozen=True)
class FingerQuality:
    """A print's quality: ``score`` 0-100, short English ``reasons`` for a low score, raw ``measures``."""

    score: int
    reasons: tuple[str, ...] = ()
    measures: dict[str, float] = field(default_factory=dict)


def _blocks(a: npt.NDArray[Any], b: int) -> npt.NDArray[Any]:
    h, w = (a.shape[0] // b) * b, (a.shape[1] // b) * b
    return a[:h, :w].reshape(h // b, b, w // b, b).swapaxes(1, 2).reshape(h // b, w // b, b * b)


def _image_measures(pixels: GreyImage, ppi: int) -> tuple[dict[str, float], bool]:
    """Block measures of the grey image, and whether any block holds ridges (foreground)."""
    scale = ppi / 500.0
    b = max(8, round(16 * scale))
    img = pixels.astype(np.float32)
    g = cv2.GaussianBlur(img, (0, 0), max(0.5, scale))
    residual = _blocks(img - g, b).std(axis=2)  # pixel noise: what a 1-pixel blur removes
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3)
    std = _blocks(g, b).std(axis=2)
    gxx = _blocks(gx * gx, b).sum(axis=2)
    gyy = _blocks(gy * gy, b).sum(axis=2)
    gxy = _blocks(gx * gy, b).sum(axis=2)
    energy = gxx + gyy
    coherence = np.sqrt((gxx - gyy) ** 2 + 4 * gxy**2) / (energy + 1e-6)
    fg = (std > _FG_STD) & (coherence > _FG_COHERENCE)
    area = float(fg.sum()) * b * b / (scale * scale)
    if not fg.any():
        empty = ("area_px", "area_fraction", "contrast", "orientation", "sharpness", "signal_to_noise")
        return dict.fromkeys(empty, 0.0), False
    sharp = np.sqrt(energy / (b * b)) / (std + 1e-6) / scale
    measures = {
        "area_px": area,
        "area_fraction": float(fg.mean()),
        "contrast": float(np.median(std[fg])),
        "orientation": float(coherence[fg].mean()),
        "sharpness": float(np.median(sharp[fg])),
        "signal_to_noise": float(np.median(std[fg] / (residual[fg] + 1e-3))),
    }
    return measures, True


def _minutiae_measures(pixels: GreyImage, ppi: int) -> dict[str, float]:
    from drivers.match import extract_minutiae

    found = extract_minutiae(pixels, ppi=ppi).get()
    rel = [float(m.reliability()) for m in found]
    return {"minutiae": float(len(rel)), "minutiae_quality": float(np.mean(rel)) if rel else 0.0}


def _factors(m: dict[str, float]) -> dict[str, float]:
    count = 1.0 - math.exp(-m["minutiae"] / 12.0)
    reliability = min(1.0, m["minutiae_quality"] / 0.35)
    return {
        "area": 1.0 - math.exp(-m["area_px"] / _AREA_SCALE),
        "contrast": 1.0 - math.exp(-m["contrast"] / _CONTRAST_SCALE),
        "orientation": min(1.0, max(0.0, (m["orientation"] - 0.1) / 0.8)),
        "sharpness": min(1.0, max(0.0, (m["sharpness"] - 1.5) / 2.5)),
        "noise": 1.0 - math.exp(-m["signal_to_noise"] / 2.5),
        "minutiae": count * reliability,
        "_count": count,
        "_minutiae": m["minutiae"],
        "_reliability": reliability,
    }


def finger_quality(pixels: GreyImage, *, ppi: int = 500) -> FingerQuality:
    """Score an 8-bit grey fingerprint image 0-100 (higher is better) and say what lowers it."""
    if not isinstance(pixels, np.ndarray) or pixels.ndim != 2:
        raise ValueError("a fingerprint image must be a 2-D grey array")
    if pixels.dtype != np.uint8:
        raise ValueError("a fingerprint image must be 8-bit grey (uint8)")
    if ppi < 100 or ppi > 2000:
        raise ValueError(f"resolution {ppi} ppi is outside 100..2000")
    if min(pixels.shape) < max(_MIN_SIDE, _MIN_SIDE * ppi / 500):
        return FingerQuality(0, (TOO_SMALL_IMAGE,), {"minutiae": 0.0, "area_px": 0.0})
    pixels = np.ascontiguousarray(pixels)
    measures, has_ridges = _image_measures(pixels, ppi)
    if not has_ridges:
        measures |= {"minutiae": 0.0, "minutiae_quality": 0.0}
        return FingerQuality(0, (NO_FINGER,), measures)
    measures |= _minutiae_measures(pixels, ppi)
    f = _factors(measures)
    log_score = sum(w * math.log(max(f[k], 1e-9)) for k, w in _WEIGHTS.items())
    score = max(0, min(100, round(100 * math.exp(log_score))))
    return FingerQuality(score, _reasons(f, score), measures)


def _reasons(f: dict[str, float], score: int) -> tuple[str, ...]:
    said = {
        "area": SMALL_AREA,
        "contrast": LOW_CONTRAST,
        "orientation": UNCLEAR_FLOW,
        "sharpness": BLURRED,
        "noise": NOISY,
    }
    flag = {k: _FLAG_CONTRAST_BELOW if k == "contrast" else _FLAG_BELOW for k in said}
    weak = [(f[k], text) for k, text in said.items() if f[k] < flag[k]]
    if f["_count"] < _FLAG_BELOW or f["_minutiae"] < MATCHABLE_MINUTIAE:
        weak.append((f["_count"], FEW_MINUTIAE))
    elif f["_reliability"] < _FLAG_BELOW:
        weak.append((f["_reliability"], UNRELIABLE_MINUTIAE))
    if not weak and score < LOW_SCORE:
        said["minutiae"] = FEW_MINUTIAE
        name = min(said, key=lambda k: f[k])
        weak.append((f[name], said[name]))
    return tuple(text for _, text in sorted(weak))
