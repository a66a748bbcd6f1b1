"""What is plugged in, as device URLs: serial ports, known USB scanners, cameras.

``list_devices()`` reads sysfs (``sysfs_root``, normally ``/sys``) and pyserial's
port list; it never opens a device, so it is safe to call while another
process is capturing. Each entry carries the URL that ``drivers.url.open_device``
accepts, so ``station device list`` output can be pasted into other commands.
``presence(url)`` says whether a configured device is there, the same way (the station's status
snapshot and its heartbeat ask it; the kiosk owns the devices, so nothing is opened).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from drivers.camera.enumerate import list_cameras
from drivers.nb1010 import protocol as nb1010

SYSFS = Path("/sys")

# vendor:product -> (kind, model) of the USB fingerprint scanners with a driver here: the one table,
# made from the ids each USB backend declares in its protocol module (hotplug reads it too).
KNOWN_USB_SCANNERS: dict[str, tuple[str, str]] = {
    f"{nb1010.VENDOR_ID:04x}:{nb1010.PRODUCT_ID:04x}": ("fingerprint", nb1010.MODEL),
}

# USB-serial adapters commonly wired to R30x/ZFM modules (R305, R307, R503, AS608)
SERIAL_ADAPTERS: dict[str, str] = {
    "10c4:ea60": "CP210x serial adapter",
    "1a86:7523": "CH340 serial adapter",
    "0403:6001": "FTDI FT232 serial adapter",
    "067b:2303": "PL2303 serial adapter",
}


@dataclass(frozen=True)
class DiscoveredDevice:
    url: str  # what open_device() takes
    kind: str  # "fingerprint", "serial" or "camera"
    name: str
    usb_id: str | None  # "vvvv:pppp" when the device (or its adapter) is on USB
    path: str | None  # device node, e.g. /dev/ttyUSB0, /dev/bus/usb/001/003, /dev/video0

    def as_dict(self) -> dict[str, str | None]:
        return asdict(self)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None


def _usb_id_of(sys_dir: Path, sysfs_root: Path) -> str | None:
    """vendor:product of the nearest USB device at or above ``sys_dir`` (bounded walk)."""
    try:
        current = sys_dir.resolve()
        root = sysfs_root.resolve()
    except OSError:
        return None
    for _ in range(16):
        vendor, product = _read(current / "idVendor"), _read(current / "idProduct")
        if vendor and product:
            return f"{vendor.lower()}:{product.lower()}"
        if current == root or current.parent == current or root not in current.parents:
            return None
        current = current.parent
    return None


# -- serial ports ---------------------------------------------------------------------------------


def _default_ports() -> Iterable[Any]:
    from serial.tools import list_ports

    ports: list[Any] = list_ports.comports()
    return ports


def serial_ports(ports: Callable[[], Iterable[Any]] | None = None) -> list[DiscoveredDevice]:
    """Serial ports from pyserial, each with its USB adapter's id when there is one."""
    try:
        found = list((ports or _default_ports)())
    except ImportError:
        return []
    result = []
    for port in sorted(found, key=lambda p: str(p.device)):
        usb_id = f"{port.vid:04x}:{port.pid:04x}" if port.vid is not None and port.pid is not None else None
        adapter = SERIAL_ADAPTERS.get(usb_id or "")
        description = port.description if port.description and port.description != "n/a" else None
        name = adapter or description or "serial port"
        if adapter and description and description not in adapter:
            name = f"{adapter} ({description})"
        result.append(
            DiscoveredDevice(
                url=f"serial://{port.device}", kind="serial", name=name, usb_id=usb_id, path=str(port.device)
            )
        )
    return result


# -- USB scanners -----------------------------------------------------------------------------------


def usb_scanners(sysfs_root: Path = SYSFS) -> list[DiscoveredDevice]:
    """Attached USB fingerprint scanners this package has a driver for."""
    devices_dir = sysfs_root / "bus" / "usb" / "devices"
    try:
        entries = sorted(devices_dir.iterdir())
    except OSError:
        return []
    hits: list[tuple[str, int, int, str]] = []
    for entry in entries:
        vendor, product = _read(entry / "idVendor"), _read(entry / "idProduct")
        if not vendor or not product:
            continue  # an interface, not a device
        usb_id = f"{vendor.lower()}:{product.lower()}"
        if usb_id not in KNOWN_USB_SCANNERS:
            continue
        try:
            bus = int(_read(entry / "busnum") or "0")
            address = int(_read(entry / "devnum") or "0")
        except ValueError:
            bus = address = 0
        hits.append((usb_id, bus, address, entry.name))
    result = []
    for usb_id, bus, address, _name in hits:
        kind, model = KNOWN_USB_SCANNERS[usb_id]
        several = sum(1 for h in hits if h[0] == usb_id) > 1
        url = f"usb://{usb_id}" + (f"?bus={bus}&address={address}" if several else "")
        path = f"/dev/bus/usb/{bus:03d}/{address:03d}" if bus and address else None
        result.append(DiscoveredDevice(url=url, kind=kind, name=model, usb_id=usb_id, path=path))
    return result


# -- cameras -------------------------------------------------------------------------------------


def cameras(sysfs_root: Path = SYSFS) -> list[DiscoveredDevice]:
    """Cameras, as the camera backend enumerates them (``drivers.camera.enumerate``)."""
    return [
        DiscoveredDevice(url=c.url, kind="camera", name=c.name, usb_id=c.usb_id, path=c.path)
        for c in list_cameras(sysfs_root=sysfs_root)
    ]


def list_devices(
    *, sysfs_root: Path = SYSFS, ports: Callable[[], Iterable[Any]] | None = None
) -> list[DiscoveredDevice]:
    """Every device a station could use: USB scanners, serial ports, cameras (in that order)."""
    return [*usb_scanners(sysfs_root), *serial_ports(ports), *cameras(sysfs_root)]


def discover() -> list[DiscoveredDevice]:
    """``list_devices()`` on the running system (the name the kiosk's technician screen calls)."""
    return list_devices()


Presence = Literal["ok", "missing", "simulated", "unconfigured", "unknown"]


def _usb_attached(usb_id: str, sysfs_root: Path) -> bool:
    try:
        entries = sorted((sysfs_root / "bus" / "usb" / "devices").iterdir())
    except OSError:
        return False
    for entry in entries:
        vendor, product = _read(entry / "idVendor"), _read(entry / "idProduct")
        if vendor and product and f"{vendor.lower()}:{product.lower()}" == usb_id:
            return True
    return False


def presence(url: str, *, sysfs_root: Path = SYSFS) -> Presence:
    """``ok``, ``missing``, ``simulated``, ``unconfigured`` (no URL) or ``unknown`` for a device URL.

    A serial port or camera is there when its device node is; a USB device when sysfs lists its
    vendor:product id. Nothing is opened."""
    if not url:
        return "unconfigured"
    parts = urlsplit(url)
    if parts.scheme == "sim":
        return "simulated"
    if parts.scheme in ("serial", "camera"):
        return "ok" if Path(parts.path).exists() else "missing"
    if parts.scheme == "usb":
        ids = parts.netloc.lower().split(":")
        if len(ids) == 2 and all(len(i) == 4 for i in ids):
            return "ok" if _usb_attached(":".join(ids), sysfs_root) else "missing"
    return "unknown"
