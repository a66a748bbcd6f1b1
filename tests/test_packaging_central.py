"""The central office's Debian package (``packaging/build-deb --package central``): built,
inspected, and its venv run: the central server without Qt, OpenCV, a USB stack or SQLCipher."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_packaging_lock import _pins

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "packaging" / "build-deb"

pytestmark = [
    pytest.mark.timeout(900),
    pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb not installed"),
    pytest.mark.skipif(not Path("/usr/bin/python3.11").exists(), reason="Debian's python3.11 not installed"),
]


@pytest.fixture(scope="module")
def deb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    out = tmp_path_factory.mktemp("central-deb")
    proc = subprocess.run(
        ["bash", str(BUILD), "--package", "central", "--fast", "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    path = Path(proc.stdout.strip().splitlines()[-1])
    assert path.name.startswith("enrollment-central_") and path.parent == out
    yield path


def _dpkg_deb(*args: str) -> str:
    return subprocess.run(["dpkg-deb", *args], capture_output=True, text=True, check=True).stdout


def test_control_and_contents(deb: Path) -> None:
    assert "Package: enrollment-central\n" in _dpkg_deb("-f", str(deb))
    listing = _dpkg_deb("-c", str(deb))
    for path in (
        "./opt/enrollment-central/bin/central",
        "./lib/systemd/system/central.service",
        "./usr/share/doc/enrollment-central/sbom.cdx.json",
    ):
        assert path in listing, path
    assert "./usr/bin/central -> /opt/enrollment-central/bin/central" in listing
    for heavy in ("PySide6", "/cv2/", "sqlcipher3", "/usb/", "opencv"):
        assert heavy not in listing, heavy
    assert deb.stat().st_size < 60 * 1024 * 1024


def test_venv_runs_central_and_matches_the_lock(deb: Path, tmp_path: Path) -> None:
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp_path)], check=True)
    venv = tmp_path / "opt" / "enrollment-central"
    assert (venv / "bin" / "central").read_text().splitlines()[0] == "#!/opt/enrollment-central/bin/python"
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "sync.central", "--home", str(tmp_path / "home"), "init"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "home" / "central.toml").is_file()
    sbom = json.loads(deb.with_suffix(".cdx.json").read_text(encoding="utf-8"))
    listed = {c["name"].lower().replace("_", "-"): c["version"] for c in sbom["components"]}
    pins = {name: str(v) for name, (v, _) in _pins(ROOT / "packaging" / "lock" / "central.txt").items()}
    assert {n: v for n, v in listed.items() if n != "enrollment-station"} == pins


def test_unit_file_verifies_and_is_sandboxed(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not installed")
    unit = ROOT / "packaging" / "central" / "central.service"
    shutil.copy(unit, tmp_path)
    proc = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(tmp_path / unit.name)],
        capture_output=True,
        text=True,
        check=False,
    )
    problems = [
        line
        for line in (proc.stdout + proc.stderr).splitlines()
        if line.strip() and "/opt/enrollment-central/bin/central is not executable" not in line
    ]
    assert problems == []
    rating = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
        check=False,
    )
    m = re.search(r"Overall exposure level for \S+: ([\d.]+) (\w+)", rating.stdout)
    assert m, rating.stdout + rating.stderr
    assert m.group(2) in ("OK", "SAFE") and float(m.group(1)) < 2.0, m.group(0)
