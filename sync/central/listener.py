"""Guarded TCP listeners for central: connection caps, per-address limits and a TLS handshake deadline.

aiohttp's ``TCPSite`` hands every accepted socket to TLS and then to HTTP with no cap and a 60 s
handshake allowance, so a few hundred silent clients on the (unauthenticated) enrollment port
could hold all of central's file descriptors. :class:`GuardedListener` accepts plain TCP itself and,
before a byte of TLS is processed:

- refuses (``abort``: the descriptor is closed at once) a connection over the listener's total cap,
  over its per-address cap, or over the per-address rate of new connections;
- otherwise upgrades it with ``loop.start_tls`` under a handshake deadline and only then gives it
  to aiohttp's request handler (``web.Server``), whose ``keepalive_timeout`` closes a connection
  that does not finish its request headers in time (aiohttp arms it when the connection starts).

Each listener has its own descriptor budget (its cap); :func:`descriptor_budget` splits the
process's ``RLIMIT_NOFILE`` so that the enrollment port's cap plus a reserve for files and the
database can never starve the ingest port. A slot is released exactly once, when the connection
is lost, whether or not its handshake completed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import socket
import ssl
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

log = logging.getLogger("central.listener")
INGEST_BACKLOG = 128
ENROLL_BACKLOG = 64


class RateLimiter:
    """Token buckets per key (an address): ``rate`` per second, up to ``burst``; bounded memory."""

    def __init__(self, rate: float, burst: float, *, max_keys: int = 16384) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def retry_after(self, key: str, now: float | None = None) -> float | None:
        """Spend one token for ``key``: None when allowed, else the seconds until one is available."""
        t = time.monotonic() if now is None else now
        tokens, last = self._buckets.pop(key, (self.burst, t))
        tokens = min(self.burst, tokens + (t - last) * self.rate)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, t)
            allowed = True
        else:
            self._buckets[key] = (tokens, t)
            allowed = False
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)  # the least recently seen address
        return None if allowed else (1.0 - tokens) / self.rate


@dataclass(frozen=True)
class ListenerLimits:
    """What one listener allows; ``None`` turns a per-address limit off."""

    max_connections: int
    backlog: int = INGEST_BACKLOG
    handshake_timeout_s: float = 15.0
    max_per_address: int | None = None
    connect_rate: float | None = None  # new connections per second per address
    connect_burst: float = 20.0


def descriptor_budget(enroll_share: float = 0.125, reserve: int = 256) -> tuple[int, int]:
    """(ingest cap, enrollment cap) from ``RLIMIT_NOFILE``, raised to its hard limit first.

    The reserve is for the database, blob files, the verifier workers' pipes and the CRL; each
    listener's backlog is also kept free, because asyncio accepts up to ``backlog`` sockets in one
    go before any of them can be admitted or refused.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = 65536 if hard == resource.RLIM_INFINITY else min(hard, 1 << 20)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
    usable = max(64, soft - reserve - INGEST_BACKLOG - ENROLL_BACKLOG)
    enroll = max(16, min(1024, int(usable * enroll_share)))
    return max(16, usable - enroll), enroll


class _Link(asyncio.Protocol):
    """Sits between the TLS transport and aiohttp's handler; releases the listener slot when lost.

    Until the handshake has finished and the handler is attached, data is held (a TLS 1.3 client
    sends its request right behind its Finished message, before ``start_tls`` returns).
    """

    def __init__(self, release: Callable[[], None]) -> None:
        self._release: Callable[[], None] | None = release
        self._handler: asyncio.Protocol | None = None
        self._held: list[bytes] = []
        self._eof = False
        self._paused = False
        self.lost = False

    def attach(self, handler: asyncio.Protocol, transport: asyncio.Transport) -> None:
        if self.lost:
            return
        self._handler = handler
        handler.connection_made(transport)
        for data in self._held:
            handler.data_received(data)
        self._held.clear()
        if self._paused:
            handler.pause_writing()
        if self._eof:
            handler.eof_received()

    def data_received(self, data: bytes) -> None:
        if self._handler is None:
            self._held.append(data)
        else:
            self._handler.data_received(data)

    def eof_received(self) -> bool | None:
        if self._handler is None:
            self._eof = True
            return None
        return self._handler.eof_received()

    def pause_writing(self) -> None:
        if self._handler is None:
            self._paused = True
        else:
            self._handler.pause_writing()

    def resume_writing(self) -> None:
        if self._handler is None:
            self._paused = False
        else:
            self._handler.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self._release is not None:
            release, self._release = self._release, None
            release()
        if self._handler is not None:
            self._handler.connection_lost(exc)


