"""The installed layout works for the services' real user (issue 13, finding 3).

Root makes a throwaway system user and the appliance's layout as the postinst does (home owned by
the user, 0700; a configuration folder ``root:<group>`` 0750), then runs the technician's commands
as root (``station provision`` against a real central on loopback, ``enroll``, ``doctor``) and the
services' commands (``sync once``, ``purge``, ``status``, ``audit verify``) as that user through
``runuser``. Nobody chowns anything by hand: what provision and the CLI leave must be right."""

from __future__ import annotations

import grp
import json
import os
import pwd
import secrets
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sync_live import Central, make_example, running_central

ROOT = Path(__file__).resolve().parents[1]
# The test's interpreter may live under /root (pyenv), which the throwaway user cannot enter; the
# system's python3.11 runs the same sources and the venv's packages (same ABI).
SYSTEM_PYTHON = Path("/usr/bin/python3.11")
SITE = Path(sys.executable).parent.parent / "lib" / "python3.11" / "site-packages"

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(os.geteuid() != 0, reason="making a throwaway user and running as it needs root"),
    pytest.mark.skipif(
        shutil.which("runuser") is None or shutil.which("useradd") is None, reason="no runuser"
    ),
    pytest.mark.skipif(not SYSTEM_PYTHON.exists(), reason="no /usr/bin/python3.11 for the throwaway user"),
]


@pytest.fixture(scope="module")
def user() -> Iterator[str]:
    name = f"stown{secrets.token_hex(3)}"
    subprocess.run(
        ["useradd", "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        check=True,
    )
    try:
        yield name
    finally:
        subprocess.run(["userdel", name], check=False)
        subprocess.run(["groupdel", name], check=False, capture_output=True)


@pytest.fixture(scope="module")
def central(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Central]:
    with running_central(tmp_path_factory.mktemp("central") / "home") as c:
        yield c


@pytest.fixture
def layout(user: str) -> Iterator[tuple[Path, Path]]:
    """(home, config) laid out as postinst does, in a folder the throwaway user can traverse."""
    SERVICE_ENV.clear()
    base = Path(tempfile.mkdtemp(prefix="station-layout-", dir="/tmp"))
    os.chmod(base, 0o755)
    pw = pwd.getpwnam(user)
    home, etc = base / "var-lib-station", base / "etc-station"
    home.mkdir(mode=0o700)
    os.chown(home, pw.pw_uid, pw.pw_gid)
    etc.mkdir(mode=0o750)
    os.chown(etc, 0, pw.pw_gid)
    try:
        yield home, etc / "station.toml"
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _env(config: Path) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k not in ("STATION_HOME", "CENTRAL_HOME")}
    return {**keep, "STATION_CONFIG": str(config), "PYTHONPATH": f"{ROOT}:{SITE}", "HOME": "/nonexistent"}


