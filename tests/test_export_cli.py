"""``central export`` as a back-office user runs it: the console command in its own process."""

from __future__ import annotations

import hashlib
import json
import select
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from packetformat.packet import generate_recipient_keypair, seal
from sync.central.database import open_storage
from sync.central.storage import StoredPacket
from tests.export_support import ExportSetup, export_enrollment, export_setup, store_packets
from tests.sync_live import central_cli

__all__ = ["export_enrollment"]


@pytest.fixture(scope="module")
def office(tmp_path_factory: pytest.TempPathFactory, export_enrollment: Any) -> tuple[ExportSetup, list[str]]:
    setup = export_setup(tmp_path_factory.mktemp("cli"))
    old = store_packets(setup.home, setup.client, export_enrollment, 2, received_at="2026-11-30T23:59:59Z")
    new = store_packets(setup.home, setup.client, export_enrollment, 3, received_at="2026-12-01T00:00:00Z")
    return setup, [*old, *new]


def _export(setup: ExportSetup, out: Path, *args: str, check: bool = True) -> Any:
    return central_cli(
        setup.home.root, "export", "--key", str(setup.key_path), "--out", str(out), *args, check=check
    )


def test_key_inside_the_central_home_is_refused(
    office: tuple[ExportSetup, list[str]], tmp_path: Path
) -> None:
    setup, ids = office
    inside = setup.home.root / "backoffice" / "hpke.key"
    inside.write_bytes(setup.key_path.read_bytes())
    try:
        proc = central_cli(
            setup.home.root, "export", "--key", str(inside), "--out", str(tmp_path / "o"), ids[0], check=False
        )
    finally:
        inside.unlink()
    assert proc.returncode == 1
    assert "error [export.key_in_home]" in proc.stderr
    assert not (tmp_path / "o").exists()
    proc = central_cli(
        setup.home.root,
        "export",
        "--key",
        str(setup.key_path),
        "--out",
        str(setup.home.root / "exports"),
        ids[0],
        check=False,
    )
    assert proc.returncode == 1 and "error [export.out_in_home]" in proc.stderr


def test_since_until_selects_by_day_and_writes_manifest(
    office: tuple[ExportSetup, list[str]], tmp_path: Path
) -> None:
    setup, ids = office
    out = tmp_path / "dec"
    proc = _export(setup, out, "--since", "2026-12-01", "--until", "2026-12-01")
    assert "exported 3 of 3 packet(s)" in proc.stdout
    assert "exporting" not in proc.stderr  # no progress bar when stderr is not a terminal
    files = sorted(p.name for p in out.glob("*.an2"))
    assert files == sorted(f"{pid}.an2" for pid in ids[2:])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["failed"] == []
    for entry in manifest["files"]:
        assert hashlib.sha256((out / entry["file"]).read_bytes()).hexdigest() == entry["sha256"]
    sums = (out / "SHA256SUMS").read_text().splitlines()
    assert len(sums) == 3 and all(line.endswith(".an2") for line in sums)
    check = central_cli(setup.home.root, "export", "--check", str(out / files[0]))
    assert check.stdout.splitlines()[-1] == "OK: 13 records, ANSI/NIST-ITL 1-2011 traditional encoding"
    assert "Type-14 IDC 5  FGP 5  no image  AMP 5:XX" in check.stdout
    again = _export(setup, out, "--since", "2026-12-01", check=False)
    assert again.returncode == 1 and "error [export.out_not_empty]" in again.stderr


def test_iso_format_by_ids_and_check(office: tuple[ExportSetup, list[str]], tmp_path: Path) -> None:
    setup, ids = office
    out = tmp_path / "iso"
    _export(setup, out, "--format", "iso19794", ids[0])
    check = central_cli(setup.home.root, "export", "--check", str(out / f"{ids[0]}.zip"))
    assert "finger.fir: finger 1  WSQ 400x500" in check.stdout
    assert "face.fac: face token  JPEG 480x640  2 feature points" in check.stdout
    broken = tmp_path / "broken.zip"
    broken.write_bytes((out / f"{ids[0]}.zip").read_bytes()[:5000])
    bad = central_cli(setup.home.root, "export", "--check", str(broken), check=False)
    assert bad.returncode == 1 and bad.stderr.startswith("error [ansi_nist.malformed]: ")
    assert "Traceback" not in bad.stderr


