"""Arrivals and departures of scanners (and cameras) as events, with their device URLs.

Two backends behind one interface:

* ``udev``: a pyudev netlink monitor on the tty, usb and video4linux subsystems (needs a running
  udevd, as on the appliance);
* ``poll``: compares snapshots of ``/dev/serial/by-id/*``, ``/dev/ttyUSB*``, ``/dev/ttyACM*``,
  ``/dev/station-scanner``, ``/dev/video*``, known USB scanners in sysfs, and any extra ``paths``
  (a symlink such as the one ``station sim r30x --link`` makes counts as present while its target
  exists). Works everywhere, including containers without udev.

``backend="auto"`` picks udev when udevd is running, else polling; extra ``paths`` are always polled.

    stop = threading.Event()
    watch_scanners(print, stop=stop, paths=["/tmp/scanner"])   # blocks until stop is set
"""

from __future__ import annotations

import glob
import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from drivers.discovery import KNOWN_USB_SCANNERS

log = logging.getLogger(__name__)

Action = Literal["add", "remove"]

SERIAL_GLOBS = ("/dev/serial/by-id/*", "/dev/ttyUSB*", "/dev/ttyACM*", "/dev/station-scanner")
CAMERA_GLOBS = ("/dev/video*",)
USB_SYSFS = "/sys/bus/usb/devices"
UDEV_SUBSYSTEMS = ("tty", "usb", "video4linux")


@dataclass(frozen=True)
class HotplugEvent:
    action: Action
    url: str  # what open_device() takes: serial:///dev/ttyUSB0, usb://298d:1010, camera:///dev/video0
    kind: str  # "fingerprint" or "camera"
    path: str = ""  # the device node or link, when there is one


EventCallback = Callable[[HotplugEvent], None]


def _present(path: str) -> bool:
    return os.path.exists(path)  # follows symlinks: a dangling link is an absent device


def _serial_entry(path: str) -> tuple[str, str, str]:
    return (f"serial://{path}", "fingerprint", path)


def _usb_scanners(sysfs: str = USB_SYSFS) -> Iterator[tuple[str, str, str]]:
    for dev in sorted(glob.glob(os.path.join(sysfs, "*"))):
        try:
            vendor = Path(dev, "idVendor").read_text().strip().lower()
            product = Path(dev, "idProduct").read_text().strip().lower()
        except OSError:
            continue
        if f"{vendor}:{product}" in KNOWN_USB_SCANNERS:
            yield (f"usb://{vendor}:{product}", "fingerprint", dev)


def snapshot(paths: Iterable[str] = (), *, system: bool = True) -> dict[str, tuple[str, str]]:
    """url -> (kind, path) of every device present now."""
    found: dict[str, tuple[str, str]] = {}
    entries: list[tuple[str, str, str]] = []
    if system:
        for pattern in SERIAL_GLOBS:
            entries += [_serial_entry(p) for p in sorted(glob.glob(pattern)) if _present(p)]
        for pattern in CAMERA_GLOBS:
            entries += [(f"camera://{p}", "camera", p) for p in sorted(glob.glob(pattern))]
        entries += list(_usb_scanners())
    entries += [_serial_entry(str(p)) for p in paths if _present(str(p))]
    for url, kind, path in entries:
        found.setdefault(url, (kind, path))
    return found


def diff(before: dict[str, tuple[str, str]], after: dict[str, tuple[str, str]]) -> list[HotplugEvent]:
    """Events that turn snapshot ``before`` into ``after`` (removals first)."""
    events = [
        HotplugEvent("remove", url, kind, path) for url, (kind, path) in before.items() if url not in after
    ]
    events += [
        HotplugEvent("add", url, kind, path) for url, (kind, path) in after.items() if url not in before
    ]
    return events


def udev_available() -> bool:
    """True when pyudev imports and a udev daemon is running to publish events."""
    try:
        import pyudev  # noqa: F401
    except ImportError:
        return False
    return os.path.exists("/run/udev/control")