def as_root(home: Path, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [str(SYSTEM_PYTHON), "-m", "station", "--home", str(home), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=_env(config), check=False)


SERVICE_ENV: dict[str, str] = {}


def as_user(user: str, home: Path, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**_env(config), **SERVICE_ENV}
    cmd = ["runuser", "-u", user, "--", "env", *(f"{k}={v}" for k, v in env.items() if k != "PATH")]
    cmd += [str(SYSTEM_PYTHON), "-m", "station", "--home", str(home), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd="/", check=False)


def _owners(home: Path, config: Path) -> dict[str, tuple[str, str, str]]:
    out: dict[str, tuple[str, str, str]] = {}
    for path in [home, *sorted(home.rglob("*")), config]:
        st = os.lstat(path)
        out[str(path.relative_to(home.parent))] = (
            pwd.getpwuid(st.st_uid).pw_name,
            grp.getgrgid(st.st_gid).gr_name,
            f"{stat.S_IMODE(st.st_mode):04o}",
        )
    return out


def _assert_layout(user: str, home: Path, config: Path) -> None:
    owners = _owners(home, config)
    for name, (owner, group, mode) in owners.items():
        assert int(mode, 8) & 0o007 == 0, f"{name} is world-accessible ({mode})"
        if name.startswith("etc-station"):
            assert (owner, group, mode) == ("root", user, "0640"), (name, owner, group, mode)
        else:
            assert (owner, group) == (user, user), (name, owner, group, mode)
    for name in ("queue.db", "keys/db", "keys/identity", "pki/station.crt"):
        assert any(k.startswith(f"var-lib-station/{name}") for k in owners), sorted(owners)


def service_credentials(user: str, home: Path, into: Path) -> dict[str, str]:
    """What systemd does for the units' ``LoadCredentialEncrypted=``: unseal each key (as root) into a
    folder only the service's user can read, named by ``$CREDENTIALS_DIRECTORY``. Nothing for the
    file backend, whose key files the user reads itself."""
    creds = sorted((home / "keys").glob("*.cred"))
    if not creds:
        return {}
    pw = pwd.getpwnam(user)
    into.mkdir(mode=0o700)
    for cred in creds:
        name = f"station-{cred.stem}-key"
        subprocess.run(
            ["systemd-creds", "decrypt", f"--name={name}", str(cred), str(into / name)], check=True
        )
        os.chown(into / name, pw.pw_uid, pw.pw_gid)
        os.chmod(into / name, 0o400)
    os.chown(into, pw.pw_uid, pw.pw_gid)
    return {"CREDENTIALS_DIRECTORY": str(into)}


def test_provisioned_as_root_the_services_run_as_their_user(
    user: str, layout: tuple[Path, Path], central: Central, tmp_path: Path
) -> None:
    home, config = layout
    example = make_example(tmp_path)
    shutil.copytree(example.parent, home.parent / "example")  # readable by root, the importer
    example = home.parent / "example" / "enrollment.json"

    token = central.token("st-own-01")
    token_file = tmp_path / "token.txt"
    token_file.write_text(token + "\n")
    done = as_root(
        home,
        config,
        "provision",
        "--skip-devices",
        "--station-id",
        "st-own-01",
        "--central",
        central.ingest_url,
        "--enroll-url",
        central.enroll_url,
        "--token-file",
        str(token_file),
        "--ca-fingerprint",
        central.fingerprint,
    )
    assert done.returncode == 0, done.stderr
    _assert_layout(user, home, config)

    # The technician imports an enrollment as root: the queue's WAL appears, and is the user's too.
    done = as_root(home, config, "enroll", "--from-json", str(example))
    assert done.returncode == 0, done.stderr
    _assert_layout(user, home, config)

    # The services' commands, as the services' user (with the keys systemd would hand them).
    SERVICE_ENV.clear()
    SERVICE_ENV.update(service_credentials(user, home, home.parent / "credentials"))
    status = as_user(user, home, config, "status", "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["pending"] == 1
    synced = as_user(user, home, config, "sync", "once")
    assert synced.returncode == 0, synced.stderr
    assert json.loads(as_user(user, home, config, "status", "--json").stdout)["counts"]["acked"] == 1
    for args in (("purge",), ("audit", "verify")):
        done = as_user(user, home, config, *args)
        assert done.returncode == 0, (args, done.stderr)

    # Root's tools afterwards (doctor opens the queue and may re-create its -wal/-shm) change nothing.
    doctor = as_root(home, config, "doctor", "--skip-devices", "--json")
    checks = {c["name"]: c["status"] for c in json.loads(doctor.stdout)["checks"]}
    assert checks["queue"] == "ok" and checks["keys"] == "ok", doctor.stdout
    _assert_layout(user, home, config)
    assert as_user(user, home, config, "status").returncode == 0


def test_a_queue_left_to_root_is_named_as_such(user: str, layout: tuple[Path, Path]) -> None:
    """What the review saw (root:root 0600 queue) now says what is wrong instead of a wrong key."""
    home, config = layout
    assert as_root(home, config, "init", "--demo").returncode == 0
    os.chown(home / "queue.db", 0, 0)
    done = as_user(user, home, config, "status")
    assert done.returncode == 1
    assert done.stderr.startswith("error [store.permissions]: This user"), done.stderr
    assert "wrong key" not in done.stderr
    # The next root command puts it back.
    assert as_root(home, config, "status").returncode == 0
    assert as_user(user, home, config, "status").returncode == 0
