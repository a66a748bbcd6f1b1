"""`station enroll --from-json` on hostile folders (issue 13, finding 9): every attack the review ran
first reproduced, then refused with a typed error (never a hang, a traceback or a file outside).

Each case is bounded: the FIFO and /dev/zero cases would hang or exhaust memory before the fix,
and the module timeout turns that into a failure."""

from __future__ import annotations

import copy
import json
import os
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import pytest

from station.enrollment import files as enrollment_files
from station.enrollment.example import write_example
from station.enrollment.files import enrollment_from_json, load_enrollment
from station.errors import ValidationFailed

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def example_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_example(tmp_path_factory.mktemp("example")).parent


@pytest.fixture
def folder(tmp_path: Path, example_dir: Path) -> Path:
    target = tmp_path / "enrollment"
    shutil.copytree(example_dir, target)
    return target


def _data(folder: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((folder / "enrollment.json").read_text(encoding="utf-8"))
    return loaded


def _first_image_finger(data: dict[str, Any]) -> str:
    return next(k for k, v in data["fingers"].items() if "image" in v)


def _refused(data: dict[str, Any], folder: Path, match: str) -> ValidationFailed:
    with pytest.raises(ValidationFailed, match=match) as err:
        enrollment_from_json(data, folder)
    assert err.value.urdu
    return err.value


def test_the_example_still_loads(folder: Path) -> None:
    assert len(load_enrollment(folder / "enrollment.json").fingers) == 10


@pytest.mark.parametrize(
    "name", ["../outside.png", "sub/../../outside.png", "/etc/passwd", "./x.png", "a//b"]
)
def test_names_that_leave_the_folder_are_refused(folder: Path, name: str) -> None:
    (folder.parent / "outside.png").write_bytes((folder / _data(folder)["face"]).read_bytes())
    data = _data(folder)
    data["face"] = name
    _refused(data, folder, r"face: .*(leaves the enrollment's folder|absolute path)")


def test_a_symlink_out_of_the_folder_is_refused(folder: Path) -> None:
    secret = folder.parent / "secret.png"
    secret.write_bytes((folder / _data(folder)["face"]).read_bytes())
    (folder / "link.png").symlink_to(secret)
    data = _data(folder)
    data["face"] = "link.png"
    _refused(data, folder, r"face: link\.png is \(or passes through\) a symbolic link")
    # ...and a symlinked sub-folder is not walked through either.
    (folder / "sub").symlink_to(folder.parent)
    data["face"] = "sub/secret.png"
    _refused(data, folder, "symbolic link")


def test_shadow_through_a_link_is_never_read(folder: Path) -> None:
    (folder / "shadow.png").symlink_to("/etc/shadow")
    data = _data(folder)
    data["fingers"][_first_image_finger(data)]["image"] = "shadow.png"
    _refused(data, folder, "symbolic link")


def test_a_fifo_is_refused_without_waiting_for_a_writer(folder: Path) -> None:
    os.mkfifo(folder / "pipe.png")
    data = _data(folder)
    data["face"] = "pipe.png"
    _refused(data, folder, r"face: pipe\.png is not a regular file")


@pytest.mark.skipif(os.geteuid() != 0, reason="making a device node needs root")
def test_a_device_node_in_the_folder_is_refused(folder: Path) -> None:
    import stat

    os.mknod(folder / "zero.png", 0o600 | stat.S_IFCHR, os.makedev(1, 5))  # /dev/zero's numbers
    data = _data(folder)
    data["face"] = "zero.png"
    _refused(data, folder, r"not a regular file")


def test_dev_zero_as_the_enrollment_file_is_refused() -> None:
    with pytest.raises(ValidationFailed, match="not a regular file"):
        load_enrollment(Path("/dev/zero"))


def test_an_oversized_enrollment_file_is_refused_without_reading_it_all(folder: Path) -> None:
    big = folder / "big.json"
    with open(big, "wb") as fh:
        fh.truncate(enrollment_files.MAX_JSON_BYTES + 1)  # sparse: costs no disk
    with pytest.raises(ValidationFailed, match="over the 1048576-byte limit"):
        load_enrollment(big)


def test_deep_json_and_bad_utf8_are_typed_errors(folder: Path) -> None:
    deep = folder / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValidationFailed, match="nests deeper than 16 levels"):
        load_enrollment(deep)
    # Brackets inside strings do not count.
    assert enrollment_files.json_depth('{"a": "[[[[[[[[[[[[[[[[[[[[[[\\"]]"}') == 1
    bad = folder / "bad.json"
    bad.write_bytes(b'{"operator_id": "op-\xff\xfe"}')
    with pytest.raises(ValidationFailed, match=r"not UTF-8 text \(byte 20 is invalid\)"):
        load_enrollment(bad)


