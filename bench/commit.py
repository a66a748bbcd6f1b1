"""Sealed commit vs a plain fsync'd write of the same bytes.

A realistic enrollment (ten ~20 KB WSQ prints, a ~40 KB JPEG face, demographics) goes through the real
commit path: validation, deterministic CBOR, HPKE seal to central, ECDSA signature, one SQLCipher
transaction (WAL, synchronous=FULL) holding the packet and its audit entry. The baseline writes the
same number of bytes to a log file and fsyncs it (a new file would also
need its directory fsync'd to be durable). Both run side by side on the same disk, interleaved.

    .venv/bin/python bench/commit.py [--quick] [--rounds N]

Last line: the headline ratio (median commit / median fsync'd write); target <= 2.0.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import tempfile
import time
from pathlib import Path

from _path import ROOT  # first: the project root on sys.path, not bench/

from drivers.formats import wsq
from station.commit import commit_enrollment
from station.enrollment import FingerCapture, FingerPosition
from station.enrollment.example import synthetic_fingerprint, write_example
from station.enrollment.files import load_enrollment
from station.home import StationHome
from station.session import init_station


def realistic_enrollment(work: Path) -> object:
    base = load_enrollment(write_example(work / "example"))
    fingers: dict[FingerPosition, object] = {}
    for position in FingerPosition:
        # A 500 ppi flat print of about 1 x 1.2 inches: ~20 KB of WSQ at the encoder's fixed rate.
        pixels = synthetic_fingerprint(int(position), width=480, height=600)
        data = wsq.encode(pixels)
        fingers[position] = FingerCapture(position, data, quality=60, attempts=1)
    return dataclasses.replace(base, fingers=fingers)


def plain_write(fd: int, payload: bytes) -> None:
    """The baseline: append the bytes to a log file and fsync it (a hand-made durable queue)."""
    os.write(fd, payload)
    os.fsync(fd)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer rounds (under 60 s)")
    parser.add_argument("--rounds", type=int, default=None)
    args = parser.parse_args()
    rounds = args.rounds or (15 if args.quick else 60)
    with tempfile.TemporaryDirectory(dir=ROOT) as tmp:  # same disk as the project, not tmpfs
        work = Path(tmp)
        enrollment = realistic_enrollment(work)
        station = init_station(StationHome(work / "home"), "bench-station", demo=True)
        commit_enrollment(station, enrollment)  # warm up imports and caches
        size = station.store.packet(station.store.pending()[0].packet_id).size
        payload = os.urandom(size)
        fd = os.open(work / "plain.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        commit_t: list[float] = []
        plain_t: list[float] = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            commit_enrollment(station, enrollment)
            t1 = time.perf_counter()
            plain_write(fd, payload)
            t2 = time.perf_counter()
            commit_t.append(t1 - t0)
            plain_t.append(t2 - t1)
        station.close()
        os.close(fd)
    c, p = statistics.median(commit_t), statistics.median(plain_t)
    print(f"packet size            {size / 1024:.0f} KiB ({rounds} rounds, interleaved)")
    for name, times, median in (("sealed commit ", commit_t, c), ("append + fsync", plain_t, p)):
        p90 = sorted(times)[int(rounds * 0.9) - 1]
        print(f"{name}         median {median * 1000:7.2f} ms   p90 {p90 * 1000:7.2f} ms")
    print(f"commit / fsync'd write = {c / p:.2f} (target <= 2.0)")


if __name__ == "__main__":
    main()
