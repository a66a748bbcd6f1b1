"""Augmented copies of a fingerprint for measuring the station's thresholds on the fixture prints.

Each variant is what a real retake or a poor capture does to a print: rotated on the glass, shifted,
sensor noise, only part of the finger touching, blurred, faint. Used by ``tests/test_duplicates.py``
(bozorth3 false-reject rates of the duplicate checks) and ``tests/test_quality_nfiq2.py`` (the NFIQ 2
threshold), and by ``bench/thresholds.py`` which prints the full tables written in
``docs/biometric-thresholds.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

PRINTS = Path(__file__).parent / "fixtures" / "fingerprints"
# bozorth3 finds enough minutiae to verify these two against themselves (aes3500 and upektc_img
# score 0 even against an identical copy: see drivers/match.py).
MATCHABLE = ("egis0570", "elan")
ALL_PRINTS = ("egis0570", "elan", "aes3500", "upektc_img")

Variant = Callable[[np.ndarray], np.ndarray]


def load(name: str) -> np.ndarray:
    img = cv2.imread(str(PRINTS / f"{name}.png"), cv2.IMREAD_GRAYSCALE)
    assert img is not None, name
    return np.ascontiguousarray(img)


def rotate(degrees: float) -> Variant:
    def f(img: np.ndarray) -> np.ndarray:
        h, w = img.shape
        m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
        out: np.ndarray = cv2.warpAffine(img, m, (w, h), borderValue=255)
        return out

    return f


def shift(dx: int, dy: int) -> Variant:
    def f(img: np.ndarray) -> np.ndarray:
        h, w = img.shape
        m = np.float32([[1, 0, dx], [0, 1, dy]])
        out: np.ndarray = cv2.warpAffine(img, m, (w, h), borderValue=255)
        return out

    return f


def noise(sigma: float, seed: int = 1) -> Variant:
    def f(img: np.ndarray) -> np.ndarray:
        rng = np.random.default_rng(seed)
        return np.clip(img.astype(np.float32) + rng.normal(0, sigma, img.shape), 0, 255).astype(np.uint8)

    return f


def partial(keep: float, side: str = "bottom") -> Variant:
    """Only ``keep`` of the finger touched the glass: the rest is blank (white)."""

    def f(img: np.ndarray) -> np.ndarray:
        out = img.copy()
        h, w = img.shape
        if side == "bottom":
            out[round(h * keep) :, :] = 255
        elif side == "top":
            out[: round(h * (1 - keep)), :] = 255
        else:
            out[:, round(w * keep) :] = 255
        return out

    return f


def blur(sigma: float) -> Variant:
    def f(img: np.ndarray) -> np.ndarray:
        out: np.ndarray = cv2.GaussianBlur(img, (0, 0), sigma)
        return out

    return f


def faint(factor: float) -> Variant:
    def f(img: np.ndarray) -> np.ndarray:
        g = img.astype(np.float32)
        return np.clip(255 - (255 - g) * factor, 0, 255).astype(np.uint8)

    return f


def mirror(img: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(img[:, ::-1])


# What a retake of the same finger may look like: these must still be recognised as that finger.
SAME_FINGER: dict[str, Variant] = {
    **{f"rotate{d:+d}": rotate(d) for d in (-15, -10, -5, 5, 10, 15)},
    **{f"shift{dx:+d},{dy:+d}": shift(dx, dy) for dx, dy in ((10, 0), (0, 10), (-20, 0), (0, -20), (15, 15))},
    **{f"noise{s}": noise(s) for s in (8, 16)},
    **{f"partial{int(k * 100)}{side[0]}": partial(k, side) for k in (0.8, 0.6) for side in ("bottom", "top")},
}

# What a poor capture looks like: the NFIQ 2 threshold should send these back for a retake.
DEGRADED: dict[str, Variant] = {
    "blur3": blur(3.0),
    "faint0.25": faint(0.25),
    "noise40": noise(40),
    "partial30": partial(0.3),
}
