"""A really full disk (issue 13, finding 8): every command tells it from a wrong key and says what to do.

The station lives on a small tmpfs mounted in a private mount namespace (root: ``unshare -m``;
another user: ``unshare -rm``, a user namespace), filled with a file: the disk is full for SQLite,
the kernel and ``statvfs`` alike, nothing is simulated. Each run takes a few seconds."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from station.enrollment.example import write_example

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.timeout(180)

# What the review saw before the fix: a full disk reported as a wrong key, or a raw traceback.
WRONG = ("store.wrong_key", "Traceback", "OperationalError", "Saving failed unexpectedly")


def _namespace() -> list[str] | None:
    if shutil.which("unshare") is None:
        return None
    for cmd in (["unshare", "-m", "--fork"], ["unshare", "-rm", "--fork"]):
        if os.geteuid() != 0 and cmd[1] == "-m":
            continue
        probe = subprocess.run([*cmd, "true"], capture_output=True, check=False)
        if probe.returncode == 0:
            return cmd
    return None


NAMESPACE = _namespace()
needs_namespace = pytest.mark.skipif(
    NAMESPACE is None, reason="no private mount namespace here (unshare -m / -rm refused)"
)

SCRIPT = r"""
set -u
D=$1; EX=$2; KEEP_KB=$3
mount -t tmpfs -o size=6m tmpfs "$D"
S() { "$PY" -m station --home "$D/home" "$@"; }
S init --demo >/dev/null
sed -i 's/^disk_floor_mb = .*/disk_floor_mb = 0/' "$D/home/station.toml"
S enroll --from-json "$EX" | tail -1 | sed 's/^/FIRST /'
dd if=/dev/zero of="$D/fill" bs=4k 2>/dev/null || true
if [ "$KEEP_KB" -gt 0 ]; then truncate -s "-${KEEP_KB}k" "$D/fill"; fi
echo "FREE $(df -k --output=avail "$D" | tail -1)"
for cmd in "enroll --from-json $EX" "status" "audit verify" "purge" "doctor --skip-devices --json"; do
  echo "== $cmd"
  S $cmd 2>&1
  echo "rc=$?"
done
echo "== kiosk"
"$PY" - "$D/home" "$EX" <<'PY' 2>&1
import sys
from pathlib import Path
from station.commit import commit_enrollment
from station.enrollment.files import load_enrollment
from station.errors import StationError
from station.home import StationHome
from station.session import open_station
try:
    with open_station(StationHome(Path(sys.argv[1]))) as station:
        commit_enrollment(station, load_enrollment(Path(sys.argv[2]), station_id=station.station_id))
except StationError as exc:
    print(f"KIOSK {exc.code} urdu={bool(exc.urdu)}")
PY
"""


def _run(tmp_path: Path, keep_kb: int) -> dict[str, str]:
    assert NAMESPACE is not None
    ex = write_example(tmp_path / "ex")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    script = tmp_path / "full.sh"
    script.write_text(SCRIPT)
    env = {**os.environ, "PY": sys.executable, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [*NAMESPACE, "bash", str(script), str(mnt), str(ex), str(keep_kb)],
        capture_output=True,
        text=True,
        timeout=150,
        env=env,
        check=False,
    )
    sections: dict[str, str] = {}
    name = "setup"
    for line in proc.stdout.splitlines():
        if line.startswith("== "):
            name = line[3:]
            sections[name] = ""
        else:
            sections[name] = sections.get(name, "") + line + "\n"
    assert "FIRST " in sections.get("setup", ""), proc.stdout + proc.stderr
    return sections


@needs_namespace
def test_a_full_disk_is_never_a_wrong_key(tmp_path: Path) -> None:
    out = _run(tmp_path, keep_kb=0)
    for cmd in ("enroll --from-json", "status", "audit verify", "purge"):
        text = next(v for k, v in out.items() if k.startswith(cmd))
        assert "rc=1" in text, (cmd, text)
        assert "error [store.disk_full]: The disk holding" in text, (cmd, text)
        assert "do not re-provision" in text and "'station purge'" in text
        assert not any(w in text for w in WRONG), (cmd, text)
    doctor_text = out["doctor --skip-devices --json"]
    doctor = json.loads(doctor_text[: doctor_text.rindex("}") + 1])
    by_name = {c["name"]: c for c in doctor["checks"]}
    assert by_name["disk"]["status"] == "fail" and "the disk is full" in by_name["disk"]["detail"]
    assert by_name["queue"]["status"] == "fail" and "is full" in by_name["queue"]["detail"]
    assert "Do not re-provision" in by_name["queue"]["fix"]
    assert "wrong key" not in doctor_text
    assert "KIOSK store.disk_full urdu=True" in out["kiosk"]


@needs_namespace
def test_a_disk_that_fills_during_the_commit(tmp_path: Path) -> None:
    # 64 KB free: the queue opens and reads, the 130 KB packet's commit cannot be written.
    out = _run(tmp_path, keep_kb=64)
    enroll = next(v for k, v in out.items() if k.startswith("enroll"))
    assert "error [store.disk_full]:" in enroll and "rc=1" in enroll, enroll
    assert not any(w in enroll for w in WRONG), enroll
    assert "rc=0" in out["status"] and "sealed 1" in out["status"], out["status"]  # nothing half-written
    assert "rc=0" in out["audit verify"] and "audit chain OK: 2 entries" in out["audit verify"]
    assert "KIOSK store.disk_full urdu=True" in out["kiosk"]
