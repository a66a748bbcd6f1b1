"""Hotplug: the R30x simulator appearing, vanishing and coming back, seen by the polling backend."""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.hotplug import HotplugEvent, HotplugMonitor, diff, snapshot, watch_scanners
from drivers.r30x.simulator import R30xSimulator


@pytest.fixture
def watcher(tmp_path: Path) -> Iterator[tuple[Path, queue.Queue[HotplugEvent]]]:
    link = tmp_path / "scanner"
    events: queue.Queue[HotplugEvent] = queue.Queue()
    stop = threading.Event()
    thread = threading.Thread(
        target=watch_scanners,
        args=(events.put,),
        kwargs={"stop": stop, "poll_interval": 0.02, "paths": [link], "backend": "poll", "system": False},
        daemon=True,
    )
    thread.start()
    yield link, events
    stop.set()
    thread.join(timeout=5)
    assert not thread.is_alive()


def next_event(events: queue.Queue[HotplugEvent]) -> HotplugEvent:
    return events.get(timeout=5)


def test_simulator_arrives_leaves_and_returns(
    tmp_path: Path, watcher: tuple[Path, queue.Queue[HotplugEvent]]
) -> None:
    link, events = watcher
    sim = R30xSimulator(library_dir=tmp_path / "lib").start()
    try:
        sim.link(link)
        added = next_event(events)
        assert added == HotplugEvent("add", f"serial://{link}", "fingerprint", str(link))

        sim.unplug()
        assert not link.exists()
        assert next_event(events).action == "remove"

        sim.replug()
        assert next_event(events).action == "add"
    finally:
        sim.stop()
    removed = next_event(events)
    assert removed.action == "remove" and removed.url == f"serial://{link}"
    assert events.empty()


def test_dangling_link_is_absent(tmp_path: Path) -> None:
    link = tmp_path / "scanner"
    link.symlink_to(tmp_path / "nowhere")
    assert snapshot([str(link)], system=False) == {}


def test_report_existing_and_diff(tmp_path: Path) -> None:
    with R30xSimulator(library_dir=tmp_path / "lib") as sim:
        link = sim.link(tmp_path / "scanner")
        stop = threading.Event()
        monitor = HotplugMonitor(backend="poll", paths=[link], system=False, report_existing=True)
        first = next(iter(monitor.events(stop)))
        stop.set()
        assert first.action == "add" and first.path == str(link)
    before = {"serial:///dev/a": ("fingerprint", "/dev/a")}
    after = {"camera:///dev/video0": ("camera", "/dev/video0")}
    assert [e.action for e in diff(before, after)] == ["remove", "add"]


def test_auto_backend_without_udev_polls(tmp_path: Path) -> None:
    assert HotplugMonitor(paths=[tmp_path / "x"], system=False).backend == "poll"


UMOCKDEV_SCRIPT = """
import json, pyudev
from drivers.hotplug import event_from_udev, snapshot
ctx = pyudev.Context()
events = [event_from_udev(d, "add") for d in ctx.list_devices(subsystem="usb")]
print(json.dumps({
    "snapshot": snapshot(),
    "events": [[e.action, e.url, e.kind] for e in events if e is not None],
}))
"""


@pytest.mark.umockdev
@pytest.mark.skipif(shutil.which("umockdev-run") is None, reason="umockdev-run is not installed")
def test_usb_scanner_found_in_the_recorded_sysfs(fixtures_dir: Path) -> None:
    """The real NB-1010-U sysfs description under umockdev: polling and udev mapping both name it."""
    device = fixtures_dir / "usb" / "nb1010" / "device"
    result = subprocess.run(
        ["umockdev-run", "-d", str(device), "--", sys.executable, "-c", UMOCKDEV_SCRIPT],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).parent.parent,
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["snapshot"]["usb://298d:1010"][0] == "fingerprint"
    assert found["events"] == [["add", "usb://298d:1010", "fingerprint"]]
