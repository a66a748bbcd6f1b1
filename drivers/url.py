"""Open any device from a URL, in the manner of pyserial's ``serial_for_url``.

    serial:///dev/ttyUSB0?baud=57600      R30x/ZFM module on a serial port
    usb://298d:1010                       NEXT Biometrics NB-1010-U over pyusb
    camera:///dev/video0?width=1280&...   V4L2 camera through OpenCV
    sim://r30x                            R30x simulator on a pseudo-terminal
    sim://camera?source=DIR|FILE|synthetic

Backends register a lazy ``"module:function"`` opener under a key: the scheme
(``serial``), or ``sim:<name>`` for simulators. The opener receives the parsed
URL (:class:`drivers.device_url.DeviceURL`); a missing optional dependency disables that backend
only.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TextIO

from drivers.base import Device
from drivers.device_url import DeviceURL, parse_url
from drivers.errors import UnsupportedURL

__all__ = ["OPENERS", "DeviceURL", "open_device", "parse_url", "register"]


Opener = Callable[..., Device]

# key -> "module:function"; function(url: DeviceURL, *, trace: TextIO | None) -> Device
OPENERS: dict[str, str] = {
    "serial": "drivers.r30x.opener:open_serial",
    "sim:r30x": "drivers.r30x.opener:open_sim",
    "usb": "drivers.nb1010.opener:open_usb",
    "camera": "drivers.camera.opener:open_camera",
    "sim:camera": "drivers.camera.opener:open_sim_camera",
}


def register(key: str, target: str) -> None:
    """Add or replace a backend opener (``key`` as in ``OPENERS``)."""
    OPENERS[key] = target


def _opener_for(parsed: DeviceURL) -> Opener:
    key = f"sim:{parsed.host}" if parsed.scheme == "sim" else parsed.scheme
    target = OPENERS.get(key)
    if target is None:
        raise UnsupportedURL(
            f"No driver for {parsed.raw!r}: known kinds are "
            + ", ".join(
                k.replace("sim:", "sim://") + ("" if k.startswith("sim:") else "://") for k in OPENERS
            )
        )
    module_name, func = target.split(":", 1)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UnsupportedURL(f"The driver for {parsed.scheme}:// is not available here ({exc}).") from exc
    opener: Opener = getattr(module, func)
    return opener


def open_device(url: str, *, trace: TextIO | None = None) -> Device:
    """Open the device named by ``url``. ``trace`` receives a hex dump of every byte on the wire."""
    parsed = parse_url(url)
    return _opener_for(parsed)(parsed, trace=trace)
