"""Open ``usb://298d:1010[?serial=S | ?bus=N&address=M]`` as an ``NB1010Scanner``.

Registered in ``drivers.url.OPENERS`` under ``usb``. With several sensors
attached, ``bus``/``address`` (as ``lsusb`` prints them) or ``serial`` pick one;
otherwise the first one found is used.
"""

from __future__ import annotations

from typing import Any, TextIO

from drivers.device_url import DeviceURL
from drivers.errors import DeviceNotFound, UnsupportedURL
from drivers.nb1010 import protocol as p
from drivers.nb1010.driver import NB1010Scanner
from drivers.nb1010.usb_link import PyUsbLink, find_devices, map_usb_error

KNOWN_IDS = {(p.VENDOR_ID, p.PRODUCT_ID)}


def parse_usb_id(host: str, raw: str) -> tuple[int, int]:
    """``"298d:1010"`` -> (0x298d, 0x1010)."""
    vendor, sep, product = host.partition(":")
    try:
        if not sep:
            raise ValueError(host)
        return int(vendor, 16), int(product, 16)
    except ValueError:
        raise UnsupportedURL(
            f"{raw!r}: a USB URL names vendor:product in hex, e.g. usb://298d:1010"
        ) from None


def _serial_of(device: Any) -> str | None:
    import usb.core
    import usb.util

    if not device.iSerialNumber:
        return None
    try:
        serial: str | None = usb.util.get_string(device, device.iSerialNumber)
    except (usb.core.USBError, ValueError) as exc:
        raise map_usb_error(exc, "reading the serial number") from exc
    return serial


def _select(devices: list[Any], url: DeviceURL) -> Any:
    serial = url.param("serial")
    if url.param("bus") is not None or url.param("address") is not None:
        bus = url.int_param("bus", -1)
        address = url.int_param("address", -1)
        devices = [d for d in devices if bus in (-1, d.bus) and address in (-1, d.address)]
    if serial is not None:
        devices = [d for d in devices if _serial_of(d) == serial]
    if not devices:
        where = "" if url.raw.endswith(url.host) else " matching " + url.raw.split("?", 1)[-1]
        raise DeviceNotFound(
            f"No NB-1010-U fingerprint scanner{where} is attached: plug in the scanner "
            "(or check the device URL with 'station device list')."
        )
    return devices[0]


def open_usb(url: DeviceURL, *, trace: TextIO | None = None) -> NB1010Scanner:
    ids = parse_usb_id(url.host, url.raw)
    if ids not in KNOWN_IDS:
        known = ", ".join(f"usb://{v:04x}:{d:04x}" for v, d in sorted(KNOWN_IDS))
        raise UnsupportedURL(f"No driver for USB device {url.host}: supported scanners are {known}.")
    device = _select(find_devices(*ids), url)
    link = PyUsbLink(device, interface=p.INTERFACE, ep_out=p.EP_OUT, ep_in=p.EP_IN, trace=trace)
    return NB1010Scanner(link, url=url.raw)
