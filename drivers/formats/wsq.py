"""WSQ (FBI Wavelet Scalar Quantization) for 500 ppi grey fingerprints.

Uses the ``wsq`` package, NIST's NBIS WSQ codec built as a Pillow plugin. Decoding goes through
Pillow. Encoding calls NBIS's own ``wsq_encode_mem`` from the same library, because the plugin's
Pillow encoder ignores the bitrate it is given and always encodes at 0.75 bits per pixel; calling
the codec directly makes the bitrate a real setting (default 0.75 bpp, the FBI's ~15:1 target).
NBIS keeps codec state in globals, so calls are serialised.
"""

from __future__ import annotations

import ctypes
import io
import threading
from functools import cache
from typing import Any

import numpy as np
import wsq  # noqa: F401  (registers the WSQ format with Pillow)
from PIL import Image

from drivers.base import GreyImage
from drivers.errors import DeviceError

DEFAULT_BITRATE = 0.75  # bits per pixel
_LOCK = threading.Lock()


class WSQError(DeviceError, ValueError):
    """The bytes are not a WSQ image, or the image cannot be WSQ-encoded (also a ``ValueError``)."""

    code = "device.wsq"


@cache
def _codec() -> tuple[Any, Any]:
    import _wsq  # the C extension the wsq package ships

    lib = ctypes.CDLL(_wsq.__file__)
    encode = lib.wsq_encode_mem
    encode.argtypes = [
        ctypes.POINTER(ctypes.POINTER(ctypes.c_ubyte)),  # unsigned char **odata (malloc'd by NBIS)
        ctypes.POINTER(ctypes.c_int),  # int *olen
        ctypes.c_float,  # r_bitrate
        ctypes.c_char_p,  # unsigned char *idata
        ctypes.c_int,  # w
        ctypes.c_int,  # h
        ctypes.c_int,  # depth (8)
        ctypes.c_int,  # ppi
        ctypes.c_char_p,  # comment text (NULL)
    ]
    encode.restype = ctypes.c_int
    libc = ctypes.CDLL(None)
    libc.free.argtypes = [ctypes.c_void_p]
    libc.free.restype = None
    return encode, libc.free


def encode(pixels: GreyImage, *, ppi: int = 500, bitrate: float = DEFAULT_BITRATE) -> bytes:
    """WSQ-encode an 8-bit grey image at ``bitrate`` bits per pixel."""
    if pixels.dtype != np.uint8 or pixels.ndim != 2:
        raise WSQError("WSQ needs an 8-bit grey (2-D uint8) image")
    if not 0.1 <= bitrate <= 8.0:
        raise WSQError(f"WSQ bitrate {bitrate} is out of range (0.1..8 bits per pixel)")
    height, width = pixels.shape
    if width < 32 or height < 32:
        raise WSQError(f"a {width}x{height} image is too small to WSQ-encode (32x32 at least)")
    if not 100 <= ppi <= 2000:
        raise WSQError(f"{ppi} ppi is not a fingerprint resolution")
    data = np.ascontiguousarray(pixels).tobytes()
    wsq_encode_mem, free = _codec()
    out = ctypes.POINTER(ctypes.c_ubyte)()
    size = ctypes.c_int(0)
    with _LOCK:
        status = wsq_encode_mem(
            ctypes.byref(out), ctypes.byref(size), bitrate, data, width, height, 8, ppi, None
        )
    if status != 0 or not out:
        raise WSQError(f"WSQ encoding failed (NBIS status {status})")
    try:
        return ctypes.string_at(out, size.value)
    finally:
        free(out)


def decode(data: bytes) -> GreyImage:
    """Decode WSQ bytes to an 8-bit grey image."""
    try:
        with _LOCK, Image.open(io.BytesIO(data), formats=["WSQ"]) as img:
            img.load()
            return np.asarray(img.convert("L"), dtype=np.uint8).copy()
    except Exception as exc:
        raise WSQError(f"not a readable WSQ image: {exc}") from exc
