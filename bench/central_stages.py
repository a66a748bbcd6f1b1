"""What one packet costs central's durable store and the station's ack, stage by stage (in-process).

``bench/sync.py`` compares the agent with a plain HTTPS PUT into central's chunk route; on loopback
the gap is what central does for the agent only (and the station's ack). This times those stages
with the real code, one packet at a time, on the same disk, no network: the chunk's SHA-256 and its
fsync'd partial file (the plain PUT pays these too), then finalise: reading the partial back, the
strict parse and signature check in a verifier worker process (the envelope crosses a pipe), the
Ed25519 receipt, the blob (temporary file, fsync, rename, directory fsync) and the metadata row
(``synchronous=FULL``), dropping the partial, touching the station row; then the station's side:
the receipt check and the ack transaction in its SQLCipher queue.

    .venv/bin/python bench/central_stages.py [--packets N]

``stage_times(packets)`` is what ``bench/sync.py`` prints.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _path import ROOT  # first: the project root on sys.path, not bench/
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from packetformat.packet import generate_recipient_keypair, seal
from station.store import Store
from sync.central.storage import SqliteStorage, StoredPacket
from sync.central.verifier import VerifierPool
from sync.common.receipt import Receipt, sign_receipt, utc_now_iso, verify_receipt

ENVELOPE_DOC = {"kind": "bench", "image": bytes(130_000)}  # about the size of a real enrollment


def stage_times(packets: int) -> list[tuple[str, float, bool]]:
    """(stage, median ms, paid by the plain PUT too) for ``packets`` packets."""
    identity = ec.generate_private_key(ec.SECP256R1())
    der = identity.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    _, recipient = generate_recipient_keypair()
    receipt_key = ed25519.Ed25519PrivateKey.generate()
    times: dict[str, list[float]] = {}
    plain = {"chunk SHA-256", "partial file: write, fsync, dir fsync"}

    def timed(name: str, fn: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        out = fn()
        times.setdefault(name, []).append((time.perf_counter() - t0) * 1000)
        return out

    with tempfile.TemporaryDirectory(dir=ROOT) as tmp:
        work = Path(tmp)
        storage = SqliteStorage(work / "central.db", work / "blobs", work / "uploads")
        queue = Store.open(work / "queue.db", bytes(32), create=True)
        pool = VerifierPool(workers=1)
        pool.warm()
        loop = asyncio.new_event_loop()
        try:

            def packet_round() -> None:
                sealed = seal(ENVELOPE_DOC, station_id="bench-station", identity_key=identity,
                              recipient_public_key=recipient, created_at=int(time.time()))  # fmt: skip
                env, pid = sealed.envelope, sealed.packet_id
                queue.add_packet(pid, env, hashlib.sha256(env).hexdigest(), time.time())
                sha = timed("chunk SHA-256", lambda env=env: hashlib.sha256(env).hexdigest())
                timed(
                    "partial file: write, fsync, dir fsync",
                    lambda: storage.append_chunk("bench-station", pid, 0, env, len(env)),
                )
                data = timed("read the partial back", lambda: storage.partial("bench-station", pid))
                timed(
                    "parse + ECDSA check in a verifier process",
                    lambda: loop.run_until_complete(
                        pool.verify(data, der, sha256=sha, size=len(env), max_size=8 << 20)
                    ),
                )
                receipt = timed(
                    "Ed25519 receipt",
                    lambda: sign_receipt(
                        Receipt(pid, "bench-station", sha, len(env), utc_now_iso(), "central"), receipt_key
                    ),
                )
                row = StoredPacket(pid, "bench-station", sha, len(env), utc_now_iso(), receipt, b"cert")
                timed("blob + metadata row (fsyncs) + drop partial", lambda: storage.commit_packet(row, data))
                timed("touch the station row, id-reuse lookup", lambda: (
                    storage.touch("bench-station", time.time()), storage.find_packet(pid)))  # fmt: skip
                timed("station: receipt check", lambda: verify_receipt(receipt, receipt_key.public_key()))
                timed(
                    "station: ack transaction (SQLCipher)",
                    lambda: queue.record_ack(pid, receipt, time.time()),
                )

            for _ in range(packets + 1):  # the first one warms caches and is dropped
                packet_round()
        finally:
            loop.close()
            pool.close()
            queue.close()
            storage.close()
    return [(name, statistics.median(ts[1:]), name in plain) for name, ts in times.items()]


def print_stages(packets: int) -> None:
    rows = stage_times(packets)
    print(
        f"per packet, median of {packets} (central's SQLite store, this disk; * = the plain PUT pays it too):"
    )
    for name, ms, shared in rows:
        print(f"  {'*' if shared else ' '} {name:<46} {ms:7.2f} ms")
    extra = sum(ms for _, ms, shared in rows if not shared)
    both = sum(ms for _, ms, shared in rows if shared)
    print(f"    agent-only work {extra:.2f} ms per packet vs {both:.2f} ms the plain PUT shares")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--packets", type=int, default=20)
    print_stages(ap.parse_args().packets)


if __name__ == "__main__":
    main()
