"""The portrait token: 3:4, eyes on the ISO 19794-5 line, JPEG under the byte budget."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from drivers.portrait import Portrait, PortraitError, make_portrait
from drivers.quality.face import check_face
from tests import face_images as fi


def decode(p: Portrait) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(p.jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None
    return img


@pytest.mark.parametrize("frame", [fi.suitable_crop(), fi.preview_frame(), fi.astronaut()])
def test_token_is_480x640_jpeg_under_40_kb(frame: np.ndarray) -> None:
    p = make_portrait(frame)
    assert p.jpeg.startswith(b"\xff\xd8") and len(p.jpeg) <= 40_000
    assert decode(p).shape == (640, 480, 3)
    assert p.checks["portrait"]["bytes"] == len(p.jpeg)


def test_eyes_land_on_the_standard_line_and_level() -> None:
    frame = fi.rotated(fi.preview_frame(), 6.0)  # a slight tilt is levelled in the token
    p = make_portrait(frame)
    assert p.checks["portrait"]["eyes_from"] == "eyes"
    token = check_face(decode(p))
    (lx, ly), (rx, ry) = token.eyes
    assert abs((lx + rx) / 2 - 240) <= 12  # x = W/2
    assert abs((ly + ry) / 2 - 288) <= 15  # y = 0.6 W
    assert abs(np.hypot(rx - lx, ry - ly) - 120) <= 15  # 0.25 W apart
    assert abs(ry - ly) <= 8
    assert token.check("head_height").passed


def test_checks_travel_beside_the_picture() -> None:
    p = make_portrait(fi.suitable_crop())
    assert p.checks["all_passed"] is True
    assert p.checks["checks"]["roll"]["passed"] is True
    bad = make_portrait(fi.blurred(fi.suitable_crop()))
    assert bad.checks["checks"]["sharpness"]["passed"] is False


def test_tight_budget_lowers_quality_step_by_step() -> None:
    roomy = make_portrait(fi.suitable_crop())
    tight = make_portrait(fi.suitable_crop(), max_bytes=12_000)
    assert len(tight.jpeg) <= 12_000
    assert tight.checks["portrait"]["jpeg_quality"] < roomy.checks["portrait"]["jpeg_quality"]


def test_impossible_budget_and_wrong_shape_are_refused() -> None:
    with pytest.raises(PortraitError, match="does not fit"):
        make_portrait(fi.suitable_crop(), max_bytes=500)
    with pytest.raises(PortraitError, match="3:4"):
        make_portrait(fi.suitable_crop(), size=(640, 480))


def test_smaller_token_size() -> None:
    p = make_portrait(fi.suitable_crop(), size=(240, 320), max_bytes=15_000)
    assert decode(p).shape == (320, 240, 3) and len(p.jpeg) <= 15_000


def test_no_face_still_gives_a_centred_3_by_4_crop() -> None:
    p = make_portrait(fi.no_face())
    assert p.checks["portrait"]["eyes_from"] == "frame_centre"
    assert p.checks["all_passed"] is False
    assert decode(p).shape == (640, 480, 3)


def test_grey_and_bgra_frames_give_a_colour_token() -> None:
    grey = np.ascontiguousarray(fi.suitable_crop()[:, :, 1])
    bgra = np.dstack([fi.suitable_crop(), np.full((640, 480), 255, np.uint8)])
    for frame in (grey, bgra):
        assert decode(make_portrait(frame)).shape == (640, 480, 3)


def test_stored_checks_are_results_only() -> None:
    roll = make_portrait(fi.suitable_crop()).checks["checks"]["roll"]
    assert set(roll) == {"passed", "value"} and isinstance(roll["value"], float)
