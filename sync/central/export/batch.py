"""``central export``: many packets to files in one directory, resumable after a crash.

For each packet id, in order: load the envelope, verify the station's signature, decrypt with the
back-office HPKE key (``backoffice.open_in``), check every image against its recorded SHA-256,
write ``PACKET_ID.an2`` (ANSI/NIST-ITL) or ``PACKET_ID.zip`` (ISO/IEC 19794) atomically, then
append one line to ``export.journal`` and fsync it. A crash loses at most the packet in hand;
``--resume`` reads the journal, keeps every file whose SHA-256 still matches and does the rest.
Packets that cannot be opened or written are journalled as failed with the reason, retried on
``--resume``, and listed in the manifest: never silently left out.

At the end ``manifest.json`` lists every file (name, bytes, SHA-256) and every failure, and
``SHA256SUMS`` lets ``sha256sum -c SHA256SUMS`` check the files. The HPKE private key must live
outside the central home (the ingest server's), and so must the output directory.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sync.central.backoffice import image_hash_problems, open_in
from sync.central.database import open_storage
from sync.central.export import ansi_nist, iso19794
from sync.central.export.document import read_view
from sync.central.export.errors import ExportError
from sync.central.home import CentralError, CentralHome, fsync_dir, write_atomic
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


def render(fmt: str, document: dict[str, Any], meta: dict[str, Any], central_id: str, tot: str) -> bytes:
    """The bytes of one packet's file in ``fmt``."""
    checked, bad = image_hash_problems(document)
    if bad:
        raise ExportError(
            f"{len(bad)} of {checked} image(s) do not match their recorded SHA-256: the packet is damaged",
            code="export.image_hash",
        )
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

    def append(self, entry: dict[str, Any]) -> None:
        line = json.dumps(entry, sort_keys=True) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, line.encode())
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
    journal.append({"settings": settings})
    fsync_dir(out)
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
    try:
        seen: set[str] = set()
        for station_id, pid in targets:
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
                result.written[pid] = {k: previous[k] for k in ("file", "bytes", "sha256")}
                result.skipped += 1
                if progress:
                    progress(pid)
                continue
            entry: dict[str, Any]
            try:
                meta, document = open_in(store, pid, private_key, station_id=station_id)
                data = render(options.fmt, document, meta, central_id, options.tot)
            except ExportError as exc:
                entry = {"packet_id": pid, "status": "failed", "code": exc.code, "reason": str(exc)}
            except CentralError as exc:
                entry = {"packet_id": pid, "status": "failed", "code": "export.open", "reason": str(exc)}
            else:
                write_atomic(target, data, mode=0o600)
                digest = hashlib.sha256(data).hexdigest()
                entry = {
                    "packet_id": pid,
                    "status": "done",
                    "file": target.name,
                    "bytes": len(data),
                    "sha256": digest,
                }
            journal.append(entry)
            if entry["status"] == "done":
                result.written[pid] = {k: entry[k] for k in ("file", "bytes", "sha256")}
            else:
                result.failed[pid] = {"code": str(entry["code"]), "reason": str(entry["reason"])}
            if progress:
                progress(pid)
    finally:
        if own:
            store.close()
    write_manifest(options, central_id, result)
    return result


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
    write_atomic(options.out / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode(), mode=0o600)
    sums = "".join(f"{e['sha256']}  {e['file']}\n" for e in result.written.values())
    write_atomic(options.out / SUMS, sums.encode(), mode=0o600)
