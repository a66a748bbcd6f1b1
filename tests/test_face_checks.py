"""ICAO-style face checks on the real astronaut portrait and its altered copies."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.camera.synthetic import frames
from drivers.quality.face import CHECK_NAMES, AutoCapture, FaceConfig, FaceReport, check_face
from tests import face_images as fi

ARABIC = re.compile(r"[\u0600-\u06FF]")


def failed(report: FaceReport) -> set[str]:
    return {c.name for c in report.checks if not c.passed}


def test_suitable_crop_passes_every_check() -> None:
    report = check_face(fi.suitable_crop())
    assert failed(report) == set(), report.checks
    assert report.all_passed
    assert tuple(c.name for c in report.checks) == CHECK_NAMES
    assert report.face_box is not None
    (lx, ly), (rx, ry) = report.eyes
    assert lx < rx and abs(ly - ry) < 20
    assert report.check("eye_distance").value is not None and report.check("eye_distance").value >= 90


def test_preview_sized_frame_passes() -> None:
    assert check_face(fi.preview_frame()).all_passed


@pytest.mark.parametrize("degrees", [20.0, -20.0])
def test_rotated_20_degrees_fails_roll(degrees: float) -> None:
    report = check_face(fi.rotated(fi.suitable_crop(), degrees))
    roll = report.check("roll")
    assert report.check("one_face").passed, "a tilted head is still found"
    assert not roll.passed
    assert roll.value is not None and abs(roll.value) > 12
    assert roll.instruction_en == "Tilt your head level."
    assert not report.all_passed


def test_slight_tilt_passes_roll() -> None:
    roll = check_face(fi.rotated(fi.suitable_crop(), 4.0)).check("roll")
    assert roll.passed and roll.value is not None and abs(roll.value) <= 8


def test_blurred_fails_sharpness() -> None:
    sharp = check_face(fi.suitable_crop()).check("sharpness")
    report = check_face(fi.blurred(fi.suitable_crop()))
    assert report.check("one_face").passed
    blur = report.check("sharpness")
    assert not blur.passed
    assert blur.value is not None and sharp.value is not None and blur.value < sharp.value / 3
    assert "blurred" in blur.instruction_en


def test_darkened_fails_exposure() -> None:
    report = check_face(fi.darkened(fi.suitable_crop()))
    assert report.check("one_face").passed
    exposure = report.check("exposure")
    assert not exposure.passed
    assert exposure.instruction_en.startswith("Too dark")


def test_overexposed_fails_exposure() -> None:
    bright = np.clip(fi.suitable_crop().astype(np.int16) * 2 + 40, 0, 255).astype(np.uint8)
    exposure = check_face(bright).check("exposure")
    assert not exposure.passed and exposure.instruction_en.startswith("Too bright")


def test_no_face_says_no_face() -> None:
    report = check_face(fi.no_face())
    one = report.check("one_face")
    assert not one.passed and one.value == 0
    assert one.instruction_en.startswith("No face")
    assert report.face_box is None and report.eyes == ()
    assert report.first_failure() == one


def test_blank_frame_says_no_face() -> None:
    assert check_face(np.full((480, 640, 3), 128, np.uint8)).check("one_face").value == 0


def test_two_faces_side_by_side_say_more_than_one() -> None:
    report = check_face(fi.two_faces())
    one = report.check("one_face")
    assert not one.passed and one.value is not None and one.value >= 2
    assert one.instruction_en.startswith("More than one face")


def test_whole_photograph_has_one_face_but_a_busy_background_and_small_head() -> None:
    report = check_face(fi.astronaut())
    assert report.check("one_face").value == 1  # the mission patch is not a second face
    assert {"background", "head_height", "eye_distance"} <= failed(report)


def test_eye_distance_is_configurable() -> None:
    report = check_face(fi.suitable_crop(), config=FaceConfig(min_eye_distance=200))
    distance = report.check("eye_distance")
    assert not distance.passed
    assert (distance.instruction_en, distance.instruction_ur) == (
        "Move closer to the camera.",
        "کیمرے کے قریب آئیں۔",
    )


def test_every_instruction_is_short_english_and_urdu() -> None:
    for frame in (fi.no_face(), fi.suitable_crop(), fi.darkened(fi.suitable_crop())):
        for c in check_face(frame).checks:
            assert 0 < len(c.instruction_en) <= 70 and c.instruction_en.isascii()
            assert ARABIC.search(c.instruction_ur) and not re.search(r"[A-Za-z]", c.instruction_ur)


def test_report_as_dict_is_plain_data() -> None:
    d = check_face(fi.suitable_crop()).as_dict()
    assert d["all_passed"] is True
    assert set(d["checks"]) == set(CHECK_NAMES)  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [(640, 480), (1280, 720), (800, 600)])
def test_synthetic_face_passes_on_every_noise_frame(size: tuple[int, int]) -> None:
    results = [check_face(frame).all_passed for frame in frames(*size)]
    assert all(results), results


def test_synthetic_face_in_a_tiny_frame_is_too_far() -> None:
    report = check_face(frames(320, 240)[0])
    assert report.check("one_face").passed and not report.check("eye_distance").passed


def test_auto_capture_needs_n_consecutive_passing_frames() -> None:
    good, bad = check_face(fi.suitable_crop()), check_face(fi.no_face())
    auto = AutoCapture(frames=3)
    assert [auto.feed(r) for r in (good, good, bad, good, good, good)] == [False] * 5 + [True]
    auto.reset()
    assert not auto.feed(good)
    with pytest.raises(ValueError):
        AutoCapture(frames=0)


@settings(max_examples=25, deadline=None)
@given(
    h=st.integers(1, 200),
    w=st.integers(1, 200),
    channels=st.sampled_from([None, 3, 4]),
    seed=st.integers(0, 2**16),
)
def test_any_picture_gives_a_full_report_without_raising(
    h: int, w: int, channels: int | None, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    shape = (h, w) if channels is None else (h, w, channels)
    report = check_face(rng.integers(0, 256, shape, dtype=np.uint8))
    assert tuple(c.name for c in report.checks) == CHECK_NAMES
    assert report.all_passed == all(c.passed for c in report.checks)


def test_empty_array_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match="shape"):
        check_face(np.zeros((0, 0, 3), np.uint8))
