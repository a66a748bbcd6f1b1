"""``station quality finger FILE [--json]``: score a fingerprint image file 0-100 with reasons.

Reads PNG, JPEG (anything Pillow opens) and WSQ. Without ``--json`` it prints the measures and the
reasons, and its last line is the score alone, so scripts can take ``| tail -n1``.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np

from drivers.base import GreyImage

WSQ_MAGIC = b"\xff\xa0"  # WSQ start-of-image marker


def read_grey(path: Path) -> GreyImage:
    """An 8-bit grey image from a PNG/JPEG/WSQ file; ValueError/OSError when it cannot be read."""
    data = path.read_bytes()
    if data.startswith(WSQ_MAGIC):
        from drivers.formats import wsq

        return wsq.decode(data)
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            return np.asarray(img.convert("L"), dtype=np.uint8).copy()
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ValueError("not a PNG, JPEG or WSQ image") from exc


@click.command("finger")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print score, reasons and measures as JSON.")
@click.option(
    "--ppi", type=click.IntRange(100, 2000), default=500, show_default=True, help="Image resolution."
)
@click.pass_context
def finger_cmd(ctx: click.Context, file: Path, as_json: bool, ppi: int) -> None:
    """Score the fingerprint image FILE 0-100 (PNG, JPEG or WSQ); the last line is the score."""
    from drivers.quality.finger import finger_quality

    try:
        pixels = read_grey(file)
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        click.echo(
            f"error: cannot read fingerprint image {file}: {reason}. Give a PNG, JPEG or WSQ file.", err=True
        )
        ctx.exit(2)
    result = finger_quality(pixels, ppi=ppi)
    if as_json:
        payload = {"score": result.score, "reasons": list(result.reasons), "measures": result.measures}
        click.echo(json.dumps(payload, sort_keys=True))
        return
    h, w = pixels.shape
    click.echo(f"image: {w}x{h} pixels at {ppi} ppi")
    for name in sorted(result.measures):
        click.echo(f"{name}: {result.measures[name]:.3f}")
    for reason in result.reasons:
        click.echo(f"reason: {reason}")
    click.echo(str(result.score))
