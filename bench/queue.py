"""Enqueue and oldest-first dequeue with 100,000 packets queued vs with an empty queue.

A station offline for weeks must not slow down: committing a packet and taking the oldest pending
one (what the sync agent does: pending(limit=1), mark_uploading, record_ack) should cost the same at
100,000 queued packets as at none. Both stores are real SQLCipher queues on the same disk with the
production settings; the measurements alternate between them.

    .venv/bin/python bench/queue.py [--quick] [--packets N] [--rounds N]

Last line: the headline ratio (median enqueue+dequeue at N queued / at an empty queue); target <= 1.5.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import tempfile
import time
from pathlib import Path

from _path import ROOT  # first: the project root on sys.path, not bench/

from station.store import Store

ENVELOPE = 8 * 1024  # small envelopes keep the fill fast; the index and b-tree depth are what matter


def fill(store: Store, count: int) -> None:
    payload = os.urandom(ENVELOPE)
    digest = hashlib.sha256(payload).hexdigest()
    batch = 5000
    for start in range(0, count, batch):
        with store.transaction():
            for n in range(start, min(count, start + batch)):
                store.add_packet(f"fill-{n:09d}", payload, digest, 1_000_000.0 + n)


def one_round(store: Store, n: int, payload: bytes, digest: str) -> float:
    t0 = time.perf_counter()
    store.add_packet(f"bench-{n:09d}", payload, digest, 2_000_000_000.0 + n)
    oldest = store.pending(limit=1)[0]
    store.mark_uploading(oldest.packet_id)
    store.record_ack(oldest.packet_id, b"receipt", time.time())
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer rounds (under 60 s)")
    parser.add_argument("--packets", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=None)
    args = parser.parse_args()
    rounds = args.rounds or (40 if args.quick else 200)
    key = os.urandom(32)
    with tempfile.TemporaryDirectory(dir=ROOT) as tmp:
        empty = Store.open(Path(tmp) / "empty.db", key, create=True)
        full = Store.open(Path(tmp) / "full.db", key, create=True)
        t0 = time.perf_counter()
        fill(full, args.packets)
        full.checkpoint()
        fill_s = time.perf_counter() - t0
        payload = os.urandom(ENVELOPE)
        digest = hashlib.sha256(payload).hexdigest()
        at_empty: list[float] = []
        at_full: list[float] = []
        for n in range(rounds):
            at_empty.append(one_round(empty, n, payload, digest))
            at_full.append(one_round(full, n, payload, digest))
        db_mb = (Path(tmp) / "full.db").stat().st_size / 1e6
        empty.close()
        full.close()
    e, f = statistics.median(at_empty), statistics.median(at_full)
    kib = ENVELOPE // 1024
    print(f"filled {args.packets} packets of {kib} KiB in {fill_s:.1f} s ({db_mb:.0f} MB database)")
    print(f"enqueue + dequeue, empty queue    median {e * 1000:7.2f} ms")
    print(f"enqueue + dequeue, {args.packets} queued median {f * 1000:7.2f} ms")
    print(f"at {args.packets} queued / at empty = {f / e:.2f} (target <= 1.5)")


if __name__ == "__main__":
    main()