class _Gate(asyncio.Protocol):
    """The plain-TCP protocol of an accepted socket: admit or refuse, then hand over to TLS."""

    def __init__(self, listener: GuardedListener) -> None:
        self.listener = listener

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.listener.admit(transport)

    def data_received(self, data: bytes) -> None:  # pragma: no cover - reading is paused at once
        pass


class GuardedListener:
    """One listening socket in front of an aiohttp ``web.Server``, with :class:`ListenerLimits`."""

    def __init__(
        self, name: str, server: web.Server, context: ssl.SSLContext, limits: ListenerLimits
    ) -> None:
        self.name = name
        self.server = server
        self.context = context
        self.limits = limits
        self.active = 0
        self.refused = 0
        self.handshake_failures = 0
        self._per_address: dict[str, int] = {}
        self._rate = (
            RateLimiter(limits.connect_rate, limits.connect_burst)
            if limits.connect_rate is not None
            else None
        )
        self._pending: set[asyncio.Transport] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._asyncio_server: asyncio.Server | None = None

    # -- admission ------------------------------------------------------------------------
    def _refuse(self, transport: asyncio.Transport, why: str) -> None:
        self.refused += 1
        if self.refused % 100 == 1:
            log.warning("listener.refused listener=%s reason=%s total=%d", self.name, why, self.refused)
        transport.abort()

    def admit(self, transport: asyncio.Transport) -> None:
        transport.pause_reading()  # nothing is read before the decision and the TLS hand-over
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) and peer else "?"
        limits = self.limits
        if self.active >= limits.max_connections:
            return self._refuse(transport, "cap")
        if limits.max_per_address is not None and self._per_address.get(address, 0) >= limits.max_per_address:
            return self._refuse(transport, "per_address")
        if self._rate is not None and self._rate.retry_after(address) is not None:
            return self._refuse(transport, "rate")
        self.active += 1
        self._per_address[address] = self._per_address.get(address, 0) + 1
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            self.active -= 1
            left = self._per_address.get(address, 1) - 1
            if left <= 0:
                self._per_address.pop(address, None)
            else:
                self._per_address[address] = left

        task = asyncio.get_running_loop().create_task(self._upgrade(transport, release))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _upgrade(self, transport: asyncio.Transport, release: Callable[[], None]) -> None:
        link = _Link(release)
        self._pending.add(transport)
        try:
            tls = await asyncio.get_running_loop().start_tls(
                transport,
                link,
                self.context,
                server_side=True,
                ssl_handshake_timeout=self.limits.handshake_timeout_s,
            )
        except (OSError, ssl.SSLError, TimeoutError, ConnectionError, asyncio.CancelledError):
            self.handshake_failures += 1
            transport.abort()
            release()  # connection_lost also releases; once only
            return
        finally:
            self._pending.discard(transport)
        if tls is None or link.lost:
            release()
            return
        link.attach(self.server(), tls)

    # -- lifecycle ------------------------------------------------------------------------
    async def start(self, host: str, port: int, *, sock: socket.socket | None = None) -> int:
        """Listen (on ``sock`` when given); returns the bound port."""
        loop = asyncio.get_running_loop()
        if sock is not None:
            self._asyncio_server = await loop.create_server(
                lambda: _Gate(self), sock=sock, backlog=self.limits.backlog
            )
        else:
            self._asyncio_server = await loop.create_server(
                lambda: _Gate(self), host, port, backlog=self.limits.backlog, reuse_address=True
            )
        bound = self._asyncio_server.sockets[0].getsockname()
        return int(bound[1])

    async def close(self) -> None:
        if self._asyncio_server is not None:
            self._asyncio_server.close()
            await self._asyncio_server.wait_closed()
        for transport in list(self._pending):
            transport.abort()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
