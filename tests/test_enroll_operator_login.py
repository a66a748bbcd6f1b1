"""`station enroll --operator X` needs X's login; without it the packet is a technician's import
(issue 13, finding 10). Before the fix any id given on the command line was recorded as the operator."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from packetformat.packet import open_packet
from station.auth import OperatorDirectory, OperatorFile, Role
from station.home import StationHome
from station.session import open_station
from tests.sync_live import make_example

FINGERS = Path(__file__).parent / "fixtures" / "fingerprints"
PIN = "482913"


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_example(tmp_path_factory.mktemp("example"))


@pytest.fixture
def home(tmp_path: Path) -> StationHome:
    from drivers import match

    home = StationHome(tmp_path / "home")
    assert station(home, "init", "--demo").returncode == 0
    pixels = np.asarray(Image.open(FINGERS / "elan.png").convert("L"), dtype=np.uint8)
    directory = OperatorDirectory(OperatorFile.for_home(home))
    directory.add("sup-1", PIN, Role.SUPERVISOR, templates=[match.template_from_image(pixels)])
    return home


def station(home: StationHome, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "station", "--home", str(home.root), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _document(home: StationHome, packet_id: str) -> dict[str, object]:
    with open_station(home) as st:
        env = st.store.envelope(packet_id)
        doc: dict[str, object] = open_packet(
            env, st.keys.get("demo-recipient"), st.keys.identity_public_key()
        )
        return doc


def _last_commit(home: StationHome) -> dict[str, str | int]:
    with open_station(home) as st:
        return [e for e in st.audit.entries() if e.event == "enrollment.commit"][-1].fields


def test_an_operator_id_alone_is_refused(home: StationHome, example: Path) -> None:
    done = station(home, "enroll", "--from-json", str(example), "--operator", "sup-1")
    assert done.returncode == 2 and "needs that operator's login" in done.stderr
    with open_station(home) as st:
        assert st.store.counts()["sealed"] == 0


def test_without_an_operator_the_packet_is_a_technician_import(home: StationHome, example: Path) -> None:
    done = station(home, "enroll", "--from-json", str(example))
    assert done.returncode == 0, done.stderr
    assert "imported by a technician" in done.stderr
    doc = _document(home, done.stdout.strip().splitlines()[-1])
    # The file says op-demo: an id nobody logged in as is not recorded.
    assert doc["entered_by"] == "technician-import" and doc["operator_id"] == "technician-import"
    assert _last_commit(home) == {
        "packet": done.stdout.strip().splitlines()[-1],
        "operator": "technician-import",
        "entered_by": "technician-import",
        "fingers": 9,
    }


def test_the_operator_logs_in_with_pin_and_finger(home: StationHome, example: Path) -> None:
    args = ["enroll", "--from-json", str(example), "--operator", "sup-1", "--operator-finger"]
    wrong_pin = station(home, *args, str(FINGERS / "elan.png"), "--pin-stdin", stdin="739182\n")
    assert wrong_pin.returncode == 1 and wrong_pin.stderr.startswith("error [auth.bad_credentials]")
    other_finger = station(home, *args, str(FINGERS / "aes3500.png"), "--pin-stdin", stdin=PIN + "\n")
    assert other_finger.returncode == 1 and other_finger.stderr.startswith("error [auth.finger_mismatch]")
    done = station(home, *args, str(FINGERS / "elan.png"), "--pin-stdin", stdin=PIN + "\n")
    assert done.returncode == 0, done.stderr
    packet_id = done.stdout.strip().splitlines()[-1]
    doc = _document(home, packet_id)
    assert doc["entered_by"] == "operator" and doc["operator_id"] == "sup-1"
    assert _last_commit(home)["operator"] == "sup-1"
    with open_station(home) as st:
        events = [(e.event, e.fields.get("code")) for e in st.audit.entries() if e.event.startswith("auth.")]
    assert events == [
        ("auth.failed", "auth.bad_credentials"),
        ("auth.failed", "auth.finger_mismatch"),
        ("auth.login", None),
    ]
    with open_station(home) as st:
        assert st.store.counts()["sealed"] == 1  # the refused attempts queued nothing
