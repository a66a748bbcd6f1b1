"""Central at scale: simulated stations against 2 central processes on PostgreSQL and 1 on SQLite.

Everything runs on loopback in a fresh temporary directory and stops at the end: a throwaway
PostgreSQL cluster (``initdb`` + ``pg_ctl``, as the tests start it), one central home on it served
by ``central serve --workers 2`` (two processes on one port), and a copy of that home on the
embedded SQLite backend served by one process (the same CA, so the same station certificates
work on both). The load generator runs in its own processes (``--procs``), apart from central.

Each simulated station has its own key and certificate from the CA and speaks the real protocol:

- packets: ~300 KB sealed, signed envelopes (``packetformat.seal``, incompressible padding),
  uploaded as the agent does (PUT in 256 KiB chunks with their SHA-256, then finalise);
- heartbeats: ``POST /v1/heartbeat`` at the station's interval (``heartbeat_seconds``, 60 s by
  default) compressed ``--compress`` times, each on a fresh TLS connection (a real station's idle
  connection is gone by then); ``--compress 1`` is the real rate (10,000 stations: 167/s).

Printed per backend: packets/s, central CPU seconds (user + system of the central processes
themselves, from /proc), packets per central CPU-core-second, p50/p99 finalise latency; for
PostgreSQL also PostgreSQL's CPU and its share; then heartbeats/s and their p50/p99 for all
``--stations``. The last line is the headline.

    .venv/bin/python bench/central_scale.py --quick          # 300 stations, well under 90 s
    .venv/bin/python bench/central_scale.py                  # 1,000 stations x 3 packets
    .venv/bin/python bench/central_scale.py --stations 10000 --compress 1   # 10,000 stations'
                                                  # heartbeats at the real rate (packets: 1,000 x 1)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import multiprocessing as mp
import os
import random
import shutil
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _path  # noqa: F401  (first: the project root on sys.path, not bench/)
import httpx

from packetformat.packet import parse, seal
from sync.central.authority import Authority, init_home
from sync.central.home import CentralHome
from sync.common.wire import (
    DEFAULT_CHUNK_BYTES,
    HEADER_CHUNK_SHA256,
    HEADER_PACKET_SIZE,
    finalise_path,
    packet_path,
)
from sync.pki.ca import cert_pem, key_pem, new_ec_key
from tests.central_support import CentralProcess, csr_for
from tests.pg_support import Cluster, start_cluster

HEARTBEAT_INTERVAL_S = 60.0  # station.toml's default heartbeat_seconds
PACKET_PAD = 300_000
TICK = os.sysconf("SC_CLK_TCK")


# -- CPU time from /proc -----------------------------------------------------------------------------
def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()  # fields from 3 (state) on


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            st = _stat(int(entry.name))
            if st is not None:
                kids.setdefault(int(st[1]), []).append(int(entry.name))
    return kids


def tree_cpu(root: int) -> float:
    """User + system seconds of ``root`` and its live descendants, plus what reaped children used."""
    kids = _children()
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        st = _stat(pid)
        if st is None:
            continue
        utime, stime, cutime, cstime = (int(x) for x in st[11:15])
        total += (utime + stime + cutime + cstime) / TICK
        todo.extend(kids.get(pid, []))
    return total


def postmaster_pid(cluster: Cluster) -> int:
    return int((cluster.data / "postmaster.pid").read_text().splitlines()[0])


# -- the load generator (its own processes) ----------------------------------------------------------
@dataclass(frozen=True)
class StationId:
    station_id: str
    key_pem: bytes
    cert_pem: bytes


def _context(sid: StationId, ca: Path, workdir: Path) -> Any:
    import ssl

    key, cert = workdir / f"{sid.station_id}.key", workdir / f"{sid.station_id}.crt"
    if not key.exists():
        key.write_bytes(sid.key_pem)
        cert.write_bytes(sid.cert_pem)
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(str(cert), str(key))
    return ctx


async def _upload(http: httpx.AsyncClient, base: str, env: bytes) -> tuple[float, float]:
    """(whole upload, finalise) seconds, the agent's way: chunks from offset 0, then finalise."""
    start = time.perf_counter()
    pid = parse(env).header.packet_id
    offset = 0
    while offset < len(env):
        part = env[offset : offset + DEFAULT_CHUNK_BYTES]
        r = await http.put(
            f"{base}{packet_path(pid)}",
            params={"offset": offset},
            content=part,
            headers={
                HEADER_CHUNK_SHA256: hashlib.sha256(part).hexdigest(),
                HEADER_PACKET_SIZE: str(len(env)),
            },
        )
        r.raise_for_status()
        offset = int(r.json()["offset"])
    f0 = time.perf_counter()
    r = await http.post(
        f"{base}{finalise_path(pid)}", json={"sha256": hashlib.sha256(env).hexdigest(), "size": len(env)}
    )
    r.raise_for_status()
    end = time.perf_counter()
    return end - start, end - f0


