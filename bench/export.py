"""``central export`` throughput against decrypting the same packets alone.

A central home on the project's disk holds N sealed packets of a realistic enrollment (nine
NFIQ 2-scored WSQ prints, two finger exceptions, the kiosk's portrait token of a real face). The
baseline opens every packet as the back office does (load the envelope, verify the station's
signature, HPKE-decrypt: ``backoffice.open_in``); the export does the same and then checks the
image hashes, writes the ANSI/NIST-ITL 1-2011 transaction (or the ISO/IEC 19794 ZIP) atomically
with fsync, journals it, and writes the manifest. Rounds alternate the two on the same packets.

    .venv/bin/python bench/export.py [--quick] [--packets N] [--rounds R]

Last line: the headline ratio (packets exported per second / packets decrypted per second,
wall clock); goal >= 0.8. The line before it gives the same ratio in CPU time of this process,
which a busy machine disturbs less (but which leaves out the time waiting for the disk).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from _path import ROOT  # first: the project root on sys.path, not bench/

from sync.central.backoffice import open_in
from sync.central.database import open_storage
from sync.central.export.batch import ExportOptions, export_packets
from tests.export_support import example_enrollment, export_setup, store_packets


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer packets and rounds (under 60 s)")
    parser.add_argument("--packets", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=None)
    args = parser.parse_args()
    count = args.packets or (30 if args.quick else 200)
    rounds = args.rounds or (5 if args.quick else 7)
    with tempfile.TemporaryDirectory(dir=ROOT) as tmp:  # the project's disk, not tmpfs: fsyncs count
        work = Path(tmp)
        setup = export_setup(work)
        enrollment = example_enrollment(work / "example")
        store_packets(setup.home, setup.client, enrollment, count)
        storage = open_storage(setup.home)
        ids = [
            pid for _station, pid in storage.packets_received("2000-01-01T00:00:00Z", "9999-12-31T23:59:59Z")
        ]
        targets = [(None, pid) for pid in ids]
        size = sum(s.size for pid in ids for s in storage.find_packet(pid)) / len(ids)
        decrypt_t: list[float] = []
        decrypt_cpu: list[float] = []
        export_t: dict[str, list[float]] = {"ansi-nist": [], "iso19794": []}
        export_cpu: dict[str, list[float]] = {"ansi-nist": [], "iso19794": []}
        out_bytes: dict[str, int] = {}
        for r in range(rounds + 1):  # round 0 warms imports and caches, not counted
            c0, t0 = time.process_time(), time.perf_counter()
            for pid in ids:
                open_in(storage, pid, setup.key)
            t1, c1 = time.perf_counter(), time.process_time()
            for fmt in export_t:
                out = work / f"out-{fmt}-{r}"
                c2, t2 = time.process_time(), time.perf_counter()
                result = export_packets(
                    setup.home, setup.key, targets, ExportOptions(out, fmt), storage=storage
                )
                t3, c3 = time.perf_counter(), time.process_time()
                assert result.ok and len(result.written) == count, result.failed
                out_bytes[fmt] = sum(int(e["bytes"]) for e in result.written.values()) // count
                if r:
                    export_t[fmt].append(t3 - t2)
                    export_cpu[fmt].append(c3 - c2)
            if r:
                decrypt_t.append(t1 - t0)
                decrypt_cpu.append(c1 - c0)
        storage.close()
    decrypt_rate = count / statistics.median(decrypt_t)
    print(f"packets                {count} of {size / 1024:.0f} KiB, {rounds} rounds (median)")
    print(f"decrypt only           {decrypt_rate:8.1f} packets/s")
    rates = {}
    for fmt, times in export_t.items():
        rates[fmt] = count / statistics.median(times)
        print(
            f"export {fmt:<15} {rates[fmt]:8.1f} packets/s   ({out_bytes[fmt] / 1024:.0f} KiB per file, "
            f"ratio {rates[fmt] / decrypt_rate:.2f})"
        )
    cpu = statistics.median(decrypt_cpu) / statistics.median(export_cpu["ansi-nist"])
    print(f"CPU time only (this process, both threads): ANSI/NIST export / decrypt = {cpu:.2f}")
    print(f"ANSI/NIST export / decrypt = {rates['ansi-nist'] / decrypt_rate:.2f} (goal >= 0.8)")


if __name__ == "__main__":
    main()
