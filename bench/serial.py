"""R30x image upload over a paced line, and the packet parser's raw speed.

1. Upload: the R30x simulator (``station sim r30x --pace``, its own process, as a real module is
   its own device) delivers its answers on a pty no faster than a real UART at 57600 and 115200
   baud (8N1, 10 bits a byte); the real serial driver captures (GenImg + UpImage, 288
   data packets of 128 bytes). Effective throughput = wire bytes x 10 / elapsed seconds, over the
   line rate: 1.0 means the driver loses nothing to the line (target >= 0.9).
2. The driver's rate raise: the simulator starts at 57600 (a module's default) and the driver, opened
   with the default URL (``baud=57600``), raises it to 115200 after the handshake; captures at 57600
   with ``maxbaud=0`` run in the same process beside it. Gain = time at 57600 / time after the raise.
3. Parser: ``StreamParser`` over an in-memory stream of image data packets fed in 4 KiB chunks, MB/s.

    .venv/bin/python bench/serial.py [--quick]

Last line: the headline ratio (the worst effective/line-rate ratio over both rates), and the gain
of the raise.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# this file is named serial.py: keep its folder off the path so ``import serial`` finds pyserial
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from drivers.r30x import protocol as p  # noqa: E402
from drivers.r30x.opener import open_serial  # noqa: E402
from drivers.url import parse_url  # noqa: E402

TARGET = 0.9
RATES = (57600, 115200)


def wire_bytes(packet_size: int = 128) -> int:
    """Bytes the module sends for GenImg's ack, UpImage's ack and the image's data packets."""
    ack = p.HEADER_LEN + 1 + 2
    data = sum(p.HEADER_LEN + len(chunk) + 2 for _, chunk in p.split_data(bytes(p.IMAGE_BYTES), packet_size))
    return 2 * ack + data


def upload(baud: int, runs: int, workdir: Path, *, raise_rate: bool = False) -> list[float]:
    """Elapsed seconds of ``runs`` paced captures at ``baud``, the simulator in its own process
    (with ``raise_rate``, the driver raises the module to 115200 first, as it does by default)."""
    link = workdir / f"scanner-{baud}-{raise_rate}"
    sim = subprocess.Popen(
        [
            *(sys.executable, "-m", "station", "sim", "r30x", "--link", str(link), "--finger-auto"),
            *("--baud", str(baud), "--pace", "--library", str(workdir / f"lib-{baud}-{raise_rate}")),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )
    times = []
    try:
        assert sim.stdout is not None
        for _ in range(2):  # "link: ..." then "pty: ..." once serving
            if not sim.stdout.readline():
                raise SystemExit("station sim r30x did not start")
        maxbaud = "" if raise_rate else "&maxbaud=0"
        scanner = open_serial(parse_url(f"serial://{link}?baud={baud}&timeout=2{maxbaud}"), trace=None)
        try:
            assert scanner.baud == (115200 if raise_rate else baud)
            for _ in range(runs):
                start = time.perf_counter()
                image = scanner.capture(timeout=5.0)
                times.append(time.perf_counter() - start)
                assert image.pixels.shape == (288, 256)
        finally:
            scanner.close()
    finally:
        sim.terminate()
        sim.communicate(timeout=10)
    return times


def parser_speed(seconds: float) -> float:
    """MB/s of StreamParser over image data packets."""
    stream = b"".join(
        p.build_packet(kind, chunk) for kind, chunk in p.split_data(bytes(range(256)) * 144, 128)
    )
    chunks = [stream[i : i + 4096] for i in range(0, len(stream), 4096)]
    parsed = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        parser = p.StreamParser()
        for chunk in chunks:
            parser.feed(chunk)
            while parser.next_packet() is not None:
                pass
        parsed += len(stream)
    return parsed / (time.perf_counter() - start) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one upload per rate (about 11 s)")
    args = parser.parse_args()
    runs = 1 if args.quick else 3

    import tempfile

    total = wire_bytes()
    ratios = []
    with tempfile.TemporaryDirectory() as tmp:
        for baud in RATES:
            times = upload(baud, runs, Path(tmp))
            elapsed = statistics.median(times)
            line_limit = total * 10 / baud
            ratio = line_limit / elapsed
            ratios.append(ratio)
            print(
                f"{baud:6d} baud: capture+upload {elapsed:.2f} s (median of {runs}), line-rate limit "
                f"{line_limit:.2f} s for {total} wire bytes; effective {total * 10 / elapsed:.0f} bit/s "
                f"= {ratio:.3f} of the line rate; payload {p.IMAGE_BYTES / elapsed / 1024:.1f} KiB/s"
            )
        before = statistics.median(upload(57600, runs, Path(tmp)))
        after = statistics.median(upload(57600, runs, Path(tmp), raise_rate=True))
    gain = before / after
    print(
        f"rate raise: module at 57600, driver with the default URL: capture+upload {after:.2f} s at 115200"
        f" after the raise vs {before:.2f} s at 57600: {gain:.2f}x faster; ten fingers' wire time"
        f" {10 * before:.0f} s -> {10 * after:.0f} s"
    )
    mbs = parser_speed(0.5 if args.quick else 2.0)
    per_image_ms = 40e-3 / mbs * 1e3
    print(f"parser: {mbs:.1f} MB/s over 128-byte data packets (an image parses in {per_image_ms:.2f} ms)")
    worst = min(ratios)
    print(f"target >= {TARGET}: {'met' if worst >= TARGET else 'NOT met'}")
    print(f"headline: effective / line-rate throughput = {worst:.3f}; raised to 115200: {gain:.2f}x faster")


if __name__ == "__main__":
    main()
