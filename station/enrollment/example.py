"""A complete example enrollment for newcomers and demos: ``station enroll --example DIR``.

It writes ``DIR/enrollment.json`` and the images it names: nine synthetic fingerprints (loops,
whorls and arches grown with Gabor filters, at 500 ppi), one finger recorded as an exception, and a
drawn portrait. Finger quality is left out of the JSON, so the loader scores each print (NFIQ 2).
The person is fictitious; the CNIC obeys the gender parity rule.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from station.enrollment.model import FingerExceptionReason, FingerPosition

EXAMPLE_DEMOGRAPHICS: dict[str, Any] = {
    "kind": "new",
    "name_ur": "احمد رضا",
    "name_en": "Ahmed Raza",
    "father_or_husband_name_ur": "محمد اکرم",
    "father_or_husband_name_en": "Muhammad Akram",
    "cnic": "35202-1234567-1",
    "parent_cnic": "35202-7654321-3",
    "date_of_birth": "1990-05-14",
    "gender": "male",
    "present_address_ur": "مکان ۱۲، گلی ۴، شادمان، لاہور",
    "present_address_en": "House 12, Street 4, Shadman, Lahore",
    "permanent_address_ur": "مکان ۱۲، گلی ۴، شادمان، لاہور",
    "permanent_address_en": "House 12, Street 4, Shadman, Lahore",
    "district": "Lahore",
    "tehsil": "Lahore City",
    "union_council": "UC-42 Shadman",
    "mobile": "0300-1234567",
    "purpose": "Issue of a national identity card; the data are used for identity registration only.",
    "consent": True,
}
EXCEPTION_FINGER = FingerPosition.LEFT_LITTLE


def _orientation(width: int, height: int, rng: np.random.Generator, pattern: int) -> np.ndarray:
    """Ridge direction field (radians) from the zero-pole model: 0 loop, 1 whorl, 2 arch."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    z = x + 1j * y
    cx, cy = width * rng.uniform(0.42, 0.58), height * rng.uniform(0.38, 0.5)
    cores: list[complex] = []
    deltas: list[complex] = []
    if pattern == 0:
        side = rng.choice([-1.0, 1.0])
        cores = [complex(cx, cy)]
        deltas = [complex(cx + side * width * rng.uniform(0.25, 0.35), cy + height * rng.uniform(0.25, 0.35))]
    elif pattern == 1:
        cores = [complex(cx - 12, cy - 10), complex(cx + 12, cy + 10)]
        deltas = [
            complex(cx - width * 0.33, cy + height * 0.33),
            complex(cx + width * 0.33, cy + height * 0.35),
        ]
    theta = np.zeros_like(x)
    for d in deltas:
        theta += 0.5 * np.angle(z - d)
    for c in cores:
        theta -= 0.5 * np.angle(z - c)
    if pattern == 2:
        theta = 0.6 * np.sin((x - cx) / width * np.pi) * np.exp(-(((y - cy * 1.2) / height) ** 2) * 4)
    out: np.ndarray = -theta + rng.uniform(-0.15, 0.15)
    return out


def synthetic_fingerprint(seed: int, width: int = 400, height: int = 500) -> np.ndarray:
    """A plausible 500 ppi grey flat print (loop, whorl or arch by ``seed``), not anyone's finger.

    Ridges grow from noise by repeated Gabor filtering along an orientation field, as in
    SFinGe-style generators, so they end and fork (minutiae) like real ones; about 9 px apart.
    """
    rng = np.random.default_rng(seed)
    theta = _orientation(width, height, rng, seed % 3)
    nbins = 12
    bins = np.round((theta % np.pi) / np.pi * nbins).astype(np.int64) % nbins
    period = rng.uniform(8.5, 10.0)
    kernels = []
    for b in range(nbins):
        k = cv2.getGaborKernel((21, 21), 3.5, b * np.pi / nbins + np.pi / 2, period, 1.0, 0, ktype=cv2.CV_32F)
        kernels.append(k - k.mean())
    img = rng.normal(0, 1, (height, width)).astype(np.float32)
    for _ in range(5):
        grown = np.zeros_like(img)
        for b, k in enumerate(kernels):
            sel = bins == b
            grown[sel] = cv2.filter2D(img, -1, k)[sel]
        img = np.clip(grown / (np.abs(grown).max() + 1e-6) * 3, -1, 1)
    yy, xx = np.mgrid[0:height, 0:width]
    ell = ((xx - width / 2) / (width * 0.44)) ** 2 + ((yy - height * 0.52) / (height * 0.47)) ** 2
    contact = np.clip((1.0 - ell) * 5, 0, 1)  # a finger pressed on glass, soft at the edges
    blotch = cv2.GaussianBlur(rng.uniform(0, 1, (height, width)).astype(np.float32), (0, 0), 25)
    pressure = np.clip(0.75 + 0.5 * blotch, 0, 1)
    grey = 255 - contact * pressure * ((img + 1) / 2 * 200) + rng.normal(0, 6, img.shape)
    out: np.ndarray = np.clip(grey, 0, 255).astype(np.uint8)
    return out


def synthetic_portrait(width: int = 480, height: int = 640) -> Image.Image:
    """A drawn, plainly lit head and shoulders on a light background (not a real person)."""
    img = Image.new("RGB", (width, height), (226, 230, 236))
    d = ImageDraw.Draw(img)
    cx = width // 2
    d.ellipse([cx - 200, height - 170, cx + 200, height + 200], fill=(40, 60, 90))  # shoulders
    d.rectangle([cx - 45, 400, cx + 45, 500], fill=(198, 150, 120))  # neck
    d.ellipse([cx - 120, 120, cx + 120, 440], fill=(205, 158, 126))  # face
    d.chord([cx - 128, 95, cx + 128, 300], 180, 360, fill=(35, 28, 25))  # hair
    for ex in (cx - 50, cx + 50):
        d.ellipse([ex - 22, 255, ex + 22, 280], fill=(250, 250, 250))
        d.ellipse([ex - 9, 258, ex + 9, 277], fill=(60, 40, 30))
        d.line([ex - 28, 240, ex + 28, 236], fill=(40, 30, 25), width=5)
    d.polygon([(cx, 285), (cx - 16, 345), (cx + 16, 345)], fill=(190, 140, 110))
    d.arc([cx - 45, 350, cx + 45, 395], 20, 160, fill=(140, 60, 60), width=5)
    rng = np.random.default_rng(7)
    arr = np.asarray(img.filter(ImageFilter.GaussianBlur(1.2)), dtype=np.int16)
    arr = arr + rng.normal(0, 4, size=arr.shape).astype(np.int16)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


def write_example(directory: Path) -> Path:
    """Write ``directory/enrollment.json`` and its images; returns the JSON path."""
    directory.mkdir(parents=True, exist_ok=True)
    fingers: dict[str, Any] = {}
    for position in FingerPosition:
        if position is EXCEPTION_FINGER:
            fingers[str(int(position))] = {
                "exception": FingerExceptionReason.INJURED.value,
                "note": "bandaged",
            }
            continue
        name = f"finger-{int(position):02d}.png"
        pixels = synthetic_fingerprint(int(position))
        Image.fromarray(pixels, "L").save(directory / name)
        fingers[str(int(position))] = {"image": name, "attempts": 1}
    synthetic_portrait().save(directory / "face.jpg", "JPEG", quality=85)
    doc = {
        "operator_id": "op-demo",
        "demographics": EXAMPLE_DEMOGRAPHICS,
        "face": "face.jpg",
        "fingers": fingers,
    }
    path = directory / "enrollment.json"
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path
