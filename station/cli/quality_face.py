"""``station quality face FILE``: the kiosk's ICAO-style face checks on a photo.

Prints each check with its measured value and verdict (and what to tell the citizen when it fails).
Exit status: 0 when every check passes, 1 when any fails, 2 when the file cannot be read.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from drivers.base import BGRImage

_UNITS = {
    "one_face": "faces",
    "eyes": "eyes",
    "eye_distance": "px",
    "roll": "deg",
    "centred": "of width",
    "head_height": "of height",
    "sharpness": "lap.var",
    "exposure": "grey",
    "background": "edges",
}


def _read(path: Path) -> BGRImage:
    import cv2
    import numpy as np

    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        click.echo(f"Cannot read {path}: {exc.strerror or exc}. Check the path and permissions.", err=True)
        sys.exit(2)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        click.echo(f"{path} is not an image OpenCV can read (use JPEG or PNG).", err=True)
        sys.exit(2)
    return np.asarray(image, dtype=np.uint8)


@click.command("face")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="One JSON object: every check with value and verdict.")
@click.option("--min-eye-distance", type=float, default=None, help="Pixels between the eyes (default 90).")
@click.option(
    "--portrait",
    "portrait_out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Also write the 480x640 ICAO-style JPEG token here.",
)
def face_cmd(file: Path, as_json: bool, min_eye_distance: float | None, portrait_out: Path | None) -> None:
    """Run the face checks on FILE (exit 0 all pass, 1 some fail, 2 unreadable)."""
    from drivers.quality.face import FaceConfig, check_face

    image = _read(file)
    config = FaceConfig() if min_eye_distance is None else FaceConfig(min_eye_distance=min_eye_distance)
    report = check_face(image, config=config)
    if portrait_out is not None:
        from drivers.portrait import make_portrait

        token = make_portrait(image, config=config, report=report)
        portrait_out.write_bytes(token.jpeg)
    if as_json:
        payload = report.as_dict() | {"file": str(file)}
        click.echo(json.dumps(payload, ensure_ascii=False, sort_keys=True))
    else:
        for c in report.checks:
            value = "-" if c.value is None else f"{c.value:.3g}"
            line = f"{'PASS' if c.passed else 'FAIL'}  {c.name:<13} {value:>8} {_UNITS.get(c.name, ''):<9}"
            if not c.passed:
                line += f"  {c.instruction_en} / {c.instruction_ur}"
            click.echo(line.rstrip())
        verdict = "every check passes" if report.all_passed else "some checks fail"
        click.echo(f"{file}: {verdict}")
    sys.exit(0 if report.all_passed else 1)