def packet_worker(
    ids: list[StationId],
    hpke: bytes,
    ca: str,
    base: str,
    packets: int,
    workdir: str,
    start: Any,
    ready: Any,
    out: Any,
) -> None:
    """Seal every packet first, wait for the start signal, then upload with bounded concurrency."""
    from cryptography.hazmat.primitives import serialization

    work: list[tuple[StationId, list[bytes]]] = []
    for sid in ids:
        key = serialization.load_pem_private_key(sid.key_pem, None)
        envs = [
            seal(
                {"n": n, "pad": os.urandom(PACKET_PAD)},
                station_id=sid.station_id,
                identity_key=key,  # type: ignore[arg-type]
                recipient_public_key=hpke,
            ).envelope
            for n in range(packets)
        ]
        work.append((sid, envs))
    ready.put(len(work))
    start.wait()

    async def run() -> list[tuple[float, float]]:
        gate = asyncio.Semaphore(24)

        async def station(sid: StationId, envs: list[bytes]) -> list[tuple[float, float]]:
            async with gate:
                ctx = _context(sid, Path(ca), Path(workdir))
                async with httpx.AsyncClient(verify=ctx, timeout=120) as http:
                    return [await _upload(http, base, e) for e in envs]

        done = await asyncio.gather(*(station(s, e) for s, e in work))
        return [x for per in done for x in per]

    out.put(asyncio.run(run()))


def heartbeat_worker(
    ids: list[StationId],
    ca: str,
    base: str,
    beats: int,
    interval: float,
    workdir: str,
    start: Any,
    ready: Any,
    out: Any,
) -> None:
    """Each station: ``beats`` heartbeats ``interval`` apart from a random phase, a new connection each."""
    import datetime as dt

    contexts = {sid.station_id: _context(sid, Path(ca), Path(workdir)) for sid in ids}  # before the clock
    ready.put(len(contexts))
    start.wait()
    t0 = time.perf_counter()

    host, _, port_text = base.removeprefix("https://").rpartition(":")
    host, port = host.strip("[]"), int(port_text)
    late: list[float] = []

    async def run() -> tuple[list[float], int]:
        failures = 0
        gate = asyncio.Semaphore(200)  # bounded: never more sockets than this per process

        async def one(sid: StationId, at: float, seq: int) -> float | None:
            nonlocal failures
            delay = at - (time.perf_counter() - t0)
            if delay > 0:
                await asyncio.sleep(delay)
            async with gate:
                body = {
                    "station_id": sid.station_id,
                    "sent_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "counts": {"sealed": seq % 3, "uploading": 0, "acked": 40 + seq, "purged": 0},
                    "oldest_pending_age_s": 30.0 if seq % 3 else None,
                    "last_sync_at": None,
                    "disk_free_bytes": 20 * 10**9,
                    "devices": {"scanner": "ok", "camera": "ok"},
                    "version": "0.1.0",
                    "cert_not_after": "",
                    "audit_head": hashlib.sha256(f"{sid.station_id}{seq}".encode()).hexdigest(),
                    "audit_seq": seq + 1,
                }
                late.append(time.perf_counter() - t0 - at)
                begin = time.perf_counter()  # connect + TLS handshake + request + answer
                try:
                    status = await asyncio.wait_for(
                        post_json(host, port, contexts[sid.station_id], "/v1/heartbeat", body), 60
                    )
                except (OSError, TimeoutError, ValueError):
                    failures += 1
                    return None
                if status not in (200, 204):  # 200 with the versions to hold; 204 from an older central
                    failures += 1
                    return None
                return time.perf_counter() - begin

        rnd = random.Random(len(ids))
        tasks = []
        for sid in ids:
            phase = rnd.uniform(0, interval)
            tasks += [one(sid, phase + k * interval, k) for k in range(beats)]
        got = await asyncio.gather(*tasks)
        return [x for x in got if x is not None], failures

    lat, failures = asyncio.run(run())
    out.put((lat, failures, time.perf_counter() - t0, late))


