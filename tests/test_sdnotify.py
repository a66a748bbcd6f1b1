"""The sd_notify client speaks systemd's datagram protocol and is silent outside systemd."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from station.sdnotify import Notifier


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    yield sock, path
    sock.close()


def test_ready_status_and_watchdog_reach_the_socket(listener: tuple[socket.socket, str]) -> None:
    sock, path = listener
    n = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())})
    assert n.enabled
    assert n.ping_interval() == 15.0
    assert n.ready("kiosk up")
    assert sock.recv(256) == b"READY=1\nSTATUS=kiosk up"
    assert n.watchdog(now=100.0)
    assert sock.recv(256) == b"WATCHDOG=1"
    # Within half the period a second ping is skipped; after it, sent again.
    assert not n.watchdog(now=110.0)
    assert n.watchdog(now=116.0)
    assert sock.recv(256) == b"WATCHDOG=1"


def test_watchdog_meant_for_another_process_is_ignored(listener: tuple[socket.socket, str]) -> None:
    _, path = listener
    n = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"})
    assert n.ping_interval() is None
    assert not n.watchdog(now=100.0)


def test_outside_systemd_everything_is_a_no_op() -> None:
    n = Notifier({})
    assert not n.enabled
    assert not n.ready()
    assert not n.watchdog()


def test_a_vanished_socket_does_not_raise(tmp_path: Path) -> None:
    n = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    assert not n.status("x")
