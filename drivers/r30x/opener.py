"""URL openers for R30x modules: ``serial:///dev/ttyUSB0?...`` and ``sim://r30x?...``.

    serial:///dev/ttyUSB0?baud=57600&address=0xFFFFFFFF&password=0&timeout=2
    serial:///dev/ttyUSB0?baud=auto  try 57600, 115200, 9600, 19200, 38400 until the module answers
    serial:///dev/ttyUSB0?maxbaud=0  stay at ``baud``: do not raise the module to 115200 after the handshake
    sim://r30x                      simulator on a pty, no finger until placed (``.simulator``)
    sim://r30x?image=PATH           that print is on the sensor
    sim://r30x?finger=auto          a synthetic finger whenever GenImg is called (demos)
    sim://r30x?library=DIR          keep the simulated template library in DIR
    sim://r30x?pace=1               answer no faster than a real UART at the module's rate (benchmarks)

The simulator runs in this process on a background thread; the scanner returned is the real serial
driver connected to its pty through a private symlink, so reconnecting after ``simulator.unplug()``
and ``replug()`` works exactly as with a real adapter.

After the handshake the driver raises the module to ``maxbaud`` (default 115200; the module keeps the
rate in its flash). The rate a port's module was left at is remembered (``drivers.r30x.rates``) and
tried first at the next open, then the URL's rate, then ``maxbaud``: a station restarted after a
rate change finds its scanner at once.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from drivers.device_url import DeviceURL
from drivers.errors import DeviceError, DeviceTimeout, ProtocolError, UnsupportedURL
from drivers.r30x import protocol as p
from drivers.r30x import rates
from drivers.r30x.driver import DEFAULT_PACKET_TIMEOUT, R30xScanner
from drivers.r30x.simulator import R30xSimulator
from drivers.transport.base import Transport
from drivers.transport.serial import SerialTransport
from drivers.transport.trace import TraceTransport

DEFAULT_BAUD = 57600
DEFAULT_MAX_BAUD = 115200
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


def _max_baud(url: DeviceURL) -> int | None:
    value = url.int_param("maxbaud", DEFAULT_MAX_BAUD)
    if value == 0:
        return None
    try:
        p.baud_code(value)
    except ValueError as exc:
        raise UnsupportedURL(f"maxbaud={value} in {url.raw}: use 9600 x N (N = 1..12), or 0") from exc
    return value


def _scanner_for_port(
    port: str,
    url: DeviceURL,
    trace: TextIO | None,
    *,
    baud: int = DEFAULT_BAUD,
    model: str = "R30x/ZFM fingerprint module",
    on_close: Callable[[], None] | None = None,
    max_baud: int | None = None,
) -> R30xScanner:

    def factory(rate: int) -> Transport:
        transport: Transport = SerialTransport(port, rate)
        return TraceTransport(transport, trace) if trace is not None else transport

    return R30xScanner(
        factory,
        url=url.raw,
        address=url.int_param("address", p.DEFAULT_ADDRESS),
        password=url.int_param("password", 0),
        packet_timeout=_float_param(url, "timeout", DEFAULT_PACKET_TIMEOUT),
        model=model,
        on_close=on_close,
        baud=baud,
        max_baud=max_baud,
        on_rate=lambda rate: rates.remember(port, rate),
    )


def _connect_first(
    port: str, url: DeviceURL, trace: TextIO | None, bauds: list[int], primary: int | None, **kwargs: Any
) -> R30xScanner:
    """Connect at the first rate of ``bauds`` the module answers at (each tried once, in order).

    When none answers, the error seen at ``primary`` (the URL's own rate) is raised, else the last."""
    errors: dict[int, DeviceError] = {}
    for baud in dict.fromkeys(bauds):
        scanner = _scanner_for_port(port, url, trace, baud=baud, **kwargs)
        try:
            scanner.connect()
        except (DeviceTimeout, ProtocolError) as exc:
            errors[baud] = exc
            continue
        return scanner
    raise errors[primary] if primary in errors else list(errors.values())[-1]


def open_serial(url: DeviceURL, *, trace: TextIO | None = None) -> R30xScanner:
    """Open and check (password, system parameters) an R30x module on a serial port."""
    # serial:///dev/ttyUSB0 is the canonical form; serial://dev/ttyUSB0 (netloc "dev") means the same
    port = f"/{url.host}{url.path}" if url.host else url.path
    if not port:
        raise UnsupportedURL(f"{url.raw} names no port: use serial:///dev/ttyUSB0")
    max_baud = _max_baud(url)
    known = rates.recall(port)
    if url.param("baud") != "auto":
        baud = _baud(url)
        if max_baud is None:
            scanner = _scanner_for_port(port, url, trace, baud=baud)
            scanner.connect()
            return scanner
        # the rate this port's module was left at first, then the URL's, then the one we raise to
        order = [b for b in (known, baud, max_baud) if b is not None]
        return _connect_first(port, url, trace, order, baud, max_baud=max_baud)
    # baud=auto: the module's rate is unknown (changed earlier, or a board with another default)
    try:
        order = [b for b in (known, *AUTO_BAUDS) if b is not None]
        return _connect_first(port, url, trace, order, None, max_baud=max_baud)
    except (DeviceTimeout, ProtocolError) as last:
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
    if (url.param("pace", "") or "").lower() in TRUE_WORDS:
        simulator.pace_line()
    simulator.start()
    link = simulator.link(workdir / "r30x")

    def cleanup() -> None:
        simulator.stop()  # removes ``workdir`` too, also when the program exits without close()

    try:
        scanner = _scanner_for_port(
            str(link),
            url,
            trace,
            baud=_baud(url),
            model="R30x simulator (pty)",
            on_close=cleanup,
            max_baud=_max_baud(url),
        )
        scanner.simulator = simulator
        scanner.connect()
    except DeviceError:
        with contextlib.suppress(Exception):
            cleanup()
        raise
    return scanner
