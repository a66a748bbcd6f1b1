"""``central export``: many packets to files in one directory, resumable after a crash.

For each packet id, in order: load the envelope, verify the station's signature, decrypt with the
back-office HPKE key (``backoffice.open_in``), check every image against its recorded SHA-256,
write ``PACKET_ID.an2`` (ANSI/NIST-ITL) or ``PACKET_ID.zip`` (ISO/IEC 19794) by rename. Files
are made durable in groups (:class:`GroupCommit`: one ``syncfs`` per 64 packets or second), and
only then journalled in ``export.journal``. A crash loses at most the group in hand; ``--resume``
reads the journal, keeps every file whose SHA-256 still matches and does the rest.
Packets that cannot be opened or written are journalled as failed with the reason, retried on
``--resume``, and listed in the manifest: never silently left out.

At the end ``manifest.json`` lists every file (name, bytes, SHA-256) and every failure, and
``SHA256SUMS`` lets ``sha256sum -c SHA256SUMS`` check the files. The HPKE private key must live
outside the central home (the ingest server's), and so must the output directory.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import hashlib
import json
import os
import queue
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, cast

from sync.central.backoffice import image_hash_problems, open_in
from sync.central.database import open_storage
from sync.central.export import ansi_nist, iso19794
from sync.central.export.document import read_view
from sync.central.export.errors import ExportError
from sync.central.home import CentralError, CentralHome
from sync.central.storage import Storage

FORMATS = ("ansi-nist", "iso19794")
EXTENSIONS = {"ansi-nist": ".an2", "iso19794": ".zip"}
JOURNAL, MANIFEST, SUMS = "export.journal", "manifest.json", "SHA256SUMS"
_PACKET_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ExportOptions:
    out: Path
    fmt: str = "ansi-nist"
    tot: str = ansi_nist.DEFAULT_TOT
    resume: bool = False


@dataclass
class ExportResult:
    written: dict[str, dict[str, Any]] = field(default_factory=dict)  # packet id -> file entry
    failed: dict[str, dict[str, str]] = field(default_factory=dict)  # packet id -> code, reason
    skipped: int = 0  # already done by the run being resumed

    @property
    def ok(self) -> bool:
        return not self.failed


def _inside(path: Path, root: Path) -> bool:
    try:
        return path.resolve().is_relative_to(root.resolve())
    except OSError:  # pragma: no cover - resolve() on a broken path
        return False


def check_paths(home: CentralHome, key_path: Path, out: Path) -> None:
    """Refuse a key or an output directory inside the central (ingest server's) home."""
    if _inside(key_path, home.root):
        raise ExportError(
            f"the HPKE private key {key_path} is inside the central home {home.root}; the ingest server's "
            "home must never hold it: move it to the back-office machine or offline media and pass that path",
            code="export.key_in_home",
        )
    if _inside(out, home.root):
        raise ExportError(
            f"the output directory {out} is inside the central home {home.root}; exported files hold "
            "plaintext biometrics: write them on the back-office machine",
            code="export.out_in_home",
        )


def parse_when(text: str, *, end_of_day: bool) -> str:
    """``YYYY-MM-DD`` or an ISO 8601 time as the storage's ``YYYY-MM-DDTHH:MM:SSZ`` (UTC).

    A bare date as ``--until`` means the end of that day, so ``--since D --until D`` is day D.
    """
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            day = dt.datetime.combine(dt.date.fromisoformat(text), dt.time(), dt.UTC)
            when = day + dt.timedelta(days=1) if end_of_day else day
        else:
            when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            if when.tzinfo is None:
                when = when.replace(tzinfo=dt.UTC)
    except ValueError as exc:
        raise ExportError(
            f"{text!r} is not a date: use YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ", code="export.date"
        ) from exc
    return when.astimezone(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


Target = tuple[str | None, str]  # (station id when known, packet id)


def select(storage: Storage, packet_ids: Iterable[str], since: str | None, until: str | None) -> list[Target]:
    """The packets to export: the ids given (checked), else those received in [since, until)."""
    ids = list(dict.fromkeys(packet_ids))
    if ids and since:
        raise ExportError("give packet ids or --since, not both", code="export.usage")
    for pid in ids:
        if not _PACKET_ID.fullmatch(pid):
            raise ExportError(f"{pid!r} is not a packet id (a UUID)", code="export.usage")
    if ids:
        return [(None, pid) for pid in ids]
    if not since:
        if until:
            raise ExportError("--until needs --since", code="export.usage")
        raise ExportError("give packet ids, or --since DATE [--until DATE]", code="export.usage")
    start = parse_when(since, end_of_day=False)
    stop = parse_when(until, end_of_day=True) if until else "9999-12-31T23:59:59Z"
    if stop <= start:
        raise ExportError(f"--until {until} is not after --since {since}", code="export.date")
    return [(station, pid) for station, pid in storage.packets_received(start, stop)]


def check_images(document: dict[str, Any]) -> None:
    """Every image of the document against its recorded SHA-256 (:class:`ExportError` if one differs)."""
    checked, bad = image_hash_problems(document)
    if bad:
        raise ExportError(
            f"{len(bad)} of {checked} image(s) do not match their recorded SHA-256: the packet is damaged",
            code="export.image_hash",
        )


def render(
    fmt: str,
    document: dict[str, Any],
    meta: dict[str, Any],
    central_id: str,
    tot: str,
) -> bytes:
    """The bytes of one packet's file in ``fmt``, its images checked against their SHA-256 first."""
    check_images(document)
    view = read_view(document, meta, central_id)
    if fmt == "ansi-nist":
        return ansi_nist.write_transaction(view, tot=tot)
    if fmt == "iso19794":
        return iso19794.write_packet(view)
    raise ExportError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}", code="export.usage")


class Journal:
    """``export.journal``: one JSON line per finished packet, fsync'd before the next one starts."""

    def __init__(self, out: Path) -> None:
        self.path = out / JOURNAL

    def read(self) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        """(the run's settings, packet id -> last entry); a torn last line (a crash) is ignored."""
        settings: dict[str, Any] = {}
        entries: dict[str, dict[str, Any]] = {}
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return settings, entries
        for n, line in enumerate(lines):
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as exc:
                if n == len(lines) - 1:
                    break
                raise ExportError(
                    f"{self.path} line {n + 1} is damaged: start a new export", code="export.journal"
                ) from exc
            if not isinstance(entry, dict):
                raise ExportError(f"{self.path} line {n + 1} is damaged", code="export.journal")
            if "settings" in entry:
                settings = dict(entry["settings"])
            elif isinstance(entry.get("packet_id"), str):
                entries[entry["packet_id"]] = entry
        return settings, entries

    def drop_torn_tail(self) -> None:
        """Cut a last line a crash left half-written, so the next entry starts on a line of its own."""
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            with open(self.path, "r+b") as fh:
                fh.truncate(data.rfind(b"\n") + 1)
                fh.flush()
                os.fsync(fh.fileno())

    def append(self, *entries: dict[str, Any], durable: bool = True) -> None:
        """Append entries in one write, fsync'd unless ``durable`` is False (the settings line: the
        first group's ``syncfs``, or its fsync of this file and directory, makes it durable)."""
        line = "".join(json.dumps(entry, sort_keys=True) + "\n" for entry in entries)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, line.encode())
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)