def event_from_udev(device: Any, action_override: str | None = None) -> HotplugEvent | None:
    """Map a pyudev device (its event's action, or ``action``) to a HotplugEvent, or None when it is
    not a scanner or camera."""
    raw = action_override or device.action
    if raw not in ("add", "remove"):
        return None
    action: Action = "add" if raw == "add" else "remove"
    subsystem = device.subsystem
    node = device.device_node or ""
    if subsystem == "tty" and (node.startswith("/dev/ttyUSB") or node.startswith("/dev/ttyACM")):
        links = sorted(
            str(link) for link in device.device_links if str(link).startswith("/dev/serial/by-id/")
        )
        path = links[0] if links else node
        return HotplugEvent(action, f"serial://{path}", "fingerprint", path)
    if subsystem == "video4linux" and node.startswith("/dev/video"):
        return HotplugEvent(action, f"camera://{node}", "camera", node)
    if subsystem == "usb" and device.device_type == "usb_device":
        vendor = str(device.properties.get("ID_VENDOR_ID", "")).lower()
        product = str(device.properties.get("ID_MODEL_ID", "")).lower()
        if not vendor and device.properties.get("PRODUCT"):
            parts = str(device.properties["PRODUCT"]).split("/")  # "298d/1010/xxx" in hex, no padding
            if len(parts) >= 2:
                vendor, product = parts[0].zfill(4), parts[1].zfill(4)
        if f"{vendor}:{product}" in KNOWN_USB_SCANNERS:
            return HotplugEvent(action, f"usb://{vendor}:{product}", "fingerprint", str(device.sys_path))
    return None


class HotplugMonitor:
    """Watches for devices; iterate ``events(stop)`` or call ``watch_scanners``.

    ``paths``: extra serial device paths (symlinks included) to watch by polling.
    ``system``: also watch the system's device nodes (off in tests that only watch ``paths``).
    ``report_existing``: begin with an "add" for every device already present.
    """

    def __init__(
        self,
        *,
        backend: Literal["auto", "udev", "poll"] = "auto",
        poll_interval: float = 1.0,
        paths: Iterable[str | os.PathLike[str]] | None = None,
        system: bool = True,
        report_existing: bool = False,
    ) -> None:
        if backend == "auto":
            backend = "udev" if system and udev_available() else "poll"
        self.backend = backend
        self.poll_interval = poll_interval
        self.paths = [os.fspath(p) for p in (paths or [])]
        self.system = system
        self.report_existing = report_existing

    def events(self, stop: threading.Event) -> Iterator[HotplugEvent]:
        """Yield events until ``stop`` is set (checked at least every ``poll_interval`` seconds)."""
        if self.backend == "udev":
            yield from self._udev_events(stop)
        else:
            yield from self._poll_events(stop, system=self.system)

    def _poll_events(self, stop: threading.Event, *, system: bool) -> Iterator[HotplugEvent]:
        state: dict[str, tuple[str, str]] = {}
        first = True
        while not stop.is_set():
            current = snapshot(self.paths, system=system)
            if first and not self.report_existing:
                state = current
            else:
                yield from diff(state, current)
                state = current
            first = False
            stop.wait(self.poll_interval)

    def _udev_events(self, stop: threading.Event) -> Iterator[HotplugEvent]:
        import pyudev

        context = pyudev.Context()
        monitor = pyudev.Monitor.from_netlink(context)
        for subsystem in UDEV_SUBSYSTEMS:
            monitor.filter_by(subsystem)
        monitor.start()
        state = snapshot(self.paths, system=False)  # the extra paths are polled alongside
        if self.report_existing:
            for subsystem in UDEV_SUBSYSTEMS:
                for device in context.list_devices(subsystem=subsystem):
                    event = event_from_udev(device, "add")
                    if event is not None:
                        yield event
            yield from diff({}, state)
        while not stop.is_set():
            device = monitor.poll(timeout=self.poll_interval)
            if device is not None:
                event = event_from_udev(device)
                if event is not None:
                    yield event
            if self.paths:
                current = snapshot(self.paths, system=False)
                yield from diff(state, current)
                state = current


def watch_scanners(
    callback: EventCallback,
    *,
    stop: threading.Event,
    poll_interval: float = 1.0,
    paths: Iterable[str | os.PathLike[str]] | None = None,
    backend: Literal["auto", "udev", "poll"] = "auto",
    system: bool = True,
    report_existing: bool = False,
) -> None:
    """Call ``callback(event)`` for every arrival and departure until ``stop`` is set."""
    monitor = HotplugMonitor(
        backend=backend,
        poll_interval=poll_interval,
        paths=paths,
        system=system,
        report_existing=report_existing,
    )
    log.info("hotplug.start backend=%s", monitor.backend)
    for event in monitor.events(stop):
        log.info("hotplug.%s kind=%s", event.action, event.kind)
        callback(event)
