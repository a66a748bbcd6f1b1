"""``station device``: list what is plugged in, show a device's details, test-capture.

    station device list [--json]
    station device info URL [--json] [--trace]
    station device capture URL --out FILE [--timeout S] [--trace]

A fingerprint is saved as PNG (or WSQ when FILE ends in .wsq), a camera still
as JPEG (or PNG). ``--trace`` hex-dumps every transfer on stderr. A device
problem ends with its message and exit status 1, never a traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, NoReturn, TextIO

import click

from drivers.base import Camera, DeviceInfo, FingerImage, FingerprintScanner, ProgressFn
from drivers.errors import DeviceError

FINGER_SUFFIXES = {".png", ".wsq", ".bmp", ".tif", ".tiff", ".pgm"}
CAMERA_SUFFIXES = {".jpg", ".jpeg", ".png"}


def _fail(exc: DeviceError | str, code: str = "device.error") -> NoReturn:
    if isinstance(exc, DeviceError):
        code, message = exc.code, exc.message
    else:
        message = exc
    click.echo(f"error [{code}]: {message}", err=True)
    raise click.exceptions.Exit(1)


def _trace_stream(trace: bool) -> TextIO | None:
    return sys.stderr if trace else None


@contextmanager
def _opened(url: str, trace: bool) -> Iterator[FingerprintScanner | Camera]:
    from drivers.url import open_device

    try:
        device = open_device(url, trace=_trace_stream(trace))
    except DeviceError as exc:
        _fail(exc)
    try:
        yield device
    finally:
        with suppress(DeviceError):  # unplugged: the error that matters was already reported
            device.close()


@click.group()
def device_group() -> None:
    """List, inspect and test-capture scanners and cameras."""


@device_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON array of {url, kind, name, usb_id, path}.")
@click.option(
    "--sysfs-root", type=click.Path(path_type=Path), default=Path("/sys"), hidden=True, help="For tests."
)
def list_cmd(as_json: bool, sysfs_root: Path) -> None:
    """Devices plugged in now, with the URL each one opens as."""
    from drivers.discovery import list_devices

    devices = list_devices(sysfs_root=sysfs_root)
    if as_json:
        click.echo(json.dumps([d.as_dict() for d in devices], indent=2))
        return
    if not devices:
        click.echo("No scanner, serial port or camera found: plug one in, or use sim://r30x.")
        return
    rows = [("KIND", "URL", "NAME", "USB ID", "PATH")]
    rows += [(d.kind, d.url, d.name, d.usb_id or "-", d.path or "-") for d in devices]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[4])


def _info_dict(info: DeviceInfo) -> dict[str, Any]:
    return {"url": info.url, "kind": info.kind, "model": info.model, "details": dict(info.details)}


@device_group.command("info")
@click.argument("url")
@click.option("--json", "as_json", is_flag=True, help="One JSON object {url, kind, model, details}.")
@click.option("--trace", is_flag=True, help="Hex-dump every byte on the wire to stderr.")
def info_cmd(url: str, as_json: bool, trace: bool) -> None:
    """What the device at URL is (model, resolution, firmware...)."""
    with _opened(url, trace) as dev:
        try:
            info = dev.info()
        except DeviceError as exc:
            _fail(exc)
    if as_json:
        click.echo(json.dumps(_info_dict(info), indent=2))
        return
    click.echo(f"url: {info.url}")
    click.echo(f"kind: {info.kind}")
    click.echo(f"model: {info.model}")
    for key, value in info.details.items():
        click.echo(f"{key}: {value}")


class _Progress:
    """A click progress bar on stderr, created on the first report (its length is known then)."""

    def __init__(self, label: str) -> None:
        self._label = label
        self._bar: Any = None
        self._done = 0

    def __call__(self, done: int, total: int) -> None:
        if self._bar is None:
            self._bar = click.progressbar(length=max(total, 1), label=self._label, file=sys.stderr)
            self._bar.__enter__()
        if done > self._done:
            self._bar.update(done - self._done)
            self._done = done

    def close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None


def _save_finger(image: FingerImage, out: Path) -> None:
    suffix = out.suffix.lower()
    if suffix == ".wsq":
        from drivers.formats import wsq

        out.write_bytes(wsq.encode(image.pixels, ppi=image.ppi))
        return
    from PIL import Image

    Image.fromarray(image.pixels, mode="L").save(out, dpi=(image.ppi, image.ppi))


def _save_still(frame: Any, out: Path) -> None:
    import cv2

    ok, encoded = cv2.imencode(".png" if out.suffix.lower() == ".png" else ".jpg", frame)
    if not ok:
        _fail("The camera frame could not be encoded: retry the capture.", "device.encode")
    out.write_bytes(encoded.tobytes())


def _capture_finger(dev: FingerprintScanner, out: Path, timeout: float) -> str:
    if out.suffix.lower() not in FINGER_SUFFIXES:
        _fail(f"Save a fingerprint as .png or .wsq, not {out.suffix or 'no extension'}.", "device.out")
    progress = _Progress("Reading image")
    report: ProgressFn = progress
    click.echo(f"Place a finger on the scanner (waiting up to {timeout:g} s)...", err=True)
    try:
        image = dev.capture(timeout=timeout, progress=report)
    finally:
        progress.close()
    _save_finger(image, out)
    h, w = image.pixels.shape
    return f"Saved {w}x{h} fingerprint at {image.ppi} ppi to {out}"


def _capture_still(dev: Camera, out: Path, timeout: float) -> str:
    if out.suffix.lower() not in CAMERA_SUFFIXES:
        _fail(f"Save a camera still as .jpg or .png, not {out.suffix or 'no extension'}.", "device.out")
    dev.start()
    frame = dev.still(timeout=timeout)
    _save_still(frame, out)
    return f"Saved {frame.shape[1]}x{frame.shape[0]} still to {out}"


@device_group.command("capture")
@click.argument("url")
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Image file: .png/.wsq for a fingerprint, .jpg/.png for a camera.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    help="Seconds to wait for a finger (or a camera frame).",
)
@click.option("--trace", is_flag=True, help="Hex-dump every byte on the wire to stderr.")
def capture_cmd(url: str, out: Path, timeout: float, trace: bool) -> None:
    """Capture one fingerprint or camera still from URL into --out."""
    handlers: dict[type, Callable[[Any, Path, float], str]] = {
        FingerprintScanner: _capture_finger,
        Camera: _capture_still,
    }
    with _opened(url, trace) as dev:
        handler = next(h for kind, h in handlers.items() if isinstance(dev, kind))
        try:
            message = handler(dev, out, timeout)
        except DeviceError as exc:
            _fail(exc)
        except OSError as exc:
            _fail(f"Cannot write {out}: {exc.strerror or exc}. Choose another --out path.", "device.out")
    click.echo(message)
