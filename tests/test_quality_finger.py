"""Fingerprint quality: every real print scores above its degraded copies; blank scores ~0; the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from drivers.formats import wsq
from drivers.quality import finger as fq
from drivers.quality.finger import finger_quality
from station.cli import cli

PRINTS = Path(__file__).parent / "fixtures" / "fingerprints"
NAMES = ("aes3500", "egis0570", "elan", "upektc_img")


@cache
def image(name: str) -> np.ndarray:
    return np.asarray(Image.open(PRINTS / f"{name}.png").convert("L")).copy()


@cache
def score(name: str) -> int:
    return finger_quality(image(name)).score


def blurred(a: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(a, (0, 0), 2.0)


def noisy(a: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(7)
    return np.clip(a + rng.normal(0, 30, a.shape), 0, 255).astype(np.uint8)


def low_contrast(a: np.ndarray) -> np.ndarray:
    mean = float(a.mean())
    return np.clip(mean + (a.astype(np.float32) - mean) * 0.25, 0, 255).astype(np.uint8)


def partial(a: np.ndarray) -> np.ndarray:
    """The middle third of the rows: a finger touching a strip of the glass."""
    h = a.shape[0]
    return a[h // 3 : 2 * h // 3].copy()


def partial_columns(a: np.ndarray) -> np.ndarray:
    w = a.shape[1]
    return a[:, w // 3 : 2 * w // 3].copy()


def partial_padded(a: np.ndarray) -> np.ndarray:
    """Same image size, only a third of it holds the print; the rest is the empty glass."""
    h = a.shape[0]
    out = np.full_like(a, int(np.median(a[:4])))
    out[h // 3 : 2 * h // 3] = a[h // 3 : 2 * h // 3]
    return out


def blank(a: np.ndarray) -> np.ndarray:
    return np.full_like(a, 255)


DEGRADATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "blurred": blurred,
    "noisy": noisy,
    "low-contrast": low_contrast,
    "partial": partial,
    "partial-columns": partial_columns,
    "partial-padded": partial_padded,
    "blank": blank,
}


@pytest.mark.parametrize("kind", DEGRADATIONS)
@pytest.mark.parametrize("name", NAMES)
def test_original_scores_above_its_degraded_copy(name: str, kind: str) -> None:
    degraded = finger_quality(DEGRADATIONS[kind](image(name)))
    assert score(name) > degraded.score, (name, kind, score(name), degraded)


@pytest.mark.parametrize("name", NAMES)
def test_real_prints_score_in_a_plausible_range(name: str) -> None:
    assert 40 <= score(name) <= 95


@pytest.mark.parametrize(
    "blank_image",
    [
        np.full((288, 256), 255, np.uint8),
        np.zeros((288, 256), np.uint8),
        np.full((180, 256), 128, np.uint8),
        np.clip(230 + np.random.default_rng(3).normal(0, 3, (288, 256)), 0, 255).astype(np.uint8),
        np.tile(np.linspace(60, 220, 256).astype(np.uint8), (288, 1)),  # uneven lighting, no ridges
    ],
    ids=["white", "black", "grey", "sensor-noise", "gradient"],
)
def test_blank_scores_near_zero_and_says_no_finger(blank_image: np.ndarray) -> None:
    result = finger_quality(blank_image)
    assert result.score <= 5
    assert fq.NO_FINGER in result.reasons


@pytest.mark.parametrize("kind", DEGRADATIONS)
@pytest.mark.parametrize("name", NAMES)
def test_low_scores_come_with_reasons(name: str, kind: str) -> None:
    result = finger_quality(DEGRADATIONS[kind](image(name)))
    if result.score < fq.LOW_SCORE:
        assert result.reasons, (name, kind, result)
    assert all(isinstance(r, str) and r for r in result.reasons)


def test_each_degradation_is_named_by_its_reason() -> None:
    egis = image("egis0570")
    assert fq.BLURRED in finger_quality(cv2.GaussianBlur(egis, (0, 0), 3.0)).reasons
    assert fq.LOW_CONTRAST in finger_quality(low_contrast(egis)).reasons
    noisy_reasons = finger_quality(noisy(egis)).reasons
    assert fq.NOISY in noisy_reasons or fq.UNCLEAR_FLOW in noisy_reasons
    assert fq.SMALL_AREA in finger_quality(partial(image("elan"))).reasons
    assert fq.FEW_MINUTIAE in finger_quality(partial(image("aes3500"))).reasons


def test_measures_are_reported() -> None:
    result = finger_quality(image("egis0570"))
    for key in ("minutiae", "minutiae_quality", "area_fraction", "contrast", "orientation"):
        assert key in result.measures
    assert result.measures["minutiae"] >= 30
    assert 0 < result.measures["area_fraction"] <= 1
    assert 0 < result.measures["orientation"] <= 1
    assert not result.reasons  # a good print needs no excuse


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="8-bit"):
        finger_quality(np.zeros((64, 64), np.float32))
    with pytest.raises(ValueError, match="2-D"):
        finger_quality(np.zeros((64, 64, 3), np.uint8))


def test_tiny_image_scores_zero_with_a_reason() -> None:
    result = finger_quality(np.zeros((10, 300), np.uint8))
    assert result.score == 0 and result.reasons == (fq.TOO_SMALL_IMAGE,)


def test_scoring_a_256x288_print_is_fast() -> None:
    """CPU time (not wall time, which other processes inflate): about 50 ms measured on 2 cores."""
    crop = np.ascontiguousarray(image("egis0570")[150:438, 24:280])
    finger_quality(crop)  # warm the cached extractor
    times = []
    for _ in range(5):
        t0 = time.process_time()
        finger_quality(crop)
        times.append(time.process_time() - t0)
    assert sorted(times)[2] < 0.15


def test_concurrent_scoring_gives_the_same_results() -> None:
    """The kiosk scores on a task thread while a device thread may build a template."""
    names = NAMES * 3
    with ThreadPoolExecutor(max_workers=4) as pool:
        scores = list(pool.map(lambda n: finger_quality(image(n)).score, names))
    assert scores == [score(n) for n in names]


stripes = st.builds(
    lambda h, w, period, angle, noise, seed: _stripes(h, w, period, angle, noise, seed),
    st.integers(1, 200),
    st.integers(1, 200),
    st.floats(4, 30),
    st.floats(0, np.pi),
    st.floats(0, 60),
    st.integers(0, 2**16),
)


def _stripes(h: int, w: int, period: float, angle: float, noise: float, seed: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    wave = 128 + 100 * np.sin(2 * np.pi * (x * np.cos(angle) + y * np.sin(angle)) / period)
    wave += np.random.default_rng(seed).normal(0, noise, (h, w))
    return np.clip(wave, 0, 255).astype(np.uint8)


random_arrays = hnp.arrays(
    np.uint8,
    hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=160),
    elements=st.integers(0, 255),
)


@settings(max_examples=60, deadline=None)
@given(st.one_of(random_arrays, stripes))
def test_score_is_always_between_0_and_100(pixels: np.ndarray) -> None:
    result = finger_quality(pixels)
    assert 0 <= result.score <= 100
    assert isinstance(result.score, int)
    if result.score < fq.LOW_SCORE:
        assert result.reasons


# -- CLI -------------------------------------------------------------------------------------------
def test_cli_last_line_is_the_score() -> None:
    path = PRINTS / "egis0570.png"
    res = CliRunner().invoke(cli, ["quality", "finger", str(path)])
    assert res.exit_code == 0, res.output
    lines = res.output.strip().splitlines()
    assert int(lines[-1]) == score("egis0570")
    assert any(line.startswith("minutiae: ") for line in lines)


def test_cli_prints_reasons_for_a_low_score(tmp_path: Path) -> None:
    path = tmp_path / "partial.png"
    Image.fromarray(partial(image("elan"))).save(path)
    res = CliRunner().invoke(cli, ["quality", "finger", str(path)])
    assert res.exit_code == 0, res.output
    assert f"reason: {fq.SMALL_AREA}" in res.output
    assert int(res.output.strip().splitlines()[-1]) < score("elan")


def test_cli_json(tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["quality", "finger", "--json", str(PRINTS / "elan.png")])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["score"] == score("elan")
    assert isinstance(data["reasons"], list)
    assert data["measures"]["minutiae"] > 0


def test_cli_reads_wsq_and_jpeg(tmp_path: Path) -> None:
    pixels = image("egis0570")
    (tmp_path / "print.wsq").write_bytes(wsq.encode(pixels, bitrate=2.25))
    Image.fromarray(pixels).save(tmp_path / "print.jpg", quality=95)
    for name in ("print.wsq", "print.jpg"):
        res = CliRunner().invoke(cli, ["quality", "finger", str(tmp_path / name)])
        assert res.exit_code == 0, res.output
        assert abs(int(res.output.strip().splitlines()[-1]) - score("egis0570")) <= 10


@pytest.mark.parametrize("content", [None, b"not an image at all", b"\xff\xa0garbage wsq"])
def test_cli_unreadable_file_exits_2_with_a_clear_message(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "print.png"
    if content is not None:
        path.write_bytes(content)
    res = CliRunner().invoke(cli, ["quality", "finger", str(path)])
    assert res.exit_code == 2
    assert "cannot read fingerprint image" in res.output
    assert "Traceback" not in res.output


def test_cli_as_a_user_runs_it() -> None:
    """Through the real console entry point: exit status and last line as a shell script sees them."""
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from enrollment_station.cli import station_main; station_main()",
            "quality",
            "finger",
            str(PRINTS / "elan.png"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout.strip().splitlines()[-1]) == score("elan")
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from enrollment_station.cli import station_main; station_main()",
            "quality",
            "finger",
            "/nonexistent.png",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "cannot read fingerprint image" in proc.stderr


@pytest.mark.parametrize("name", ["aes3500", "upektc_img"])
def test_prints_too_sparse_for_bozorth3_get_the_few_minutiae_reason(name: str) -> None:
    """bozorth3 scores these 0 even against themselves (tests/test_match.py): say so at capture."""
    result = finger_quality(image(name))
    assert result.measures["minutiae"] < fq.MATCHABLE_MINUTIAE
    assert fq.FEW_MINUTIAE in result.reasons
