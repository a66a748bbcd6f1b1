"""``station quality face FILE``: exit 0 when every check passes, 1 when one fails, 2 when unreadable."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from click.testing import CliRunner

from station.cli.quality_face import face_cmd
from tests import face_images as fi


def write(tmp_path: Path, name: str, img: np.ndarray) -> Path:
    path = tmp_path / name
    assert cv2.imwrite(str(path), img)
    return path


def test_passing_photo_exits_0(tmp_path: Path) -> None:
    result = CliRunner().invoke(face_cmd, [str(write(tmp_path, "ok.png", fi.suitable_crop()))])
    assert result.exit_code == 0, result.output
    assert "PASS  roll" in result.output and "FAIL" not in result.output
    assert "every check passes" in result.output


def test_failing_photo_exits_1_and_says_what_to_do(tmp_path: Path) -> None:
    path = write(tmp_path, "tilted.jpg", fi.rotated(fi.suitable_crop(), 20))
    result = CliRunner().invoke(face_cmd, [str(path)])
    assert result.exit_code == 1, result.output
    assert "FAIL  roll" in result.output and "Tilt your head level." in result.output


def test_json_lists_every_check(tmp_path: Path) -> None:
    path = write(tmp_path, "none.png", fi.no_face())
    result = CliRunner().invoke(face_cmd, [str(path), "--json"])
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert data["all_passed"] is False and data["faces_found"] == 0
    assert data["checks"]["one_face"] == {
        "passed": False,
        "value": 0.0,
        "instruction_en": "No face found: look straight at the camera.",
        "instruction_ur": "کوئی چہرہ نظر نہیں آیا: سیدھا کیمرے کی طرف دیکھیں۔",
    }


def test_unreadable_file_exits_2(tmp_path: Path) -> None:
    missing = CliRunner().invoke(face_cmd, [str(tmp_path / "missing.jpg")])
    assert missing.exit_code == 2 and "Cannot read" in missing.output
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"not a picture")
    result = CliRunner().invoke(face_cmd, [str(junk)])
    assert result.exit_code == 2 and "not an image" in result.output


def test_portrait_option_writes_the_token(tmp_path: Path) -> None:
    out = tmp_path / "token.jpg"
    result = CliRunner().invoke(
        face_cmd, [str(write(tmp_path, "ok.png", fi.suitable_crop())), "--portrait", str(out)]
    )
    assert result.exit_code == 0
    token = cv2.imread(str(out))
    assert token is not None and token.shape == (640, 480, 3)


def test_station_entry_point_reaches_the_command(tmp_path: Path) -> None:
    from station.cli import cli

    path = write(tmp_path, "ok.png", fi.suitable_crop())
    result = CliRunner().invoke(cli, ["quality", "face", str(path), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["all_passed"] is True
