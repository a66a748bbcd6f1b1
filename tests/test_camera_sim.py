"""The simulated camera: pacing, latest frame wins, unplug/replug, dropped frames, sources."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from drivers.camera.sim import SimCamera
from drivers.errors import DeviceNotFound, DeviceUnplugged, UnsupportedURL
from drivers.url import open_device
from tests import face_images as fi
from tests.waiting import wait_for


def coloured(tmp_path: Path, count: int) -> Path:
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(count):
        cv2.imwrite(str(folder / f"{i:03d}.png"), np.full((48, 64, 3), i * 20, np.uint8))
    return folder


@pytest.fixture
def camera(tmp_path: Path) -> Iterator[SimCamera]:
    cam = SimCamera(str(coloured(tmp_path, 5)), fps=100)
    cam.start()
    yield cam
    cam.close()


def test_opens_through_the_url_scheme(tmp_path: Path) -> None:
    image = tmp_path / "face.png"
    cv2.imwrite(str(image), fi.preview_frame())
    cam = open_device(f"sim://camera?source={image}&fps=25")
    assert isinstance(cam, SimCamera)
    with cam:
        assert cam.info().details["source"] == "image" and cam.info().details["fps"] == "25"
        cam.start()
        seq, frame = cam.wait_newer(0, timeout=5)
        assert seq >= 1 and frame.shape == (480, 640, 3)


def test_bad_urls_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DeviceNotFound):
        open_device(f"sim://camera?source={tmp_path / 'nothing'}")
    with pytest.raises(UnsupportedURL):
        open_device("sim://camera?fps=fast")
    with pytest.raises(UnsupportedURL):
        open_device("sim://camera?width=640")


def test_latest_frame_wins_a_slow_reader_sees_no_backlog(camera: SimCamera) -> None:
    first, _ = camera.wait_newer(0, timeout=5)
    produced = camera.frames_produced
    wait_for(lambda: camera.frames_produced >= produced + 10)  # the reader is busy for 10 frames
    latest = camera.latest_frame()
    assert latest is not None
    seq, _ = latest
    assert seq >= first + 10  # it skips straight to the newest frame
    again = camera.latest_frame()
    assert again is not None and again[0] - seq <= 2  # nothing queued up behind it


def test_frames_are_paced_at_the_requested_rate(tmp_path: Path) -> None:
    with SimCamera(str(coloured(tmp_path, 3)), fps=50) as cam:
        cam.start()
        seq0, _ = cam.wait_newer(0, timeout=5)
        t0 = time.monotonic()
        seq = seq0
        while time.monotonic() - t0 < 1.0:
            seq, _ = cam.wait_newer(seq, timeout=2)
        rate = (seq - seq0) / (time.monotonic() - t0)
        assert 40 <= rate <= 55, rate


def test_directory_plays_in_name_order(camera: SimCamera) -> None:
    values: list[int] = []
    seq = 0
    while len(values) < 7:
        seq, frame = camera.wait_newer(seq, timeout=5)
        values.append(int(frame[0, 0, 0]))
    starts = [i for i, v in enumerate(values) if v == 0]
    for i, v in enumerate(values):
        if i and v:
            assert v == values[i - 1] + 20 or values[i - 1] == 80  # a looped sequence 0, 20, ..., 80
    assert starts


def test_unplug_raises_then_replug_resumes(camera: SimCamera) -> None:
    seq, _ = camera.wait_newer(0, timeout=5)
    camera.unplug()
    assert camera.unplugged
    with pytest.raises(DeviceUnplugged) as exc:
        camera.latest_frame()
    assert "reconnect" in exc.value.message
    with pytest.raises(DeviceUnplugged):
        camera.still(timeout=1)
    produced = camera.frames_produced
    camera.replug()
    assert not camera.unplugged
    newer, frame = camera.wait_newer(seq, timeout=5)
    assert newer > seq and frame.shape == (48, 64, 3)
    assert camera.frames_produced > produced
    latest = camera.latest_frame()
    assert latest is not None


def test_dropped_frames_make_the_sequence_jump(camera: SimCamera) -> None:
    seq, _ = camera.wait_newer(0, timeout=5)
    camera.drop_frames(4)
    seqs = [seq]
    for _ in range(8):
        seqs.append(camera.wait_newer(seqs[-1], timeout=5)[0])
    gaps = [b - a for a, b in itertools.pairwise(seqs)]
    assert 5 in gaps, gaps  # four frames lost: one step of five


def test_still_is_full_resolution_when_the_preview_is_scaled(tmp_path: Path) -> None:
    image = tmp_path / "face.png"
    cv2.imwrite(str(image), fi.suitable_crop())
    with SimCamera(str(image), fps=60, size=(240, 320)) as cam:
        cam.start()
        _, preview = cam.wait_newer(0, timeout=5)
        assert preview.shape == (320, 240, 3)
        assert cam.still(timeout=5).shape == (640, 480, 3)


def test_video_file_plays_and_loops(tmp_path: Path) -> None:
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter.fourcc(*"MJPG"), 30, (64, 48))
    assert writer.isOpened()
    for i in range(6):
        writer.write(np.full((48, 64, 3), 40 * i, np.uint8))
    writer.release()
    with SimCamera(str(video), fps=120) as cam:
        assert cam.info().details["source"] == "video"
        cam.start()
        seq = 0
        seen: list[int] = []
        while len(seen) < 14:
            seq, frame = cam.wait_newer(seq, timeout=5)
            seen.append(round(float(frame.mean()) / 40))
        assert seen.count(0) >= 2  # played past the end and started again


def test_synthetic_face_passes_the_face_checks() -> None:
    from drivers.quality.face import check_face

    with open_device("sim://camera?source=synthetic&fps=30") as cam:
        assert isinstance(cam, SimCamera)
        cam.start()
        _, frame = cam.wait_newer(0, timeout=5)
        assert frame.shape == (480, 640, 3)
        assert check_face(frame).all_passed


def test_close_is_prompt_while_unplugged(camera: SimCamera) -> None:
    camera.wait_newer(0, timeout=5)
    camera.unplug()
    t0 = time.monotonic()
    camera.close()
    assert time.monotonic() - t0 < 1.0


def unplug_cycles(camera: SimCamera, cycles: int) -> None:
    seq, _ = camera.wait_newer(0, timeout=5)
    for _ in range(cycles):
        camera.unplug()
        with pytest.raises(DeviceUnplugged):
            camera.wait_newer(seq, timeout=1)
        camera.replug()
        seq, _ = camera.wait_newer(seq, timeout=5)


def test_unplug_replug_three_times(camera: SimCamera) -> None:
    unplug_cycles(camera, 3)


@pytest.mark.slow
def test_unplug_replug_two_hundred_times(camera: SimCamera) -> None:
    unplug_cycles(camera, 200)
    assert camera.latest_frame() is not None


def test_synthetic_at_720p_passes_the_face_checks() -> None:
    from drivers.quality.face import check_face

    with open_device("sim://camera?source=synthetic&fps=30&width=1280&height=720") as cam:
        assert isinstance(cam, SimCamera)
        cam.start()
        _, frame = cam.wait_newer(0, timeout=5)
        assert frame.shape == (720, 1280, 3)
        assert check_face(frame).all_passed
