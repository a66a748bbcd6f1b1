"""A complete example enrollment for newcomers and demos: ``station enroll --example DIR``.

It writes ``DIR/enrollment.json`` and the images it names: nine synthetic fingerprints (a ridge
pattern around a core, at 500 ppi), one finger recorded as an exception, and a synthetic portrait.
The person is fictitious; the CNIC obeys the gender parity rule.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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


def synthetic_fingerprint(seed: int, width: int = 300, height: int = 400) -> np.ndarray:
    """A plausible 500 ppi grey print: ridges (about 9 px apart) curving around a core, on white."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    cx = width * (0.5 + rng.uniform(-0.06, 0.06))
    cy = height * (0.45 + rng.uniform(-0.05, 0.05))
    dx, dy = x - cx, (y - cy) * rng.uniform(0.75, 0.9)
    r = np.hypot(dx, dy)
    angle = np.arctan2(dy, dx)
    warp = 6 * np.sin(x / rng.uniform(35, 55) + seed) + 5 * np.cos(y / rng.uniform(40, 60))
    phase = (r + warp + 4 * np.sin(2 * angle + seed)) / rng.uniform(8.5, 10.0) * 2 * np.pi
    ridges = 0.5 + 0.5 * np.cos(phase)
    # Foreground: an ellipse with soft edges, as a finger pressed on glass.
    ell = ((x - width / 2) / (width * 0.44)) ** 2 + ((y - height * 0.52) / (height * 0.46)) ** 2
    mask = np.clip((1.0 - ell) * 6, 0, 1)
    noise = rng.normal(0, 0.08, size=ridges.shape)
    grey = 255 - mask * (ridges * 190 + noise * 60)
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
        Image.fromarray(synthetic_fingerprint(int(position)), "L").save(directory / name)
        fingers[str(int(position))] = {"image": name, "quality": 70 + int(position), "attempts": 1}
    synthetic_portrait().save(directory / "face.jpg", "JPEG", quality=90)
    doc = {
        "operator_id": "op-demo",
        "demographics": EXAMPLE_DEMOGRAPHICS,
        "face": "face.jpg",
        "fingers": fingers,
    }
    path = directory / "enrollment.json"
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path