def test_undecryptable_packet_is_listed_and_resume_redoes_the_rest(
    office: tuple[ExportSetup, list[str]], tmp_path: Path, export_enrollment: Any
) -> None:
    setup, ids = office
    # a packet sealed to another central's HPKE key: stored here, but this key cannot open it
    other_public, _ = generate_recipient_keypair()
    sealed = seal(
        {"format": "enrollment/1"},
        station_id=setup.client.station_id,
        identity_key=setup.client.key,
        recipient_public_key=other_public,
    )
    from cryptography.hazmat.primitives.serialization import Encoding

    storage = open_storage(setup.home)
    try:
        storage.commit_packet(
            StoredPacket(
                sealed.packet_id,
                setup.client.station_id,
                hashlib.sha256(sealed.envelope).hexdigest(),
                len(sealed.envelope),
                "2026-10-01T00:00:00Z",
                b"receipt",
                setup.client.cert.public_bytes(Encoding.DER),
            ),
            sealed.envelope,
        )
    finally:
        storage.close()
    out = tmp_path / "batch"
    wanted = [*ids[:3], sealed.packet_id]
    proc = _export(setup, out, *wanted, check=False)
    assert proc.returncode == 1
    assert f"FAILED {sealed.packet_id} [export.open]: cannot open packet" in proc.stdout
    assert "error [export.incomplete]" in proc.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert [f["packet_id"] for f in manifest["failed"]] == [sealed.packet_id]
    assert len(manifest["files"]) == 3

    # a crash: the last packet's file is gone and the journal's last line is torn
    (out / f"{ids[2]}.an2").unlink()
    journal = out / "export.journal"
    lines = journal.read_text().splitlines()
    done_line = next(i for i, line in enumerate(lines) if ids[2] in line)
    journal.write_text("\n".join(lines[:done_line]) + "\n" + lines[done_line][:20])
    before = {p: (out / f"{p}.an2").stat().st_mtime_ns for p in ids[:2]}
    proc = _export(setup, out, *wanted, "--resume", check=False)
    assert "exported 3 of 4 packet(s)" in proc.stdout and "(2 already done before --resume)" in proc.stdout
    assert {p: (out / f"{p}.an2").stat().st_mtime_ns for p in ids[:2]} == before  # not rewritten
    assert (out / f"{ids[2]}.an2").exists()
    manifest = json.loads((out / "manifest.json").read_text())
    assert sorted(f["packet_id"] for f in manifest["files"]) == sorted(ids[:3])
    assert [f["packet_id"] for f in manifest["failed"]] == [sealed.packet_id]
    other = _export(setup, out, *wanted, "--resume", "--format", "iso19794", check=False)
    assert other.returncode == 1 and "error [export.resume]" in other.stderr


def test_progress_bar_only_on_a_terminal(office: tuple[ExportSetup, list[str]], tmp_path: Path) -> None:
    """stderr on a pseudo-terminal: the bar is drawn there; stdout stays the plain summary."""
    import os
    import pty
    import subprocess

    setup, ids = office
    controller, terminal = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k not in ("CENTRAL_HOME", "STATION_HOME")}
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "central"),
            "--home",
            str(setup.home.root),
            "export",
            "--key",
            str(setup.key_path),
            "--out",
            str(tmp_path / "tty"),
            *ids[:2],
        ],
        stdout=subprocess.PIPE,
        stderr=terminal,
        env=env,
    )
    os.close(terminal)
    seen = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([controller], [], [], 1.0)
        if ready:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # the terminal closed: the process has exited
                break
            if not chunk:
                break
            seen += chunk
        elif proc.poll() is not None:
            break
    out, _ = proc.communicate(timeout=60)
    os.close(controller)
    assert proc.returncode == 0
    assert b"exporting" in seen and b"100%" in seen
    assert b"exporting" not in out and b"exported 2 of 2 packet(s)" in out