def _png_header_only(width: int, height: int) -> bytes:
    """A valid 1-bit PNG declaring width x height, whose few compressed bytes inflate to gigabytes."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    row = b"\x00" + bytes((width + 7) // 8)
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(row) for _ in range(min(height, 64))) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.mark.parametrize(("width", "height"), [(100_000, 100_000), (5_000, 5_000), (12_000, 8_000)])
def test_decompression_bomb_pngs_are_typed_errors(folder: Path, width: int, height: int) -> None:
    (folder / "bomb.png").write_bytes(_png_header_only(width, height))
    data = _data(folder)
    data["face"] = "bomb.png"
    _refused(data, folder, r"face: bomb\.png (declares too many pixels|declares \d+x\d+ pixels, over)")
    data = _data(folder)
    data["fingers"][_first_image_finger(data)]["image"] = "bomb.png"
    _refused(data, folder, r"fingers\.\d+: bomb\.png (declares too many pixels|declares \d+x\d+ pixels)")


def test_attempts_and_notes_are_bounded(folder: Path) -> None:
    data = _data(folder)
    key = _first_image_finger(data)
    data["fingers"][key]["attempts"] = 10**9
    _refused(data, folder, r"attempts must be a whole number from 1 to 10")
    data = _data(folder)
    exc_key = next(k for k, v in data["fingers"].items() if "exception" in v)
    for note in ["x" * 5_000_000, "two\nlines", 7]:
        bad = copy.deepcopy(data)
        bad["fingers"][exc_key]["note"] = note
        _refused(bad, folder, r"note must be one line of at most 200 characters")


def test_face_checks_come_from_the_closed_set(folder: Path) -> None:
    data = _data(folder)
    for checks in [
        {"free": "anything the file likes"},
        {"checks": {"made_up_check": {"passed": True}}},
        {"checks": {"eyes": {"passed": True, "comment": "x"}}},
        {"all_passed": "x" * 10_000},
        {"eyes": [[1, 2], [3, 4], [5, 6]]},
        {"portrait": {"width": [[1]]}},
    ]:
        bad = copy.deepcopy(data)
        bad["face_checks"] = checks
        _refused(bad, folder, r"face_checks")
    good = copy.deepcopy(data)
    good["face_checks"] = {
        "all_passed": True,
        "faces_found": 1,
        "face_box": [10, 20, 100, 120],
        "eyes": [[30, 40], [70, 40]],
        "checks": {"one_face": {"passed": True, "value": 1.0}, "sharpness": {"passed": True, "value": None}},
        "portrait": {"width": 420, "height": 560, "eyes_from": "eyes"},
    }
    loaded = enrollment_from_json(good, folder)
    assert loaded.face is not None and loaded.face.checks["checks"]["one_face"]["passed"] is True


@pytest.mark.parametrize("key", ["\u0661", "\u06f1", "\uff11", "1\u0660", "RIGHT_THUMB\u0301"])
def test_finger_keys_are_ascii_digits_or_names(folder: Path, key: str) -> None:
    data = _data(folder)
    data["fingers"][key] = data["fingers"].pop(_first_image_finger(data))
    _refused(data, folder, r"is not a finger position")


def test_a_finger_given_twice_is_refused(folder: Path) -> None:
    data = _data(folder)
    data["fingers"]["right_thumb"] = copy.deepcopy(data["fingers"]["1"])
    _refused(data, folder, r"finger 1 is given twice")


def test_the_cli_prints_one_error_line_not_a_traceback(tmp_path: Path, folder: Path) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "STATION_HOME": str(home)}

    def station(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "station", *args], capture_output=True, text=True, env=env, timeout=60
        )

    assert station("init", "--demo").returncode == 0
    data = _data(folder)
    data["face"] = "../../../../../../../../etc/shadow"
    (folder / "enrollment.json").write_text(json.dumps(data), encoding="utf-8")
    done = station("enroll", "--from-json", str(folder / "enrollment.json"))
    assert done.returncode == 1
    assert done.stderr.startswith("error [enrollment.file]: face:"), done.stderr
    assert "Traceback" not in done.stderr
    fifo = folder / "pipe.json"
    os.mkfifo(fifo)
    done = station("enroll", "--from-json", str(fifo))
    assert done.returncode != 0 and "Traceback" not in done.stderr
