"""WSQ (FBI Wavelet Scalar Quantization) for 500 ppi grey fingerprints.

Uses the ``wsq`` package, a Pillow plugin around NBIS: importing it registers
the ``WSQ`` format with Pillow.
"""

from __future__ import annotations

import io

import numpy as np
import wsq  # noqa: F401  (registers the WSQ format with Pillow)
from PIL import Image

from drivers.base import GreyImage

DEFAULT_BITRATE = 0.75  # bits per pixel; the FBI specification's 15:1 target


class WSQError(ValueError):
    """The bytes are not a WSQ image, or the image cannot be WSQ-encoded."""


def encode(pixels: GreyImage, *, ppi: int = 500, bitrate: float = DEFAULT_BITRATE) -> bytes:
    """WSQ-encode an 8-bit grey image."""
    if pixels.dtype != np.uint8 or pixels.ndim != 2:
        raise WSQError("WSQ needs an 8-bit grey (2-D uint8) image")
    if not 0.1 <= bitrate <= 8.0:
        raise WSQError(f"WSQ bitrate {bitrate} is out of range (0.1..8 bits per pixel)")
    buf = io.BytesIO()
    img = Image.fromarray(pixels, mode="L")
    try:
        img.save(buf, "WSQ", bitrate=bitrate, ppi=ppi)
    except Exception as exc:  # the plugin raises plain exceptions from C
        raise WSQError(f"WSQ encoding failed: {exc}") from exc
    return buf.getvalue()


def decode(data: bytes) -> GreyImage:
    """Decode WSQ bytes to an 8-bit grey image."""
    try:
        with Image.open(io.BytesIO(data), formats=["WSQ"]) as img:
            img.load()
            return np.asarray(img.convert("L"), dtype=np.uint8).copy()
    except Exception as exc:
        raise WSQError(f"not a readable WSQ image: {exc}") from exc
