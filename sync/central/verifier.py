"""Packet checks off central's event loop, in killable worker processes with a time and memory budget.

Finalise hands the received bytes to :class:`VerifierPool`; a worker process checks size and
SHA-256, parses the envelope with the strict reader and verifies the station's signature, and
answers with the header fields central compares (station id, packet id). The event loop only
moves bytes.

Why processes and not threads: the strict reader (``packetformat.cbor``) is linear in its input,
so in principle a thread with a timeout would do, but a thread cannot be stopped, and the checks
also run code we did not write (OpenSSL's key and signature handling). A worker process can be
killed. Each worker caps its own address space (``RLIMIT_AS``: its size at start plus the memory
budget), so an allocation beyond the budget fails inside the worker (``MemoryError``) and cannot
take central's memory; the pool kills a worker that has not answered within the time budget and
starts a replacement. Either way the upload gets a clear refusal (``packet_too_costly``) and the
other stations are not affected: they are served by the event loop and the other workers.

Workers are fresh interpreters (``python -m sync.central.verifier``), never forked from the
multi-threaded server; they talk over their stdin and stdout in length-prefixed frames of plain
bytes and JSON, never pickles. A watchdog timer per job kills the worker at the time budget.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import json
import logging
import os
import resource
import struct
import subprocess
import sys
import threading
from dataclasses import dataclass
from typing import IO, Any

from sync.central.home import CentralError

log = logging.getLogger("central.verifier")

DEFAULT_WORKERS = 2
DEFAULT_TIME_BUDGET_S = 10.0
DEFAULT_MEMORY_BUDGET = 256 * 1024 * 1024
DEFAULT_QUEUE_WAIT_S = 30.0


class VerifyRefused(CentralError):
    """The packet was not accepted; ``code`` is ``verify.invalid`` (a bad packet), ``verify.budget``
    (it cost more time or memory than allowed) or ``verify.busy`` (no worker was free in time: retry
    later)."""

    code = "verify.invalid"


@dataclass(frozen=True)
class Verified:
    station_id: str
    packet_id: str


# -- the worker side ---------------------------------------------------------------------------
def _address_space() -> int:
    with open("/proc/self/statm", encoding="ascii") as fh:
        return int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _check(key_der: bytes, envelope: bytes, sha: str, size: int, max_size: int) -> dict[str, Any]:
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    from packetformat.packet import PacketError, verify

    if len(envelope) != size:
        return {"error": "invalid", "message": f"received {len(envelope)} bytes, the packet has {size}"}
    if hashlib.sha256(envelope).hexdigest() != sha:
        return {"error": "invalid", "message": "the received bytes do not match the packet's SHA-256"}
    key = load_der_public_key(key_der)
    if not isinstance(key, ec.EllipticCurvePublicKey):
        return {"error": "invalid", "message": "the station certificate key is not EC"}
    try:
        env = verify(envelope, key, max_size=max_size)
    except PacketError as exc:
        return {
            "error": "invalid",
            "message": f"the packet is invalid or not signed by this station: {exc}",
            "reason": exc.code,
        }
    return {"station_id": env.header.station_id, "packet_id": env.header.packet_id}


_FRAME = struct.Struct(">I")
_MAX_FRAME = 64 * 1024 * 1024


def _read_frame(stream: IO[bytes]) -> bytes:
    head = stream.read(_FRAME.size)
    if len(head) != _FRAME.size:
        raise EOFError("the pipe closed")
    (length,) = _FRAME.unpack(head)
    if length > _MAX_FRAME:
        raise EOFError("a frame over the limit")
    body = stream.read(length)
    if len(body) != length:
        raise EOFError("the pipe closed in a frame")
    return body


def _write_frames(stream: IO[bytes], *frames: bytes) -> None:
    for frame in frames:
        stream.write(_FRAME.pack(len(frame)))
        stream.write(frame)
    stream.flush()


def worker_main(memory_budget: int) -> None:
    """Serve jobs on stdin/stdout until stdin closes: (key, envelope, job json) in, one JSON out."""
    import cryptography.hazmat.primitives.serialization  # noqa: F401  # loaded before the limit

    import packetformat.packet  # noqa: F401

    limit = _address_space() + memory_budget
    try:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (OSError, ValueError) as exc:  # e.g. a unit whose SystemCallFilter denies @resources
        # The time budget and the linear reader still hold; say so where the operator looks.
        print(f"central verifier: no memory budget ({exc}); allow setrlimit in the unit", file=sys.stderr)
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    while True:
        try:
            key_der, envelope, raw_job = _read_frame(inp), _read_frame(inp), _read_frame(inp)
            job = json.loads(raw_job)
            answer = _check(key_der, envelope, str(job["sha256"]), int(job["size"]), int(job["max_size"]))
            del envelope
        except (EOFError, OSError, ValueError, KeyError):
            return
        except MemoryError:
            answer = {"error": "memory", "message": "checking the packet needs more memory than allowed"}
        try:
            _write_frames(out, json.dumps(answer).encode())
        except (OSError, MemoryError):
            return
        if answer.get("error") == "memory":
            return  # a worker that ran out of memory is not trusted with the next job


# -- the pool side -----------------------------------------------------------------------------
class _Worker:
    """One ``python -m sync.central.verifier`` process and its pipes."""

    def __init__(self, memory_budget: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sync.central.verifier", str(memory_budget)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.stdin: IO[bytes] = self.process.stdin
        self.stdout: IO[bytes] = self.process.stdout

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        for stream in (self.stdin, self.stdout):
            with contextlib.suppress(OSError):
                stream.close()


class VerifierPool:
    """A few worker processes; :meth:`verify` queues for one, with a wait bound and a budget."""

    def __init__(
        self,
        *,
        workers: int = DEFAULT_WORKERS,
        time_budget_s: float = DEFAULT_TIME_BUDGET_S,
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
        queue_wait_s: float = DEFAULT_QUEUE_WAIT_S,
    ) -> None:
        self.size = max(1, workers)
        self.time_budget_s = time_budget_s
        self.memory_budget = memory_budget
        self.queue_wait_s = queue_wait_s
        self.replaced = 0  # workers killed or lost and started again (for metrics and tests)
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()
        self._threads = concurrent.futures.ThreadPoolExecutor(self.size, thread_name_prefix="verifier")
        self._slots: asyncio.Semaphore | None = None
        self._closed = False

    def _take(self) -> _Worker:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return _Worker(self.memory_budget)

    def _give_back(self, worker: _Worker) -> None:
        with self._lock:
            if not self._closed:
                self._idle.append(worker)
                return
        worker.kill()

    def _replace(self, worker: _Worker) -> None:
        worker.kill()
        self.replaced += 1

    def _run(self, key_der: bytes, envelope: bytes, job: bytes, budget: float) -> dict[str, Any]:
        """On a pool thread: one job on one worker; a watchdog kills the worker at the budget."""
        worker = self._take()
        fired = threading.Event()

        def overrun() -> None:
            fired.set()
            with contextlib.suppress(OSError):
                worker.process.kill()

        watchdog = threading.Timer(budget, overrun)
        watchdog.start()
        try:
            _write_frames(worker.stdin, key_der, envelope, job)
            answer: dict[str, Any] = json.loads(_read_frame(worker.stdout))
        except (EOFError, OSError, ValueError):
            watchdog.cancel()
            self._replace(worker)
            if fired.is_set():
                log.warning("verify.timeout budget=%gs", budget)
                return {"error": "budget", "message": f"checking the packet took more than {budget:g} s"}
            log.warning("verify.worker_lost")
            return {"error": "budget", "message": "checking the packet exhausted its worker's budget"}
        watchdog.cancel()
        if fired.is_set() or answer.get("error") == "memory":
            self._replace(worker)
            log.warning("verify.memory")
            return {"error": "budget", "message": str(answer.get("message", "over budget"))}
        self._give_back(worker)
        return answer

    async def verify(
        self,
        envelope: bytes,
        public_key_der: bytes,
        *,
        sha256: str,
        size: int,
        max_size: int,
        time_budget_s: float | None = None,
    ) -> Verified:
        """Check ``envelope`` in a worker; :class:`VerifyRefused` with the reason otherwise."""
        if self._closed:
            raise VerifyRefused("central is shutting down: retry later", code="verify.busy")
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.size)
        try:
            await asyncio.wait_for(self._slots.acquire(), self.queue_wait_s)
        except TimeoutError:
            raise VerifyRefused("every packet checker is busy: retry later", code="verify.busy") from None
        try:
            job = json.dumps({"sha256": sha256, "size": size, "max_size": max_size}).encode()
            budget = self.time_budget_s if time_budget_s is None else time_budget_s
            loop = asyncio.get_running_loop()
            answer = await loop.run_in_executor(
                self._threads, self._run, public_key_der, envelope, job, budget
            )
        finally:
            self._slots.release()
        error = answer.get("error")
        if error is not None:
            code = "verify.invalid" if error == "invalid" else "verify.budget"
            raise VerifyRefused(str(answer.get("message", "")), code=code)
        return Verified(station_id=str(answer["station_id"]), packet_id=str(answer["packet_id"]))

    def warm(self) -> None:
        """Start every worker now (so the first packets do not pay for it)."""
        workers = [self._take() for _ in range(self.size)]
        for worker in workers:
            self._give_back(worker)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        self._threads.shutdown(wait=True, cancel_futures=True)
        for worker in idle:
            worker.kill()


if __name__ == "__main__":
    worker_main(int(sys.argv[1]))
