"""Real images for the enrollment fuzz target, made by the project's own example generator.

Small on purpose (160 x 160 prints at 500 ppi, a 120 x 160 portrait) so one enrollment loads in a
fraction of the 1 s per-input budget; the names are those of ``station enroll --example``.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from drivers.formats import wsq
from station.enrollment.example import synthetic_fingerprint, synthetic_portrait

SIDE = 160
PNG_FINGERS = (1, 6)  # finger-01.png, finger-06.png
WSQ_FINGER = 2  # finger-02.wsq


def write_images(folder: Path) -> None:
    """Write face.jpg, finger-01.png, finger-06.png and finger-02.wsq into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for position in PNG_FINGERS:
        pixels = synthetic_fingerprint(position, SIDE, SIDE)
        Image.fromarray(pixels, "L").save(folder / f"finger-{position:02d}.png")
    (folder / f"finger-{WSQ_FINGER:02d}.wsq").write_bytes(
        wsq.encode(synthetic_fingerprint(WSQ_FINGER, SIDE, SIDE))
    )
    synthetic_portrait(120, 160).save(folder / "face.jpg", "JPEG", quality=80)
