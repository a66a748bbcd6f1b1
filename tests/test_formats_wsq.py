"""WSQ through NBIS: round trips on real prints, a bitrate that really changes the rate, strict errors."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from drivers.formats import wsq

FIX = Path(__file__).parent / "fixtures" / "fingerprints"
PRINTS = sorted(FIX.glob("*.png"))


def load(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("L"), dtype=np.uint8)


@pytest.mark.parametrize("path", PRINTS, ids=lambda p: p.stem)
def test_round_trip_of_real_prints(path: Path) -> None:
    pixels = load(path)
    data = wsq.encode(pixels)
    assert data[:2] == b"\xff\xa0"  # SOI marker
    back = wsq.decode(data)
    assert back.shape == pixels.shape
    error = np.abs(back.astype(int) - pixels.astype(int)).mean()
    assert error < 12  # lossy, but the same print
    assert len(data) < pixels.size  # compressed


def test_bitrate_is_a_real_setting() -> None:
    pixels = load(PRINTS[0])
    sizes = {rate: len(wsq.encode(pixels, bitrate=rate)) for rate in (0.5, 0.75, 2.25)}
    assert sizes[0.5] < sizes[0.75] < sizes[2.25]
    bits_per_pixel = sizes[0.75] * 8 / pixels.size
    assert 0.5 < bits_per_pixel < 1.0  # about the 0.75 bpp asked for (plus headers)
    fine = np.abs(wsq.decode(wsq.encode(pixels, bitrate=2.25)).astype(int) - pixels).mean()
    coarse = np.abs(wsq.decode(wsq.encode(pixels, bitrate=0.5)).astype(int) - pixels).mean()
    assert fine < coarse


def test_encoding_is_deterministic_and_thread_safe() -> None:
    pixels = load(PRINTS[1])
    expected = wsq.encode(pixels)
    results: list[bytes] = []

    def work() -> None:
        for _ in range(3):
            results.append(wsq.encode(pixels))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 12 and all(r == expected for r in results)


@pytest.mark.parametrize(
    ("pixels", "kwargs", "message"),
    [
        (np.zeros((100, 100), dtype=np.uint16), {}, "8-bit"),
        (np.zeros((100, 100, 3), dtype=np.uint8), {}, "8-bit"),
        (np.zeros((10, 100), dtype=np.uint8), {}, "too small"),
        (np.zeros((100, 100), dtype=np.uint8), {"bitrate": 20.0}, "out of range"),
        (np.zeros((100, 100), dtype=np.uint8), {"ppi": 5}, "resolution"),
    ],
)
def test_bad_input_is_refused_clearly(pixels: np.ndarray, kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(wsq.WSQError, match=message):
        wsq.encode(pixels, **kwargs)  # type: ignore[arg-type]


@settings(max_examples=25, deadline=None)
@given(
    st.integers(32, 160),
    st.integers(32, 160),
    st.integers(0, 2**32 - 1),
    st.sampled_from([0.75, 1.5]),
)
def test_any_grey_image_round_trips_in_shape(width: int, height: int, seed: int, rate: float) -> None:
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width), dtype=np.uint8)
    assert wsq.decode(wsq.encode(pixels, bitrate=rate)).shape == (height, width)


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=400))
def test_decoding_garbage_raises_only_wsqerror(data: bytes) -> None:
    with pytest.raises(wsq.WSQError):
        wsq.decode(data)
