"""The systemd notification protocol (``sd_notify``): readiness, status and watchdog pings.

A service started with ``Type=notify`` and ``WatchdogSec=`` must tell systemd it is ready and then
ping it from its main loop; if the pings stop (a frozen kiosk, a wedged agent), systemd kills and
restarts it. The protocol is one datagram on the unix socket named by ``$NOTIFY_SOCKET``; outside
systemd every call here is a no-op, so the same code runs in development and tests.
"""

from __future__ import annotations

import os
import socket
import time


class Notifier:
    """Sends ``READY=1``, ``STATUS=...`` and ``WATCHDOG=1`` to systemd when it is listening."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        # An abstract socket is written with a leading "@" and means a leading NUL byte.
        self._address = "\0" + address[1:] if address.startswith("@") else address
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        watchdog_for_us = usec.isdigit() and (not pid or pid == str(os.getpid()))
        self.watchdog_seconds: float | None = int(usec) / 1e6 if watchdog_for_us else None
        self._last_ping = 0.0

    @property
    def enabled(self) -> bool:
        return bool(self._address)

    def send(self, message: str) -> bool:
        """Send one raw notification; False when systemd is not listening or the send failed."""
        if not self._address:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(self._address)
                sock.sendall(message.encode("utf-8"))
        except OSError:
            return False
        return True

    def ready(self, status: str = "") -> bool:
        return self.send("READY=1" + (f"\nSTATUS={status}" if status else ""))

    def status(self, text: str) -> bool:
        return self.send(f"STATUS={text}")

    def stopping(self) -> bool:
        return self.send("STOPPING=1")

    def ping_interval(self) -> float | None:
        """How often to ping: half the watchdog period, as systemd recommends; None without a watchdog."""
        return None if self.watchdog_seconds is None else self.watchdog_seconds / 2

    def watchdog(self, *, now: float | None = None) -> bool:
        """Ping the watchdog, at most once per half period (cheap to call on every loop turn)."""
        interval = self.ping_interval()
        if interval is None:
            return False
        t = time.monotonic() if now is None else now
        if t - self._last_ping < interval:
            return False
        self._last_ping = t
        return self.send("WATCHDOG=1")
