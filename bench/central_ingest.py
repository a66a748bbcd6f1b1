"""Central ingest rate: N simulated stations upload sealed packets concurrently over mutual TLS.

Starts the real ``central serve`` on 127.0.0.1 in a fresh temporary home, gives every simulated
station its own certificate from that CA, and has each upload its packets the way the agent does
(status, chunks with checksums, finalise). Prints packets/s, MB/s and per-packet latency
percentiles; the last line is the headline.

    .venv/bin/python bench/central_ingest.py            # 50 stations x 8 packets of ~130 KB
    .venv/bin/python bench/central_ingest.py --quick    # 50 stations x 2 packets (well under 60 s)
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import statistics
import tempfile
import time
from pathlib import Path

import _path  # noqa: F401  (first: the project root on sys.path, not bench/)
import httpx

from packetformat.packet import parse
from sync.common.wire import HEADER_CHUNK_SHA256, HEADER_PACKET_SIZE, finalise_path, packet_path
from tests.central_support import CentralProcess, Client, make_home, sealed, station_client


async def upload_one(http: httpx.AsyncClient, base: str, env: bytes, chunk: int) -> float:
    start = time.perf_counter()
    pid = parse(env).header.packet_id
    status = (await http.get(f"{base}{packet_path(pid)}")).json()
    offset = int(status["offset"])
    while offset < len(env):
        part = env[offset : offset + chunk]
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
    r = await http.post(
        f"{base}{finalise_path(pid)}", json={"sha256": hashlib.sha256(env).hexdigest(), "size": len(env)}
    )
    r.raise_for_status()
    return time.perf_counter() - start


async def station(client: Client, ca: Path, base: str, envs: list[bytes], chunk: int) -> list[float]:
    async with httpx.AsyncClient(verify=client.context(ca), timeout=120) as http:
        return [await upload_one(http, base, env, chunk) for env in envs]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stations", type=int, default=50)
    ap.add_argument("--packets", type=int, default=8, help="packets per station")
    ap.add_argument("--size", type=int, default=130_000, help="document padding bytes per packet")
    ap.add_argument("--chunk", type=int, default=256 * 1024)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.packets = 2
    with tempfile.TemporaryDirectory() as tmp:
        home = make_home(Path(tmp) / "central")
        clients = [station_client(home, Path(tmp) / "ids", f"bench-{i:03d}") for i in range(args.stations)]
        work = {
            c.station_id: [
                sealed(home, c, doc={"n": n, "pad": bytes(args.size)}) for n in range(args.packets)
            ]
            for c in clients
        }
        payload = sum(len(e) for envs in work.values() for e in envs)
        server = CentralProcess(home)
        try:

            async def run() -> list[list[float]]:
                return await asyncio.gather(
                    *(station(c, home.ca_cert, server.url, work[c.station_id], args.chunk) for c in clients)
                )

            t0 = time.perf_counter()
            latencies = [x for per in asyncio.run(run()) for x in per]
            wall = time.perf_counter() - t0
        finally:
            server.stop()
    n = len(latencies)
    ordered = sorted(latencies)
    p99 = ordered[min(n - 1, int(n * 0.99))]
    print(f"stations: {args.stations}, packets: {n}, payload: {payload / 1e6:.1f} MB, wall: {wall:.2f} s")
    print(f"latency per packet: median {statistics.median(latencies) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms")
    print(f"throughput: {payload / wall / 1e6:.1f} MB/s")
    rate, p99_ms = n / wall, p99 * 1000
    print(
        f"central ingest: {rate:.1f} packets/s with {args.stations} concurrent stations, p99 {p99_ms:.0f} ms"
    )


if __name__ == "__main__":
    main()