async def post_json(host: str, port: int, ctx: Any, path: str, body: dict[str, Any]) -> int:
    """One HTTP/1.1 POST on a new mutual-TLS connection (lighter than a client library per beat)."""
    import json

    data = json.dumps(body).encode()
    reader, writer = await asyncio.open_connection(host, port, ssl=ctx, server_hostname=host)
    try:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
        )
        writer.write(head.encode() + data)
        await writer.drain()
        status = await reader.readline()
        parts = status.split()
        if len(parts) < 2 or not parts[1].isdigit():
            raise ValueError("no HTTP status line")
        for _ in range(100):  # the headers, bounded
            if (await reader.readline()) in (b"\r\n", b""):
                break
        return int(parts[1])
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def split(items: list[StationId], n: int) -> list[list[StationId]]:
    return [items[i::n] for i in range(n)]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else float("nan")


# -- phases ----------------------------------------------------------------------------------------
@dataclass
class PacketResult:
    label: str
    packets: int
    wall: float
    central_cpu: float
    pg_cpu: float | None
    p50: float
    p99: float

    @property
    def rate(self) -> float:
        return self.packets / self.wall

    @property
    def per_core_second(self) -> float:
        return self.packets / self.central_cpu if self.central_cpu else float("nan")


def packet_phase(
    label: str,
    server: CentralProcess,
    home: CentralHome,
    ids: list[StationId],
    packets: int,
    procs: int,
    workdir: Path,
    pg: Cluster | None,
) -> PacketResult:
    hpke = Authority(home).hpke_public()[0]
    ctx = mp.get_context("spawn")
    start, ready, out = ctx.Event(), ctx.Queue(), ctx.Queue()
    workers = [
        ctx.Process(
            target=packet_worker,
            args=(share, hpke, str(home.ca_cert), server.url, packets, str(workdir), start, ready, out),
            daemon=True,
        )
        for share in split(ids, procs)
    ]
    for w in workers:
        w.start()
    for _ in workers:  # each has sealed its packets (bounded wait)
        ready.get(timeout=600)
    cpu0 = tree_cpu(server.proc.pid)
    pg0 = tree_cpu(postmaster_pid(pg)) if pg else None
    t0 = time.perf_counter()
    start.set()
    results = [out.get(timeout=600) for _ in workers]
    wall = time.perf_counter() - t0
    cpu = tree_cpu(server.proc.pid) - cpu0
    pg_cpu = tree_cpu(postmaster_pid(pg)) - pg0 if pg and pg0 is not None else None
    for w in workers:
        w.join(timeout=30)
    lat = [f for per in results for _, f in per]
    return PacketResult(label, len(lat), wall, cpu, pg_cpu, pct(lat, 0.5), pct(lat, 0.99))


def heartbeat_phase(
    server: CentralProcess,
    home: CentralHome,
    ids: list[StationId],
    beats: int,
    interval: float,
    procs: int,
    workdir: Path,
) -> tuple[int, int, float, float, float, float, float]:
    ctx = mp.get_context("spawn")
    start, ready, out = ctx.Event(), ctx.Queue(), ctx.Queue()
    workers = [
        ctx.Process(
            target=heartbeat_worker,
            args=(share, str(home.ca_cert), server.url, beats, interval, str(workdir), start, ready, out),
            daemon=True,
        )
        for share in split(ids, procs)
    ]
    for w in workers:
        w.start()
    for _ in workers:  # each has loaded its stations' TLS contexts (bounded wait)
        ready.get(timeout=600)
    cpu0 = tree_cpu(server.proc.pid)
    t0 = time.perf_counter()
    start.set()
    results = [out.get(timeout=900) for _ in workers]
    wall = time.perf_counter() - t0
    cpu = tree_cpu(server.proc.pid) - cpu0
    for w in workers:
        w.join(timeout=30)
    lat = [x for r in results for x in r[0]]
    failures = sum(r[1] for r in results)
    late = [x for r in results for x in r[3]]
    return len(lat), failures, wall, pct(lat, 0.5), pct(lat, 0.99), cpu, pct(late, 0.99)


# -- setup -----------------------------------------------------------------------------------------
def identities(home: CentralHome, n: int) -> list[StationId]:
    """``n`` stations with their own keys and certificates, issued by the home's CA."""
    authority = Authority(home)
    out = []
    for i in range(n):
        sid = f"bench-{i:05d}"
        key = new_ec_key()
        cert = authority.issue_from_csr(csr_for(key, sid), sid)
        out.append(StationId(sid, key_pem(key), cert_pem(cert)))
    return out


