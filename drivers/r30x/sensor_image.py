"""Images for the simulated R30x sensor: fit any print to 256x288, or draw a synthetic one.

A print is cropped or padded (white, centred) to the sensor's 256x288, never rescaled: rescaling
would change the ridge spacing that a 500 ppi matcher relies on. The synthetic print is a
deterministic ridge pattern (concentric ridges bent by a dozen phase singularities) that NIST
minutiae extraction finds minutiae in; different seeds give prints that do not match each other.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from drivers.r30x.protocol import IMAGE_HEIGHT, IMAGE_WIDTH

Grey = npt.NDArray[np.uint8]


def fit_to_sensor(pixels: npt.NDArray[np.generic]) -> Grey:
    """Centre-crop or white-pad a grey (or colour, converted) image to 288x256."""
    arr = np.asarray(pixels)
    if arr.ndim == 3:
        arr = arr[..., :3].mean(axis=2)
    if arr.dtype != np.uint8:
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    out = np.full((IMAGE_HEIGHT, IMAGE_WIDTH), 255, dtype=np.uint8)
    h, w = arr.shape
    ch, cw = min(h, IMAGE_HEIGHT), min(w, IMAGE_WIDTH)
    sy, sx = (h - ch) // 2, (w - cw) // 2
    dy, dx = (IMAGE_HEIGHT - ch) // 2, (IMAGE_WIDTH - cw) // 2
    out[dy : dy + ch, dx : dx + cw] = arr[sy : sy + ch, sx : sx + cw]
    return out


def load_sensor_image(path: str | Path) -> Grey:
    """Read an image file (any Pillow format) as grey and fit it to the sensor."""
    from PIL import Image

    with Image.open(path) as image:
        return fit_to_sensor(np.asarray(image.convert("L"), dtype=np.uint8))


def quantise(pixels: Grey) -> Grey:
    """What the sensor really holds: 4 bits per pixel, expanded back to 0..255."""
    return ((pixels >> 4) * 17).astype(np.uint8)


def synthetic_print(seed: int = 1) -> Grey:
    """A deterministic 288x256 synthetic fingerprint."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:IMAGE_HEIGHT, 0:IMAGE_WIDTH].astype(np.float64)
    cx = IMAGE_WIDTH / 2 + rng.uniform(-20, 20)
    cy = IMAGE_HEIGHT / 2 + rng.uniform(-20, 20)
    phase = 2 * np.pi * np.hypot(x - cx, (y - cy) * 0.8) / 9.0
    for _ in range(12):
        px, py = rng.uniform(30, IMAGE_WIDTH - 30), rng.uniform(30, IMAGE_HEIGHT - 30)
        phase += rng.choice([-1.0, 1.0]) * np.arctan2(y - py, x - px)
    phase += 3 * np.sin(x / 40 + rng.uniform(0, 6)) * np.cos(y / 50 + rng.uniform(0, 6))
    image = 128 + 110 * np.cos(phase)
    inside = ((x - cx) / (IMAGE_WIDTH * 0.45)) ** 2 + ((y - cy) / (IMAGE_HEIGHT * 0.45)) ** 2 < 1
    image = np.where(inside, image, 255.0) + rng.normal(0, 8, image.shape)
    result: Grey = np.clip(image, 0, 255).astype(np.uint8)
    return result