@cache
def _syncfs() -> Callable[[int], int] | None:
    try:
        fn = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):  # pragma: no cover - not Linux/glibc
        return None
    fn.argtypes = [ctypes.c_int]
    fn.restype = ctypes.c_int
    return cast(Callable[[int], int], fn)


class GroupCommit:
    """Files written without their own fsync, made durable together, then journalled together.

    One ``syncfs`` of the output directory's filesystem flushes every file and rename of the group
    (where ``syncfs`` is missing, each file is fsync'd); only then are the group's journal lines
    written and fsync'd. So a journalled file is always on disk, and a crash costs at most one
    group's work, redone by ``--resume``. A group is closed at ``size`` packets or ``seconds``.
    """

    def __init__(self, out: Path, journal: Journal, *, size: int = 64, seconds: float = 1.0) -> None:
        self.out, self.journal, self.size, self.seconds = out, journal, size, seconds
        self.entries: list[dict[str, Any]] = []
        self.files: list[Path] = []
        self.started = 0.0

    def write(self, target: Path, data: bytes) -> None:
        write_renamed(target, data)
        self.files.append(target)

    def add(self, entry: dict[str, Any]) -> None:
        if not self.entries:
            self.started = time.monotonic()
        self.entries.append(entry)
        if len(self.entries) >= self.size or time.monotonic() - self.started >= self.seconds:
            self.flush()

    def flush(self) -> None:
        if not self.entries:
            return
        make_durable(self.out, self.files)
        self.journal.append(*self.entries)
        self.entries, self.files = [], []


