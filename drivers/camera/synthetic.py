"""A drawn, shaded frontal face for the simulated camera (``sim://camera?source=synthetic``).

Soft luminance blobs where a real face has its shadows (eye sockets, brows, nostrils, mouth) and
its highlights (nose bridge, cheeks) are enough for OpenCV's Haar cascades to find the face and
both eyes, so the whole preview and face-check pipeline runs without a camera or a photograph.
The picture is rendered once per size; each frame adds fresh sensor-like noise.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from drivers.base import BGRImage

_BASE_W, _BASE_H = 640, 480


def render_face(width: int = _BASE_W, height: int = _BASE_H) -> BGRImage:
    """A head-and-shoulders picture on a plain light background, noise-free."""
    h, w = _BASE_H, _BASE_W
    s = 0.85
    cx, cy = w / 2, h * 0.50
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)

    def blob(x: float, y: float, rx: float, ry: float) -> npt.NDArray[np.float32]:
        out: npt.NDArray[np.float32] = np.exp(-(((xx - x) / rx) ** 2 + ((yy - y) / ry) ** 2)).astype(
            np.float32
        )
        return out

    fx, fy = (xx - cx) / (100 * s), (yy - cy) / (125 * s)
    skin = cv2.GaussianBlur((fx**2 + fy**2 <= 1).astype(np.float32), (0, 0), 3 * s)
    lum = 0.78 - 0.18 * (fx**2) * skin
    ex, ey = 56 * s, cy - 25 * s
    for d in (-1, 1):
        lum -= 0.8 * blob(cx + d * ex, ey, 26 * s, 18 * s)  # eye socket
        lum -= 0.25 * blob(cx + d * ex, ey - 24 * s, 28 * s, 6 * s)  # brow
        lum += 0.08 * blob(cx + d * ex * 1.2, cy + 35 * s, 30 * s, 25 * s)  # cheek
    lum += 0.10 * blob(cx, ey, 12 * s, 30 * s)  # nose bridge
    lum -= 0.30 * blob(cx, cy + 35 * s, 22 * s, 8 * s)  # nostrils
    lum -= 0.45 * blob(cx, cy + 72 * s, 36 * s, 9 * s)  # mouth
    lum -= 0.15 * blob(cx, cy + 120 * s, 70 * s, 15 * s)  # under the chin
    for d in (-1, 1):
        white = ((xx - (cx + d * ex)) / (17 * s)) ** 2 + ((yy - ey) / (7 * s)) ** 2 <= 1
        lum[white] = 0.85
        lum[(xx - (cx + d * ex)) ** 2 + (yy - ey) ** 2 <= (7 * s) ** 2] = 0.12  # iris
    face_l = np.clip(lum, 0, 1)
    background = 0.80 + 0.02 * np.sin(xx / 90)
    hair_mask = ((fx**2 + ((yy - (cy - 30 * s)) / (150 * s)) ** 2 <= 1.15) & (yy < cy - 95 * s)) | (
        (np.abs(fx) > 0.92) & (np.abs(fx) < 1.25) & (fy > -0.9) & (fy < 0.2)
    )
    hair = cv2.GaussianBlur(hair_mask.astype(np.float32), (0, 0), 2 * s)
    body = ((((xx - cx) / (260 * s)) ** 2 + ((yy - h) / (110 * s)) ** 2) <= 1).astype(np.float32)
    neck = ((np.abs(xx - cx) < 55 * s) & (yy > cy + 100 * s)).astype(np.float32)
    skin_bgr = (0.55, 0.68, 0.88)
    shirt_bgr = (0.35, 0.22, 0.18)
    img = np.zeros((h, w, 3), np.float32)
    for c in range(3):
        ch = background * 0.95
        ch = ch * (1 - neck) + neck * 0.6 * skin_bgr[c]
        ch = ch * (1 - body) + body * shirt_bgr[c]
        ch = ch * (1 - skin) + skin * face_l * skin_bgr[c]
        ch = ch * (1 - hair) + hair * 0.18
        img[..., c] = ch
    out = (img * 255).clip(0, 255).astype(np.uint8)
    return fit(out, width, height)


def fit(frame: BGRImage, width: int, height: int) -> BGRImage:
    """``frame`` (4:3) at ``width`` x ``height``: edges repeated to reach the aspect ratio, then scaled."""
    h, w = frame.shape[:2]
    out = frame
    if width * h > w * height:  # wider than the frame: more background at the sides
        pad = round((width * h / height - w) / 2)
        out = np.asarray(cv2.copyMakeBorder(out, 0, 0, pad, pad, cv2.BORDER_REPLICATE), dtype=np.uint8)
    elif width * h < w * height:  # taller: more background above, more shirt below
        pad = round((height * w / width - h) / 2)
        out = np.asarray(cv2.copyMakeBorder(out, pad, pad, 0, 0, cv2.BORDER_REPLICATE), dtype=np.uint8)
    if (width, height) != (out.shape[1], out.shape[0]):
        method = cv2.INTER_AREA if width < out.shape[1] else cv2.INTER_LINEAR
        out = np.asarray(cv2.resize(out, (width, height), interpolation=method), dtype=np.uint8)
    return out


def frames(width: int = _BASE_W, height: int = _BASE_H, count: int = 8) -> list[BGRImage]:
    """``count`` noisy frames of the face at ``width`` x ``height`` (noise added at 640x480, then fitted)."""
    base = render_face()
    return [fit(add_noise(base, n), width, height) for n in noise_bank(base.shape, count)]


def noise_bank(
    shape: tuple[int, ...], count: int = 8, sigma: float = 6.0, seed: int = 7
) -> list[npt.NDArray[np.int16]]:
    """``count`` fixed noise fields to add to frames in turn (cheaper than drawing noise per frame)."""
    rng = np.random.default_rng(seed)
    return [rng.normal(0, sigma, shape).astype(np.int16) for _ in range(count)]


def add_noise(base: BGRImage, noise: npt.NDArray[np.int16]) -> BGRImage:
    out: BGRImage = np.clip(base.astype(np.int16) + noise, 0, 255).astype(np.uint8)
    return out
