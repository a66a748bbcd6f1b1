"""Sealed commit vs a plain fsync'd write of the same bytes, with the commit's cost stage by stage.

A realistic enrollment (ten ~20 KB WSQ prints, a ~40 KB JPEG face, demographics) goes through the real
commit path: validation, deterministic CBOR, HPKE seal to central, ECDSA signature, one SQLCipher
transaction (WAL, synchronous=FULL) holding the packet and its audit entry. The baseline appends the
same number of bytes to a log file and fsyncs it. Both run side by side on the same disk, interleaved.

Then each stage alone, on the same enrollment (medians; they add up to about the commit), and the
storage options measured against each other: the envelope inside the SQLCipher pages (the earlier
design) with SQLCipher 4's default HMAC-SHA512 and with HMAC-SHA256 (bare SQLCipher), and the store's
file mode (``Store.open(inline_max=...)``: the envelope in its own fdatasync'd file, then the row),
interleaved with the store as the commit uses it.

    .venv/bin/python bench/commit.py [--quick] [--rounds N]

Last line: the headline ratio (median commit / median fsync'd write); target <= 2.0.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import os
import statistics
import tempfile
import time
from pathlib import Path

import cbor2
import sqlcipher3
from _path import ROOT  # first: the project root on sys.path, not bench/
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from drivers.formats import wsq
from packetformat import packet as pk
from station.commit import commit_enrollment
from station.enrollment import (
    Enrollment,
    FingerCapture,
    FingerException,
    FingerPosition,
    ensure_valid,
)
from station.enrollment.example import synthetic_fingerprint, write_example
from station.enrollment.files import load_enrollment
from station.home import StationHome
from station.session import Station, init_station


def realistic_enrollment(work: Path) -> Enrollment:
    base = load_enrollment(write_example(work / "example"))
    fingers: dict[FingerPosition, FingerCapture | FingerException] = {}
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


def median_ms(fn: object, rounds: int) -> float:
    assert callable(fn)
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def stages(
    station: Station, enrollment: Enrollment, work: Path, rounds: int, file_mode_ms: list[float]
) -> list[tuple[str, float]]:
    """Each stage of the commit alone, in the order the commit runs them (median ms)."""
    enrollment = dataclasses.replace(enrollment, station_id=station.station_id)
    public, suite = station.central_public_key()
    identity = station.keys.identity_key()
    document = enrollment.to_document()
    plaintext = cbor2.dumps(document, canonical=True)
    header = pk.PacketHeader(1, pk.uuid7(), station.station_id, 1, suite, len(plaintext) + 48).to_cbor()
    recipient = pk._public_key(public, suite)
    ciphertext = pk._suite(suite).encrypt(plaintext, recipient, info=pk._info(header))
    signed = pk._signed_bytes(header, ciphertext)
    signature = identity.sign(signed, ec.ECDSA(hashes.SHA256()))
    envelope = cbor2.dumps([1, header, ciphertext, signature], canonical=True)
    from station.audit import AuditLog
    from station.store import Store

    file_store = Store.open(work / "file-mode.db", os.urandom(32), create=True, inline_max=32 * 1024)
    file_audit = AuditLog(file_store)

    def store_part(store: Store, audit: AuditLog, times: list[float]) -> None:
        sealed = pk.seal(document, station_id=station.station_id, identity_key=identity,
                         recipient_public_key=public, suite=suite)  # fmt: skip
        t0 = time.perf_counter()
        with store.transaction():
            store.add_packet(sealed.packet_id, sealed.envelope, "0" * 64, float(sealed.created_at))
            audit.append("enrollment.commit", packet=sealed.packet_id, operator="op-1", fingers=10)
        times.append(time.perf_counter() - t0)

    store_times: list[float] = []
    file_times: list[float] = []
    for _ in range(rounds):  # interleaved, so both see the same disk
        store_part(station.store, station.audit, store_times)
        store_part(file_store, file_audit, file_times)
    file_store.close()
    file_mode_ms[0] = statistics.median(file_times) * 1000

    def checks() -> None:
        station.check_disk()
        station.central_public_key()
        station.keys.identity_key()
        ensure_valid(enrollment)

    def hpke() -> None:
        pk._suite(suite).encrypt(plaintext, recipient, info=pk._info(header))

    def ecdsa() -> None:
        identity.sign(pk._signed_bytes(header, ciphertext), ec.ECDSA(hashes.SHA256()))

    return [
        ("keys, disk check, validation", median_ms(checks, rounds)),
        ("document (image hashes taken at capture)", median_ms(enrollment.to_document, rounds)),
        ("CBOR of the document", median_ms(lambda: cbor2.dumps(document, canonical=True), rounds)),
        ("HPKE seal (X25519, AES-256-GCM)", median_ms(hpke, rounds)),
        ("ECDSA P-256 signature", median_ms(ecdsa, rounds)),
        ("CBOR of the envelope", median_ms(lambda: cbor2.dumps([1, header, ciphertext, signature]), rounds)),
        ("SHA-256 of the envelope", median_ms(lambda: hashlib.sha256(envelope).hexdigest(), rounds)),
        ("SQLCipher: envelope + audit entry, WAL, fsync", statistics.median(store_times) * 1000),
    ]


def in_database_options(work: Path, size: int, rounds: int) -> list[tuple[str, float]]:
    """The envelope inside the SQLCipher pages, as before, under two HMAC settings (median ms)."""
    blob = os.urandom(size)
    out: list[tuple[str, float]] = []
    for name, pragmas in (
        ("envelope in the pages, HMAC-SHA512 (SQLCipher 4 default)", ()),
        ("envelope in the pages, HMAC-SHA256", ("PRAGMA cipher_hmac_algorithm = HMAC_SHA256",)),
    ):
        conn = sqlcipher3.connect(str(work / f"option-{len(out)}.db"), isolation_level=None)
        conn.execute(f"PRAGMA key = \"x'{os.urandom(32).hex()}'\"")
        for pragma in pragmas:
            conn.execute(pragma)
        for pragma in ("journal_mode = WAL", "synchronous = FULL", "secure_delete = ON"):
            conn.execute(f"PRAGMA {pragma}")
        conn.execute("CREATE TABLE p (id INTEGER PRIMARY KEY, envelope BLOB)")
        conn.execute("CREATE TABLE a (id INTEGER PRIMARY KEY, entry TEXT)")

        def one(conn: object = conn) -> None:
            conn.execute("BEGIN IMMEDIATE")  # type: ignore[attr-defined]
            conn.execute("INSERT INTO p (envelope) VALUES (?)", (blob,))  # type: ignore[attr-defined]
            conn.execute("INSERT INTO a (entry) VALUES (?)", ("x" * 200,))  # type: ignore[attr-defined]
            conn.execute("COMMIT")  # type: ignore[attr-defined]

        out.append((name, median_ms(one, rounds)))
        conn.close()
    return out


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
        station = init_station(StationHome(work / "home2"), "bench-station", demo=True)
        file_mode: list[float] = [0.0]
        parts = stages(station, enrollment, work, rounds, file_mode)
        station.close()
        options = in_database_options(work, size, rounds)
    c, p = statistics.median(commit_t), statistics.median(plain_t)
    print(f"packet size            {size / 1024:.0f} KiB ({rounds} rounds, interleaved)")
    for name, times, median in (("sealed commit ", commit_t, c), ("append + fsync", plain_t, p)):
        p90 = sorted(times)[int(rounds * 0.9) - 1]
        print(f"{name}         median {median * 1000:7.2f} ms   p90 {p90 * 1000:7.2f} ms")
    print("stages, each alone (median):")
    for name, ms in parts:
        print(f"  {name:<46} {ms:6.3f} ms")
    print(f"  {'sum':<46} {sum(ms for _, ms in parts):6.3f} ms")
    print("storage options for the same envelope (median, envelope + audit row in one transaction):")
    for name, ms in [
        *options,
        ("envelope in its own file + row (Store inline_max, 3 fsyncs)", file_mode[0]),
        ("the station's store as the commit uses it (in the pages)", parts[-1][1]),
    ]:
        print(f"  {name:<60} {ms:6.3f} ms")
    print(f"commit / fsync'd write = {c / p:.2f} (target <= 2.0)")


if __name__ == "__main__":
    main()