def write_renamed(target: Path, data: bytes) -> None:
    """Write ``target`` through a temporary file and a rename, without fsync (see :func:`make_durable`)."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, target)


def make_durable(directory: Path, files: list[Path]) -> None:
    """Flush ``files`` and their renames in ``directory``: one ``syncfs``, else an fsync each."""
    syncfs = _syncfs()
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if syncfs is None or syncfs(fd) != 0:
            for path in files:
                with open(path, "rb") as fh:
                    os.fsync(fh.fileno())
            os.fsync(fd)
    finally:
        os.close(fd)


def _sha256_file(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def prepare(options: ExportOptions, central_id: str) -> tuple[Journal, dict[str, dict[str, Any]]]:
    """Create or reopen the output directory; the entries already done when resuming."""
    out = options.out
    journal = Journal(out)
    settings = {"format": options.fmt, "tot": options.tot, "central_id": central_id}
    if options.resume:
        if not journal.path.exists():
            raise ExportError(f"{out} holds no export to resume (no {JOURNAL})", code="export.resume")
        previous, entries = journal.read()
        journal.drop_torn_tail()
        if previous != settings:
            raise ExportError(
                f"{out} holds an export with other settings ({previous}); resume it with those, "
                "or choose another directory",
                code="export.resume",
            )
        return journal, entries
    if out.exists() and any(out.iterdir()):
        raise ExportError(
            f"{out} is not empty: choose an empty directory, or add --resume to continue the export in it",
            code="export.out_not_empty",
        )
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    journal.append({"settings": settings}, durable=False)
    return journal, {}


def export_packets(
    home: CentralHome,
    private_key: bytes,
    targets: list[Target],
    options: ExportOptions,
    *,
    storage: Storage | None = None,
    progress: Progress | None = None,
) -> ExportResult:
    """Export ``targets`` into ``options.out``; a packet that fails is recorded, not skipped."""
    if options.fmt not in FORMATS:
        raise ExportError(
            f"unknown format {options.fmt!r}: use one of {', '.join(FORMATS)}", code="export.usage"
        )
    central_id = home.central_id
    journal, done = prepare(options, central_id)
    own = storage is None
    store: Storage = storage if storage is not None else open_storage(home)
    result = ExportResult()
    ext = EXTENSIONS[options.fmt]
    writer = Writer(GroupCommit(options.out, journal), result, progress, options, central_id)
    try:
        seen: set[str] = set()
        for station_id, pid in targets:
            writer.raise_error()
            if pid in seen:  # two stations used one id: the file name is taken by the first
                result.failed[f"{station_id}/{pid}"] = {
                    "code": "export.duplicate_id",
                    "reason": f"packet id {pid} is held by several stations; its file name is taken: "
                    f"export this one with 'central open {pid} --station {station_id}'",
                }
                continue
            seen.add(pid)
            previous = done.get(pid)
            target = options.out / f"{pid}{ext}"
            if (
                previous
                and previous.get("status") == "done"
                and _sha256_file(target) == previous.get("sha256")
            ):
                writer.put(Job(pid, target, skipped=previous))
                continue
            try:
                meta, document = open_in(store, pid, private_key, station_id=station_id)
            except CentralError as exc:
                writer.put(Job(pid, target, failed=("export.open", str(exc))))
            else:
                writer.put(Job(pid, target, document=document, meta=meta))
    finally:
        writer.close()
        if own:
            store.close()
    writer.raise_error()
    write_manifest(options, central_id, result)
    return result


@dataclass
class Job:
    pid: str
    target: Path
    document: dict[str, Any] | None = None
    meta: dict[str, Any] | None = None
    failed: tuple[str, str] | None = None
    skipped: dict[str, Any] | None = None


class Writer:
    """The export's second half on its own thread: image hashes, the format, the file, the journal.

    The main thread only loads, verifies and decrypts; this thread checks the image hashes, writes
    the format and the file and journals it, overlapping with the next packet's decryption when a
    second core is free (``hashlib``, file writes and ``syncfs`` release the GIL as well). Jobs are
    done in order; the queue is bounded, so at most a few decrypted packets wait in memory. An
    error in the thread stops the export.
    """

    _STOP = None

    def __init__(
        self,
        group: GroupCommit,
        result: ExportResult,
        progress: Progress | None,
        options: ExportOptions,
        central_id: str,
    ) -> None:
        self.group, self.result, self.progress = group, result, progress
        self.options, self.central_id = options, central_id
        self.jobs: queue.Queue[Job | None] = queue.Queue(maxsize=8)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="export-writer", daemon=True)
        self.thread.start()

    def put(self, job: Job) -> None:
        while self.error is None:
            try:
                self.jobs.put(job, timeout=0.5)
                return
            except queue.Full:
                continue
        self.raise_error()

    def raise_error(self) -> None:
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        if self.error is None:
            self.jobs.put(self._STOP)
        self.thread.join()

    def _run(self) -> None:
        try:
            while (job := self.jobs.get()) is not None:
                self._do(job)
        except BaseException as exc:  # handed to the main thread by raise_error()
            self.error = exc
        finally:
            try:
                self.group.flush()
            except BaseException as exc:
                self.error = self.error or exc

    def _do(self, job: Job) -> None:
        result = self.result
        if job.skipped is not None:
            result.written[job.pid] = {k: job.skipped[k] for k in ("file", "bytes", "sha256")}
            result.skipped += 1
        else:
            entry: dict[str, Any] = {"packet_id": job.pid}
            failed, data = job.failed, b""
            if failed is None and job.document is not None and job.meta is not None:
                try:
                    opts = self.options
                    data = render(opts.fmt, job.document, job.meta, self.central_id, opts.tot)
                except ExportError as exc:
                    failed = (exc.code, str(exc))
            if failed is None:
                self.group.write(job.target, data)
                digest = hashlib.sha256(data).hexdigest()
                entry |= {"status": "done", "file": job.target.name, "bytes": len(data), "sha256": digest}
                result.written[job.pid] = {k: entry[k] for k in ("file", "bytes", "sha256")}
            else:
                entry |= {"status": "failed", "code": failed[0], "reason": failed[1]}
                result.failed[job.pid] = {"code": failed[0], "reason": failed[1]}
            self.group.add(entry)
        if self.progress:
            self.progress(job.pid)


def write_manifest(options: ExportOptions, central_id: str, result: ExportResult) -> None:
    manifest = {
        "format": options.fmt,
        "standard": "ANSI/NIST-ITL 1-2011"
        if options.fmt == "ansi-nist"
        else "ISO/IEC 19794-4:2005, 19794-5:2005",
        "type_of_transaction": options.tot if options.fmt == "ansi-nist" else None,
        "central_id": central_id,
        "written_at": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "files": [{"packet_id": pid, **entry} for pid, entry in result.written.items()],
        "failed": [{"packet_id": pid, **entry} for pid, entry in result.failed.items()],
    }
    sums = "".join(f"{e['sha256']}  {e['file']}\n" for e in result.written.values())
    write_renamed(options.out / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())
    write_renamed(options.out / SUMS, sums.encode())
    make_durable(options.out, [options.out / MANIFEST, options.out / SUMS])
