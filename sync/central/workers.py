"""``central serve --workers N``: N server processes on one machine sharing the listening ports.

Each worker is a forked process with its own event loop, database pool and its OWN listening
sockets bound with ``SO_REUSEPORT`` to the same ports, so the kernel spreads new connections evenly
over the workers. The parent binds first (so a port in use or an unreachable database is one
error line before anything starts), then forks the workers, closes its copies of their sockets
and supervises: SIGTERM/SIGINT stop every worker; a worker that dies is replaced with fresh
sockets (at most ``MAX_RESTARTS`` in ``RESTART_WINDOW_S``, then everything stops with an error).

Several workers need the PostgreSQL backend: the embedded SQLite backend keeps partial uploads
in per-process state and is refused with more than one worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from types import FrameType

from sync.central.home import CentralError, CentralHome

log = logging.getLogger("central.workers")
MAX_RESTARTS = 5
RESTART_WINDOW_S = 60.0
STOP_GRACE_S = 10.0


def listen_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket with SO_REUSEPORT (the other workers bind the same port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(1024)
        sock.set_inheritable(False)
    except BaseException:
        sock.close()
        raise
    return sock


def _worker(home: CentralHome, options: object, sockets: tuple[socket.socket, socket.socket]) -> int:
    """The body of one forked worker: serve on its sockets until SIGTERM."""
    from sync.central.server import ServeOptions, serve

    assert isinstance(options, ServeOptions)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve(home, options, stop=stop, sockets=sockets)

    try:
        asyncio.run(main())
    except CentralError as exc:
        print(f"error [{exc.code}]: {exc}", file=sys.stderr, flush=True)
        return 1
    except Exception:
        log.exception("worker.crashed")
        return 1
    return 0


def serve_workers(
    home: CentralHome, options: object, workers: int, ready: Callable[[str, int, int], None]
) -> None:
    """Bind, fork ``workers`` processes, print ready, and supervise them until told to stop."""
    from sync.central.database import configured_url, open_backend
    from sync.central.server import ServeOptions
    from sync.common.wire import enroll_port

    assert isinstance(options, ServeOptions)
    if configured_url(home) is None:
        raise CentralError(
            "--workers above 1 needs the PostgreSQL backend (the embedded SQLite one is single-process):"
            " run with --workers 1, or set up PostgreSQL ('central init --database URL', docs/scale.md)",
            code="central.workers_need_postgresql",
        )
    open_backend(home).close()  # reachable, schema current, this central's database: or one error line
    try:
        first_ingest = listen_socket(options.host, options.port)
        port = int(first_ingest.getsockname()[1])
        if options.enroll_port is not None:
            eport = options.enroll_port
        else:
            eport = enroll_port(port) if options.port else 0
        first_enroll = listen_socket(options.host, eport)
        eport = int(first_enroll.getsockname()[1])
    except OSError as exc:
        raise CentralError(
            f"cannot listen on {options.host}:{options.port}: {exc.strerror or exc}", code="central.listen"
        ) from exc

    children: dict[int, int] = {}
    stopping = False
    restarts: list[float] = []

    def spawn(slot: int, socks: tuple[socket.socket, socket.socket] | None = None) -> None:
        pair = socks or (listen_socket(options.host, port), listen_socket(options.host, eport))
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                code = _worker(home, options, pair)
            finally:
                os._exit(code)
        for s in pair:  # the parent keeps no listening socket: a dead worker's queue never fills
            s.close()
        children[pid] = slot

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    spawn(0, (first_ingest, first_enroll))
    for slot in range(1, workers):
        spawn(slot)
    ready(options.host, port, eport)
    failed = False
    deadline: float | None = None
    while children:
        if stopping and deadline is None:
            deadline = time.monotonic() + STOP_GRACE_S
        if deadline is not None and time.monotonic() > deadline:
            for pid in list(children):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG if stopping else 0)
        except ChildProcessError:
            break
        if pid == 0:
            time.sleep(0.05)  # stopping: poll the workers' exit until the grace period ends
            continue
        slot = children.pop(pid, -1)
        if slot < 0 or stopping:
            continue
        now = time.monotonic()
        restarts[:] = [t for t in restarts if now - t < RESTART_WINDOW_S] + [now]
        if len(restarts) > MAX_RESTARTS:
            print(
                f"error [central.workers_failing]: {len(restarts)} worker restarts within"
                f" {RESTART_WINDOW_S:.0f} s: stopping; see the log above",
                file=sys.stderr,
                flush=True,
            )
            failed = True
            on_signal(signal.SIGTERM, None)
            continue
        log.error("worker.died slot=%d: restarting", slot)
        spawn(slot)
    if failed:
        raise SystemExit(1)
