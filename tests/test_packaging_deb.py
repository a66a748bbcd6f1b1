"""The Debian package: built by packaging/build-deb, inspected, then installed, removed and purged
in a throwaway root (an overlay of this machine's root in a private mount namespace)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "packaging" / "build-deb"
DEB_PYTHON = Path("/usr/bin/python3.11")

pytestmark = [
    pytest.mark.timeout(900),
    pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb not installed"),
    pytest.mark.skipif(not DEB_PYTHON.exists(), reason="Debian's /usr/bin/python3.11 not installed"),
]


@pytest.fixture(scope="module")
def deb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    out = tmp_path_factory.mktemp("deb")
    proc = subprocess.run(
        ["bash", str(BUILD), "--fast", "--out", str(out)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    path = Path(proc.stdout.strip().splitlines()[-1])
    assert path.is_file() and path.parent == out
    yield path


def dpkg_deb(*args: str) -> str:
    return subprocess.run(["dpkg-deb", *args], capture_output=True, text=True, check=True).stdout


def test_control_fields(deb: Path) -> None:
    control = dpkg_deb("-f", str(deb))
    assert "Package: enrollment-station\n" in control
    from station import __version__

    assert f"Version: {__version__}\n" in control
    for dep in ("python3.11", "cage", "adduser", "systemd"):
        assert dep in dpkg_deb("-f", str(deb), "Depends")


def test_contents(deb: Path) -> None:
    listing = dpkg_deb("-c", str(deb))
    rows = {
        line.split()[-1] if " -> " not in line else line.split()[-3]: line for line in listing.splitlines()
    }
    for path in [
        "./opt/enrollment-station/bin/station",
        "./opt/enrollment-station/bin/python3.11",
        "./opt/enrollment-station/pyvenv.cfg",
        "./lib/systemd/system/station-kiosk.service",
        "./lib/systemd/system/station-sync.service",
        "./lib/systemd/system/station-purge.service",
        "./lib/systemd/system/station-purge.timer",
        "./lib/udev/rules.d/70-enrollment-station.rules",
        "./usr/bin/station",
        "./usr/share/doc/enrollment-station/station.toml.example",
    ]:
        assert path in rows, path
    assert all(" root/root " in line for line in listing.splitlines())
    assert "./opt/enrollment-station/bin/pip" not in rows
    assert not any("/var/lib/station" in p for p in rows), "data directories are made by postinst"


def test_maintainer_scripts_in_package(deb: Path, tmp_path: Path) -> None:
    subprocess.run(["dpkg-deb", "-e", str(deb), str(tmp_path)], check=True)
    for name in ("postinst", "prerm", "postrm", "control", "md5sums"):
        assert (tmp_path / name).is_file(), name
    for name in ("postinst", "prerm", "postrm"):
        assert os.stat(tmp_path / name).st_mode & 0o777 == 0o755


def test_venv_points_at_its_installed_place(deb: Path, tmp_path: Path) -> None:
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp_path)], check=True)
    venv = tmp_path / "opt" / "enrollment-station"
    assert (venv / "bin" / "station").read_text().splitlines()[0] == "#!/opt/enrollment-station/bin/python"
    cfg = (venv / "pyvenv.cfg").read_text()
    assert "home = /usr/bin" in cfg and "station-deb." not in cfg
    assert os.readlink(venv / "bin" / "python3.11") == "/usr/bin/python3.11"
    leftovers = subprocess.run(
        ["grep", "-rlI", "station-deb.", str(venv / "bin")], capture_output=True, text=True, check=False
    )
    assert leftovers.stdout == ""


# The throwaway root: this machine's root overlaid with a tmpfs in a private mount namespace, so
# dpkg, adduser and the maintainer scripts run for real and nothing reaches the host.
INSTALL_SCRIPT = Path(__file__).parent / "fixtures" / "packaging" / "throwaway-install.sh"


def can_make_throwaway_root() -> str | None:
    if os.geteuid() != 0:
        return "needs root (mount namespaces and chroot)"
    if shutil.which("unshare") is None:
        return "unshare not installed"
    probe = subprocess.run(["unshare", "-m", "--fork", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        return "this machine does not allow private mount namespaces"
    return None


@pytest.mark.root
def test_install_remove_purge_in_throwaway_root(deb: Path, tmp_path: Path) -> None:
    reason = can_make_throwaway_root()
    if reason:
        pytest.skip(reason)
    work = tmp_path / "ns"
    work.mkdir()
    proc = subprocess.run(
        ["unshare", "-m", "--fork", "--", "bash", str(INSTALL_SCRIPT), str(work), str(deb)],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    lines = proc.stdout.splitlines()
    reports = {r["phase"]: r for r in (json.loads(ln) for ln in lines if ln.startswith("{"))}

    inst = reports["installed"]
    assert inst["user"] == "/usr/sbin/nologin"
    assert inst["paths"]["/var/lib/station"] == {"mode": "0o700", "owner": "station", "group": "station"}
    assert inst["paths"]["/var/lib/station/keys"]["mode"] == "0o700"
    assert inst["paths"]["/etc/station"] == {"mode": "0o750", "owner": "root", "group": "station"}
    assert inst["paths"]["/opt/enrollment-station/bin/station"]["owner"] == "root"
    assert inst["enabled"] == {"sync": True, "timer": True, "kiosk": True}
    assert any(ln.startswith("HELP Usage: station") for ln in lines), proc.stdout
    verify = [ln for ln in lines if ln.startswith("VERIFYLINE ")]
    assert verify == [], "\n".join(verify)
    assert [ln for ln in lines if ln.startswith("UDEV ")] == []

    made = reports["initialised"]["paths"]
    for path in ("/var/lib/station/queue.db", "/var/lib/station/keys/db.cred"):
        assert made[path] == {"mode": "0o600", "owner": "station", "group": "station"}, path
    assert made["/etc/station/station.toml"] == {"mode": "0o640", "owner": "root", "group": "station"}
    services = [ln for ln in lines if ln.startswith("SERVICE ")]
    assert services == ["SERVICE ok status --json", "SERVICE ok purge", "SERVICE ok audit verify"], services

    removed = reports["removed"]
    assert removed["paths"]["/opt/enrollment-station/bin/station"] is None
    assert removed["paths"]["/var/lib/station/queue.db"] is not None, "remove keeps data"
    assert removed["paths"]["/var/lib/station/keys/db.cred"] is not None
    assert removed["user"] is not None

    purged = reports["purged"]
    assert purged["paths"]["/var/lib/station"] is None, "purge crypto-erases the data"
    assert purged["paths"]["/etc/station"] is None
    assert purged["user"] is None


def test_sbom_beside_and_inside_lists_the_locked_packages(deb: Path, tmp_path: Path) -> None:
    """The CycloneDX SBOM names exactly what the lock pinned (and the project itself)."""
    from tests.test_packaging_lock import _pins

    beside = deb.with_suffix(".cdx.json")
    assert beside.is_file()
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp_path)], check=True)
    inside = tmp_path / "usr" / "share" / "doc" / "enrollment-station" / "sbom.cdx.json"
    assert inside.read_bytes() == beside.read_bytes()
    sbom = json.loads(beside.read_text(encoding="utf-8"))
    assert sbom["bomFormat"] == "CycloneDX"
    listed = {c["name"].lower().replace("_", "-"): c["version"] for c in sbom["components"]}
    pins = _pins(ROOT / "packaging" / "lock" / "station.txt")
    assert {name: str(v) for name, (v, _) in pins.items()} == {
        name: version for name, version in listed.items() if name != "enrollment-station"
    }
    # The Qt Widgets kiosk does not carry Qt's QML stack or developer tools.
    listing = dpkg_deb("-c", str(deb))
    assert "/PySide6/Qt/qml/" not in listing and "libQt6Quick" not in listing
