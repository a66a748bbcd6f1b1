"""URL openers for R30x modules: ``serial:///dev/ttyUSB0?...`` and ``sim://r30x?...``.

    serial:///dev/ttyUSB0?baud=57600&address=0xFFFFFFFF&password=0&timeout=2
    serial:///dev/ttyUSB0?baud=auto  try 57600, 115200, 9600, 19200, 38400 until the module answers
    sim://r30x                      simulator on a pty, no finger until placed (``.simulator``)
    sim://r30x?image=PATH           that print is on the sensor
    sim://r30x?finger=auto          a synthetic finger whenever GenImg is called (demos)
    sim://r30x?library=DIR          keep the simulated template library in DIR

The simulator runs in this process on a background thread; the scanner returned is the real serial
driver connected to its pty through a private symlink, so reconnecting after ``simulator.unplug()``
and ``replug()`` works exactly as with a real adapter.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from drivers.device_url import DeviceURL
from drivers.errors import DeviceError, DeviceTimeout, ProtocolError, UnsupportedURL
from drivers.r30x import protocol as p
from drivers.r30x.driver import DEFAULT_PACKET_TIMEOUT, R30xScanner
from drivers.r30x.simulator import R30xSimulator
from drivers.transport.base import Transport
from drivers.transport.serial import SerialTransport
from drivers.transport.trace import TraceTransport

DEFAULT_BAUD = 57600
AUTO_BAUDS = (57600, 115200, 9600, 19200, 38400)  # tried in this order for baud=auto
TRUE_WORDS = {"1", "true", "yes", "on", "auto"}


def _float_param(url: DeviceURL, name: str, default: float) -> float:
    value = url.param(name)
    if value is None:
        return default
    try:
        return float(value)
    except ValueError:
        raise UnsupportedURL(f"{name}={value!r} in {url.raw} is not a number") from None


def _baud(url: DeviceURL) -> int:
    baud = url.int_param("baud", DEFAULT_BAUD)
    try:
        p.baud_code(baud)
    except ValueError as exc:
        raise UnsupportedURL(f"baud={baud} in {url.raw}: use 9600 x N (N = 1..12), e.g. 57600") from exc
    return baud


def _scanner_for_port(
    port: str,
    url: DeviceURL,
    trace: TextIO | None,
    *,
    baud: int = DEFAULT_BAUD,
    model: str = "R30x/ZFM fingerprint module",
    on_close: Callable[[], None] | None = None,
) -> R30xScanner:

    def factory() -> Transport:
        transport: Transport = SerialTransport(port, baud)
        return TraceTransport(transport, trace) if trace is not None else transport

    return R30xScanner(
        factory,
        url=url.raw,
        address=url.int_param("address", p.DEFAULT_ADDRESS),
        password=url.int_param("password", 0),
        packet_timeout=_float_param(url, "timeout", DEFAULT_PACKET_TIMEOUT),
        model=model,
        on_close=on_close,
    )


def open_serial(url: DeviceURL, *, trace: TextIO | None = None) -> R30xScanner:
    """Open and check (password, system parameters) an R30x module on a serial port."""
    # serial:///dev/ttyUSB0 is the canonical form; serial://dev/ttyUSB0 (netloc "dev") means the same
    port = f"/{url.host}{url.path}" if url.host else url.path
    if not port:
        raise UnsupportedURL(f"{url.raw} names no port: use serial:///dev/ttyUSB0")
    if url.param("baud") != "auto":
        scanner = _scanner_for_port(port, url, trace, baud=_baud(url))
        scanner.connect()
        return scanner
    # baud=auto: the module's rate is unknown (changed earlier, or a board with another default)
    last: DeviceError | None = None
    for baud in AUTO_BAUDS:
        scanner = _scanner_for_port(port, url, trace, baud=baud)
        try:
            scanner.connect()
        except (DeviceTimeout, ProtocolError) as exc:
            last = exc
            continue
        return scanner
    assert last is not None
    raise DeviceTimeout(
        f"No R30x module answered on {port} at {', '.join(map(str, AUTO_BAUDS))} baud: "
        "check the cable and the power."
    ) from last


def open_sim(url: DeviceURL, *, trace: TextIO | None = None) -> R30xScanner:
    """Start an R30x simulator on a pty and open it with the real serial driver."""
    image = url.param("image")
    if image is not None and not Path(image).is_file():
        raise UnsupportedURL(f"image={image!r} in {url.raw}: no such file")
    library = url.param("library")
    workdir = Path(tempfile.mkdtemp(prefix="r30x-sim-"))
    simulator = R30xSimulator(
        image=image,
        finger_auto=(url.param("finger", "") or "").lower() in TRUE_WORDS,
        library_dir=library if library else workdir / "library",
        password=url.int_param("password", 0),
        address=url.int_param("address", p.DEFAULT_ADDRESS),
    )
    simulator.on_stop(lambda: shutil.rmtree(workdir, ignore_errors=True))
    simulator.start()
    link = simulator.link(workdir / "r30x")

    def cleanup() -> None:
        simulator.stop()  # removes ``workdir`` too, also when the program exits without close()

    try:
        scanner = _scanner_for_port(
            str(link), url, trace, baud=_baud(url), model="R30x simulator (pty)", on_close=cleanup
        )
        scanner.simulator = simulator
        scanner.connect()
    except DeviceError:
        with contextlib.suppress(Exception):
            cleanup()
        raise
    return scanner