def sqlite_copy(pg_home: CentralHome, root: Path) -> CentralHome:
    """The same CA and keys on the embedded backend (a fresh central.db, the registry in pki.db)."""
    shutil.copytree(pg_home.root, root, ignore=shutil.ignore_patterns("central.db*", "blobs", "uploads"))
    home = CentralHome(root)
    config = tomllib.loads(home.config_path.read_text())
    config.pop("storage", None)
    home.write_config(config)
    return home


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--stations", type=int, default=1000, help="stations sending heartbeats")
    ap.add_argument(
        "--packet-stations", type=int, default=None, help="stations uploading (default min(N, 1000))"
    )
    ap.add_argument("--packets", type=int, default=None, help="per uploading station (3; 1 past 1,000)")
    ap.add_argument("--beats", type=int, default=2, help="heartbeats per station")
    ap.add_argument("--compress", type=float, default=6.0, help="the 60 s heartbeat interval divided by this")
    ap.add_argument("--procs", type=int, default=2, help="load-generator processes")
    ap.add_argument("--workers", type=int, default=2, help="central processes on PostgreSQL")
    ap.add_argument("--quick", action="store_true", help="300 stations, 1 packet each, one heartbeat round")
    args = ap.parse_args()
    if args.quick:
        args.stations, args.packets, args.beats, args.compress = min(args.stations, 300), 1, 1, 12.0
    if args.packets is None:
        args.packets = 3 if args.stations <= 1000 else 1
    uploading = min(args.stations, args.packet_stations or 1000)
    interval = HEARTBEAT_INTERVAL_S / args.compress
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="central-scale-") as tmp:
        root = Path(tmp)
        os.chmod(root, 0o755)  # the cluster's postgres user must traverse it
        cluster = start_cluster(durable=True)  # fsync on, as in production (the tests turn it off)
        try:
            url = cluster.create_database()
            pg_home = CentralHome(root / "pg")
            init_home(pg_home, database_url=url)
            ids = identities(pg_home, args.stations)
            sq_home = sqlite_copy(pg_home, root / "sqlite")
            setup_s = time.perf_counter() - began
            work = root / "ids"
            work.mkdir()
            results: list[PacketResult] = []
            pg_server = CentralProcess(pg_home, "--workers", str(args.workers))
            try:
                results.append(
                    packet_phase(
                        f"PostgreSQL, {args.workers} central processes",
                        pg_server,
                        pg_home,
                        ids[:uploading],
                        args.packets,
                        args.procs,
                        work,
                        cluster,
                    )
                )
                hb = heartbeat_phase(pg_server, pg_home, ids, args.beats, interval, args.procs, work)
            finally:
                pg_server.stop()
            sq_server = CentralProcess(sq_home)
            try:
                results.append(
                    packet_phase(
                        "SQLite, 1 central process",
                        sq_server,
                        sq_home,
                        ids[:uploading],
                        args.packets,
                        args.procs,
                        work,
                        None,
                    )
                )
            finally:
                sq_server.stop()
        finally:
            cluster.stop()
    print(
        f"stations: {args.stations} (heartbeats), {uploading} uploading {args.packets} packet(s) of"
        f" ~{PACKET_PAD // 1000} KB each; load generator: {args.procs} processes; setup {setup_s:.0f} s"
    )
    for r in results:
        line = (
            f"{r.label}: {r.packets} packets in {r.wall:.1f} s = {r.rate:.1f} packets/s;"
            f" central CPU {r.central_cpu:.1f} s = {r.per_core_second:.1f} packets per central core-second;"
            f" finalise p50 {r.p50 * 1000:.0f} ms, p99 {r.p99 * 1000:.0f} ms"
        )
        if r.pg_cpu is not None:
            share = r.pg_cpu / (r.pg_cpu + r.central_cpu) if r.pg_cpu + r.central_cpu else 0.0
            line += f"; PostgreSQL CPU {r.pg_cpu:.1f} s ({share:.0%} of central + PostgreSQL)"
        print(line)
    n, failures, wall, p50, p99, hb_cpu, late99 = hb
    print(
        f"heartbeats (PostgreSQL): {n} from {args.stations} stations every {interval:.1f} s"
        f" ({HEARTBEAT_INTERVAL_S:g} s / {args.compress:g}) in {wall:.1f} s = {n / wall:.1f} heartbeats/s,"
        f" p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms (new TLS connection each),"
        f" {failures} failed; central CPU {hb_cpu:.1f} s; load generator behind schedule by"
        f" {late99 * 1000:.0f} ms at p99"
    )
    pg_r, sq_r = results
    ratio = pg_r.per_core_second / sq_r.per_core_second if sq_r.per_core_second else float("nan")
    print(f"total {time.perf_counter() - began:.0f} s")
    print(
        f"headline: {pg_r.per_core_second:.1f} packets per central core-second on PostgreSQL"
        f" ({args.workers} processes), {ratio:.2f}x the SQLite node ({sq_r.per_core_second:.1f})"
    )


if __name__ == "__main__":
    main()
