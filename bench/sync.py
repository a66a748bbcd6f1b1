"""Sync goodput: the station agent uploading N sealed packets over mutual TLS vs a plain HTTPS PUT.

What it does, all on 127.0.0.1 with ephemeral ports and a fresh temporary directory:

1. starts the real central (``central init`` + ``central serve --port 0``, a subprocess);
2. makes a station with the ``station`` CLI (``init --demo``, ``enroll --example`` once for a
   realistic enrollment with WSQ fingers and a face, ~133 KB sealed), provisions it with a one-time
   token, then seals N packets of that enrollment in this process with ``station.commit`` (what
   ``station enroll --from-json`` does, without a process per packet);
3. starts a loopback TCP relay in front of central that counts the bytes of every connection,
   both ways (TLS records, handshakes, HTTP headers, everything on the wire);
4. through that relay, side by side (plain, agent, plain again; the plain figure is the mean of its
   two runs, so neither side gets the warm or the cold machine alone):
   (a) the sync agent in this process (``sync.agent.cli.build_agent`` then one ``sync_pass``: the
       status GET, 256 KB chunks with their SHA-256, finalise, receipt verified and stored with the
       ack in one transaction), as ``station sync once`` does;
   (b) a plain HTTPS PUT with httpx of the same envelope bytes, same mutual-TLS client certificate,
       one keep-alive connection, to central's own chunk route ``PUT /v1/packets/{id}?offset=0``
       with the whole envelope as one chunk, into fresh packet ids it is never asked to finalise.
       That route is the only plain upload route central has; it checks the chunk's SHA-256 and
       writes it, but skips what only the agent pays for: finalise (parse, signature check, blob
       fsync, metadata commit, signed receipt) and the station's own ack transaction;
5. does 2 to 4 again with N fresh packets through a relay that also shapes the link (default
   20 Mbit/s each way and 40 ms round trip, ``--link-mbps`` / ``--link-rtt-ms``; 0 Mbit/s skips it):
   on loopback latency and bandwidth are almost free, so per-packet round trips and fsyncs are all
   there is to measure; a shaped link shows what they cost on a station's real uplink;
6. runs ``bench/central_ingest.py`` (50 concurrent simulated stations) and prints its results;
7. runs ``bench/central_stages.py``: what one packet costs central's durable store and the station's
   ack, stage by stage, in-process (the loopback gap; see docs/sync-protocol.md, "Loopback cost").

The relay runs in its own process (this script with a hidden ``--relay-to``): sharing this
process's GIL it would add up to a switch interval to every hop and tax the chattier agent.

Targets (issue 6): agent goodput / plain PUT goodput >= 0.8; wire bytes / payload bytes <= 1.05.
The headline (last line) is the ratio over the shaped link (a station's real uplink); the
loopback ratio, CPU-bound with both ends on this machine, is printed beside it.

    .venv/bin/python bench/sync.py                # 100 packets a round, central ingest 8 per station
    .venv/bin/python bench/sync.py --quick        # 30 packets a round, ingest --quick (under 60 s)
    .venv/bin/python bench/sync.py --packets 200 --link-mbps 10 --link-rtt-ms 80
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this folder comes first on sys.path, where bench/sync.py would hide the ``sync``
# package and bench/queue.py the standard library's ``queue``: put the repository there instead.
_BENCH = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _BENCH]
sys.path.insert(0, str(_BENCH.parent))

import argparse  # noqa: E402
import hashlib  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from contextlib import suppress  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from queue import Queue  # noqa: E402

import httpx  # noqa: E402

from packetformat.packet import uuid7  # noqa: E402
from station.home import StationHome  # noqa: E402
from station.session import open_station  # noqa: E402
from sync.agent.cli import build_agent  # noqa: E402
from sync.agent.client import ClientIdentity, tls_context  # noqa: E402
from sync.common.wire import HEADER_CHUNK_SHA256, HEADER_PACKET_SIZE, packet_path  # noqa: E402
from tests.sync_live import (  # noqa: E402
    Central,
    accepted_pairs,
    commit_packets,
    make_example,
    provision,
    running_central,
    set_config,
    station_cli,
)

STATION_ID = "bench-sync"
MAX_CONNECTIONS = 10_000  # the relay's bound


@dataclass
class CountingRelay:
    """Loopback TCP relay to ``upstream`` counting every byte it forwards, each way."""

    upstream: tuple[str, int]
    rate: float | None = None  # bytes per second each way, all connections together; None: unlimited
    delay: float = 0.0  # one-way latency added to every block, seconds
    up: int = 0  # client -> central
    down: int = 0  # central -> client
    connections: int = 0
    listener: socket.socket = field(init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _socks: list[socket.socket] = field(default_factory=list)
    _free_at: dict[bool, float] = field(default_factory=lambda: {True: 0.0, False: 0.0})

    def __post_init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self.listener.getsockname()[1])

    def _pace(self, upward: bool, size: int) -> None:
        """A link of ``rate`` bytes/s each way: each block leaves when the link is free for it."""
        if self.rate is None:
            return
        with self._lock:
            start = max(time.monotonic(), self._free_at[upward])
            self._free_at[upward] = start + size / self.rate
            due = self._free_at[upward]
        delay = due - time.monotonic()
        if delay > 0:
            self._stop.wait(delay)  # pacing a simulated link, bounded by the block's own size

    def snapshot(self) -> tuple[int, int, int]:
        with self._lock:
            return self.up, self.down, self.connections

    def _accept(self) -> None:
        pairs = accepted_pairs(self.listener, self.upstream, self._stop, limit=MAX_CONNECTIONS, timeout=30)
        for client, server in pairs:
            for s in (client, server):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self.connections += 1
                self._socks += [client, server]
            for src, dst, upward in ((client, server, True), (server, client, False)):
                if self.delay > 0:
                    blocks: Queue[tuple[float, bytes] | None] = Queue()
                    threading.Thread(target=self._read, args=(src, blocks), daemon=True).start()
                    threading.Thread(target=self._write, args=(blocks, dst, upward), daemon=True).start()
                else:
                    threading.Thread(target=self._pump, args=(src, dst, upward), daemon=True).start()

    def _count(self, upward: bool, size: int) -> None:
        with self._lock:
            if upward:
                self.up += size
            else:
                self.down += size

    def _pump(self, src: socket.socket, dst: socket.socket, upward: bool) -> None:
        try:
            while not self._stop.is_set():
                data = src.recv(262_144 if self.rate is None else 16_384)
                if not data:
                    break
                self._pace(upward, len(data))
                dst.sendall(data)
                self._count(upward, len(data))
        except OSError:
            pass
        finally:
            with suppress(OSError):
                dst.shutdown(socket.SHUT_WR)

    def _read(self, src: socket.socket, blocks: Queue[tuple[float, bytes] | None]) -> None:
        """With latency: each block is stamped with the time it may leave, in order."""
        try:
            while not self._stop.is_set():
                data = src.recv(16_384)
                if not data:
                    break
                blocks.put((time.monotonic() + self.delay, data))
        except OSError:
            pass
        finally:
            blocks.put(None)

    def _write(self, blocks: Queue[tuple[float, bytes] | None], dst: socket.socket, upward: bool) -> None:
        try:
            while not self._stop.is_set():
                item = blocks.get()
                if item is None:
                    break
                due, data = item
                late = due - time.monotonic()
                if late > 0:
                    self._stop.wait(late)  # the link's latency: bounded by ``delay``
                self._pace(upward, len(data))
                dst.sendall(data)
                self._count(upward, len(data))
        except OSError:
            pass
        finally:
            with suppress(OSError):
                dst.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self._stop.set()
        self.listener.close()
        with self._lock:
            for s in self._socks:
                with suppress(OSError):
                    s.close()


class RelayProcess:
    """A :class:`CountingRelay` in its own process (this script with ``--relay-to``), so its threads
    never wait for this process's GIL while the agent or httpx runs: a relay sharing the GIL adds up
    to a switch interval (5 ms) per hop, which would tax the chattier side unfairly."""

    def __init__(self, upstream_port: int, rate: float | None, delay: float) -> None:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--relay-to", str(upstream_port)]
        if rate is not None:
            cmd += ["--relay-rate", str(rate)]
        if delay > 0:
            cmd += ["--relay-delay", str(delay)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None and self.proc.stdin is not None
        self._in, self._out = self.proc.stdin, self.proc.stdout
        first = self._out.readline().split()
        if len(first) != 2 or first[0] != "port":
            self.close()
            raise SystemExit(f"the relay did not start: {first}")
        self.url = f"https://127.0.0.1:{first[1]}"

    def snapshot(self) -> tuple[int, int, int]:
        self._in.write("count\n")
        self._in.flush()
        up, down, conns = (int(x) for x in self._out.readline().split())
        return up, down, conns

    def close(self) -> None:
        with suppress(OSError):
            self._in.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._out.close()


def relay_main(upstream_port: int, rate: float | None, delay: float) -> None:
    """``--relay-to PORT``: relay to central, print ``port N``, answer ``count`` lines until EOF."""
    relay = CountingRelay(("127.0.0.1", upstream_port), rate=rate, delay=delay)
    print(f"port {relay.port}", flush=True)
    try:
        for request in sys.stdin:  # ends when the parent closes our stdin
            if request.strip() == "count":
                up, down, conns = relay.snapshot()
                print(f"{up} {down} {conns}", flush=True)
    finally:
        relay.close()


@dataclass(frozen=True)
class Run:
    seconds: float
    payload: int
    up: int
    down: int
    connections: int

    @property
    def goodput(self) -> float:
        return self.payload / self.seconds

    @property
    def wire_ratio(self) -> float:
        return (self.up + self.down) / self.payload


def envelopes(home: Path, ids: list[str]) -> list[bytes]:
    with open_station(StationHome(home)) as st:
        return [st.store.envelope(pid) for pid in ids]


def plain_put(relay: RelayProcess, home: Path, envs: list[bytes]) -> Run:
    """Each envelope as one chunk PUT into a fresh packet id, one mutual-TLS keep-alive connection."""
    with open_station(StationHome(home)) as st:
        key = st.keys.identity_key()
    ca_pem = (home / "pki" / "ca.crt").read_bytes()
    identity = ClientIdentity((home / "pki" / "station.crt").read_bytes(), key)
    ctx = tls_context(ca_pem, identity)
    up0, down0, conn0 = relay.snapshot()
    t0 = time.perf_counter()
    with httpx.Client(base_url=relay.url, verify=ctx, timeout=60, trust_env=False) as http:
        for env in envs:
            r = http.put(
                packet_path(uuid7()),
                params={"offset": 0},
                content=env,
                headers={
                    HEADER_CHUNK_SHA256: hashlib.sha256(env).hexdigest(),
                    HEADER_PACKET_SIZE: str(len(env)),
                },
            )
            if r.status_code != 200 or r.json().get("offset") != len(env):
                raise SystemExit(f"plain PUT failed: HTTP {r.status_code} {r.text[:200]}")
    seconds = time.perf_counter() - t0
    up1, down1, conn1 = relay.snapshot()
    return Run(seconds, sum(map(len, envs)), up1 - up0, down1 - down0, conn1 - conn0)


def agent_upload(relay: RelayProcess, home: Path, envs: list[bytes]) -> Run:
    """One pass of the real agent over the queue; everything must end acked."""
    agent, close = build_agent(StationHome(home))
    try:
        up0, down0, conn0 = relay.snapshot()
        t0 = time.perf_counter()
        result = agent.sync_pass()
        seconds = time.perf_counter() - t0
        up1, down1, conn1 = relay.snapshot()
    finally:
        close()
    if not result.ok or len(result.acked) != len(envs):
        raise SystemExit(f"the agent did not ack everything: {len(result.acked)}/{len(envs)}, {result.error}")
    return Run(seconds, sum(map(len, envs)), up1 - up0, down1 - down0, conn1 - conn0)


def central_ingest(quick: bool) -> list[str]:
    """bench/central_ingest.py in its own process (``-P``: this folder not on its sys.path)."""
    cmd = [sys.executable, str(_BENCH / "central_ingest.py"), *(["--quick"] if quick else [])]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    if proc.returncode != 0:
        return [f"central ingest bench failed ({proc.returncode}): {proc.stderr.strip()[-300:]}"]
    return proc.stdout.strip().splitlines()


def central_stages(quick: bool) -> list[str]:
    """bench/central_stages.py in its own process: the loopback gap, stage by stage."""
    cmd = [sys.executable, str(_BENCH / "central_stages.py"), "--packets", "10" if quick else "30"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    if proc.returncode != 0:
        return [f"central stages bench failed ({proc.returncode}): {proc.stderr.strip()[-300:]}"]
    return proc.stdout.strip().splitlines()


def line(name: str, run: Run) -> str:
    return (
        f"{name:<10} {run.seconds:7.2f} s  {run.goodput / 1e6:6.2f} MB/s  wire {run.wire_ratio:.4f}"
        f" x payload (up {run.up / 1e6:.2f} MB, down {run.down / 1e6:.3f} MB,"
        f" {run.connections} connection(s))"
    )


@dataclass(frozen=True)
class Round:
    plain: tuple[Run, Run]
    agent: Run

    @property
    def plain_goodput(self) -> float:
        return (self.plain[0].goodput + self.plain[1].goodput) / 2

    @property
    def ratio(self) -> float:
        return self.agent.goodput / self.plain_goodput


def one_round(
    central: Central, home: Path, example: Path, n: int, rate: float | None, delay: float, title: str
) -> Round:
    """Seal ``n`` fresh packets, then plain PUT, agent, plain PUT through a relay of ``rate`` bytes/s
    and ``delay`` s of one-way latency."""
    t0 = time.perf_counter()
    ids = commit_packets(home, example, n)
    sealing = time.perf_counter() - t0
    envs = envelopes(home, ids)
    payload = sum(map(len, envs))
    print(f"-- {title}")
    print(
        f"packets: {n}, {payload / n / 1e3:.0f} KB each, payload {payload / 1e6:.2f} MB;"
        f" sealed and queued in {sealing:.2f} s ({n / sealing:.0f}/s)"
    )
    relay = RelayProcess(central.port, rate, delay)
    try:
        set_config(home, central_url=relay.url)
        plain1 = plain_put(relay, home, envs)
        agent = agent_upload(relay, home, envs)
        plain2 = plain_put(relay, home, envs)
    finally:
        relay.close()
    for pid, env in zip(ids, envs, strict=True):
        if central.stored(pid) != (hashlib.sha256(env).hexdigest(), len(env)):
            raise SystemExit(f"central does not hold packet {pid} as sent")
    result = Round((plain1, plain2), agent)
    print(line("plain PUT", plain1))
    print(line("agent", agent))
    print(line("plain PUT", plain2))
    wire = agent.wire_ratio
    print(
        f"agent wire bytes / payload: {wire:.4f} (target <= 1.05: {'met' if wire <= 1.05 else 'NOT met'});"
        f" plain PUT: {(plain1.wire_ratio + plain2.wire_ratio) / 2:.4f}"
    )
    print(
        f"goodput: agent {agent.goodput / 1e6:.2f} MB/s, plain PUT {result.plain_goodput / 1e6:.2f} MB/s"
        f" (mean of both runs): ratio {result.ratio:.2f}"
    )
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--packets", type=int, default=None, help="packets per round (default 100; --quick 30)")
    ap.add_argument("--quick", action="store_true", help="fewer packets and the quick ingest bench")
    ap.add_argument(
        "--link-mbps",
        type=float,
        default=20.0,
        help="second round through a link of this many Mbit/s each way (default 20; 0: skip)",
    )
    ap.add_argument("--relay-to", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument(
        "--link-rtt-ms", type=float, default=40.0, help="round-trip time added on that link (default 40)"
    )
    ap.add_argument("--relay-rate", type=float, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--relay-delay", type=float, default=0.0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.relay_to is not None:
        relay_main(args.relay_to, args.relay_rate, args.relay_delay)
        return
    n = args.packets if args.packets is not None else (30 if args.quick else 100)
    if n < 1:
        ap.error("--packets must be at least 1")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-sync-") as tmp_name:
        tmp = Path(tmp_name)
        # the plain PUT leaves every packet as an unfinished upload: lift the per-station cap on those
        with running_central(tmp / "central", storage={"max_partials_per_station": 100_000}) as central:
            example = make_example(tmp)
            home = tmp / "station"
            station_cli(home, "init", "--demo", "--station-id", STATION_ID)
            provision(central, home, STATION_ID)
            print(f"central: {central.ingest_url}; setup {time.perf_counter() - started:.1f} s")
            loopback = one_round(central, home, example, n, None, 0.0, "loopback, unlimited")
            link = None
            if args.link_mbps > 0:
                rate, delay = args.link_mbps * 1e6 / 8, args.link_rtt_ms / 2000
                title = f"a {args.link_mbps:g} Mbit/s link with {args.link_rtt_ms:g} ms round trip"
                link = one_round(central, home, example, n, rate, delay, title)
        flag = " --quick" if args.quick else ""
        print(f"-- central ingest, 50 concurrent stations (bench/central_ingest.py{flag}):")
        for text in central_ingest(args.quick):
            print(f"  {text}")
    print("-- where the loopback gap goes (bench/central_stages.py):")
    for text in central_stages(args.quick):
        print(f"  {text}")
    print(f"total {time.perf_counter() - started:.1f} s")
    if link is not None:
        ratio = link.ratio
        print(
            f"agent goodput {link.agent.goodput / 1e6:.2f} MB/s vs plain HTTPS PUT"
            f" {link.plain_goodput / 1e6:.2f} MB/s over the shaped link: ratio {ratio:.2f}"
            f" (target >= 0.8: {'met' if ratio >= 0.8 else 'NOT met'}); on loopback, where both ends share"
            f" 2 cores and the agent also pays for central's durable store: {loopback.ratio:.2f}"
        )
    else:
        ratio = loopback.ratio
        print(
            f"agent goodput {loopback.agent.goodput / 1e6:.2f} MB/s vs plain HTTPS PUT"
            f" {loopback.plain_goodput / 1e6:.2f} MB/s on loopback: ratio {ratio:.2f}"
            f" (target >= 0.8: {'met' if ratio >= 0.8 else 'NOT met'})"
        )


if __name__ == "__main__":
    main()
