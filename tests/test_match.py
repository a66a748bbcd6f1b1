"""Host-side matching: ISO/IEC 19794-2:2005 templates and bozorth3 verification on the real prints."""

from __future__ import annotations

import itertools
import struct
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from drivers import match
from drivers.match import MATCH_THRESHOLD, Minutia, Template

PRINTS = Path(__file__).parent / "fixtures" / "fingerprints"
NAMES = ("aes3500", "egis0570", "elan", "upektc_img")
MATCHABLE = ("egis0570", "elan")  # the prints with enough minutiae for bozorth3 (see drivers/match.py)
MOVES = [(2, 0, 0), (-3, 5, 0), (5, -4, 6), (8, 6, 6), (-8, -6, 4), (0, 10, -10)]  # degrees, dx, dy


@cache
def image(name: str) -> np.ndarray:
    return np.asarray(Image.open(PRINTS / f"{name}.png").convert("L")).copy()


@cache
def template(name: str) -> bytes:
    return match.template_from_image(image(name))


def moved(a: np.ndarray, degrees: float, dx: int, dy: int) -> np.ndarray:
    h, w = a.shape
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    m[0, 2] += dx
    m[1, 2] += dy
    return cv2.warpAffine(a, m, (w, h), borderMode=cv2.BORDER_REPLICATE)


def impostor_templates() -> dict[str, bytes]:
    """Different prints, plus mirror images (the same ridge structure reversed: a hard impostor)."""
    out = {name: template(name) for name in NAMES}
    for name in MATCHABLE:
        out[f"{name}-mirrored"] = match.template_from_image(np.fliplr(image(name)).copy())
    return out


# -- templates -------------------------------------------------------------------------------------
def test_template_is_a_standard_iso_19794_2_record() -> None:
    data = template("egis0570")
    parsed = match.parse_template(data)
    n = len(parsed.minutiae)
    assert data[:8] == b"FMR\x00 20\x00"
    assert struct.unpack(">I", data[8:12])[0] == len(data) == 24 + 4 + 6 * n + 2
    width, height, xres, yres, views = struct.unpack(">HHHHB", data[14:23])
    assert (width, height) == (304, 618)
    assert xres == yres == 197  # 500 ppi in pixels per centimetre
    assert views == 1 and data[27] == n and data[-2:] == b"\x00\x00"
    assert n >= 30
    assert all(0 <= m.x < width and 0 <= m.y < height and m.kind in (1, 2) for m in parsed.minutiae)
    assert all(1 <= m.quality <= 100 for m in parsed.minutiae)


def test_build_and_parse_round_trip() -> None:
    t = Template(
        width=256,
        height=288,
        ppi=500,
        minutiae=(Minutia(10, 20, 45.0, 1, 80), Minutia(255, 287, 358.59375, 2, 1), Minutia(0, 0, 0.0, 0, 0)),
    )
    assert match.parse_template(match.build_template(t)) == t


def test_nbis_short_variant_is_read_and_scores_like_the_standard_record() -> None:
    native = match.extract_minutiae(image("elan"))
    legacy = native.to_iso_19794_2_2005()  # what the kiosk stored before drivers.match existed
    assert len(match.parse_template(legacy).minutiae) == len(native.get())
    assert match.score(legacy, template("elan")) == native.compare(native)


def test_template_of_a_tiny_image_is_refused() -> None:
    with pytest.raises(ValueError, match="too small"):
        match.template_from_image(np.zeros((8, 8), np.uint8))


# -- verification ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", MATCHABLE)
def test_same_print_matches(name: str) -> None:
    result = match.verify(template(name), template(name))
    assert result.matched and result.score > 10 * MATCH_THRESHOLD


@pytest.mark.parametrize("degrees,dx,dy", MOVES)
def test_rotated_and_shifted_copy_of_a_good_print_matches(degrees: int, dx: int, dy: int) -> None:
    live = match.template_from_image(moved(image("egis0570"), degrees, dx, dy))
    result = match.verify(template("egis0570"), live)
    assert result.matched, result


def test_shifted_copy_of_a_poor_swipe_print_matches() -> None:
    live = match.template_from_image(moved(image("elan"), 0, 10, 0))
    assert match.verify(template("elan"), live).matched


def test_different_prints_do_not_match() -> None:
    templates = impostor_templates()
    for (a, ta), (b, tb) in itertools.combinations(templates.items(), 2):
        if a.split("-")[0] == b.split("-")[0] and "mirrored" not in a + b:
            continue
        result = match.verify(ta, tb)
        assert not result.matched, (a, b, result)


def test_threshold_separates_measured_genuine_and_impostor_scores() -> None:
    """Re-measure the numbers the threshold in drivers/match.py was chosen from."""
    templates = impostor_templates()
    impostor = [match.score(ta, tb) for (_, ta), (_, tb) in itertools.combinations(templates.items(), 2)]
    genuine_good = [
        match.score(template("egis0570"), match.template_from_image(moved(image("egis0570"), *m)))
        for m in MOVES
    ]
    assert max(impostor) < MATCH_THRESHOLD
    assert min(genuine_good) > 5 * MATCH_THRESHOLD
    assert max(impostor) <= 16  # the value recorded in drivers/match.py


def test_verify_is_symmetric() -> None:
    a = template("egis0570")
    b = match.template_from_image(moved(image("egis0570"), 3, 2, 2))
    assert match.verify(a, b) == match.verify(b, a)


# -- malformed templates ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "data,message",
    [
        (b"", "too short"),
        (b"XMR\x00 20\x00" + bytes(22), "not an ISO"),
        (lambda t: t[:-7], "truncated"),
        (lambda t: t[:8] + struct.pack(">I", len(t) + 1) + t[12:], "truncated"),
        (lambda t: t[:22] + b"\x02" + t[23:], "finger views"),
        (lambda t: t[:27] + bytes([t[27] + 3]) + t[28:], "too short for them|does not match"),
        (lambda t: t[:28] + b"\x7f\xff" + t[30:], "outside"),
    ],
)
def test_malformed_template_raises_value_error(data: object, message: str) -> None:
    good = template("elan")
    bad = data(good) if callable(data) else data
    assert isinstance(bad, bytes)
    with pytest.raises(ValueError, match=message):
        match.verify(good, bad)
    with pytest.raises(ValueError, match=message):
        match.verify(bad, good)


def test_non_bytes_template_raises_value_error() -> None:
    with pytest.raises(ValueError, match="must be bytes"):
        match.parse_template("FMR")  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_only_ever_raise_value_error(data: bytes) -> None:
    for blob in (
        data,
        b"FMR\x00 20\x00" + data,
        b"FMR\x00 20\x00" + struct.pack(">I", len(data) + 12) + data,
    ):
        try:
            result = match.verify(template("elan"), blob)
        except ValueError:
            continue
        assert result.score >= 0


def test_concurrent_verification_gives_the_same_scores() -> None:
    pairs = [(template(a), template(b)) for a in MATCHABLE for b in MATCHABLE] * 2
    expected = [match.score(a, b) for a, b in pairs]
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda p: match.score(*p), pairs))
    assert got == expected


@pytest.mark.parametrize("name", ["aes3500", "upektc_img"])
def test_sparse_prints_cannot_be_verified_even_against_themselves(name: str) -> None:
    """The limit drivers.quality.finger reports as "few minutiae"; if nbis ever improves, this fails."""
    from drivers.quality.finger import MATCHABLE_MINUTIAE

    assert len(match.parse_template(template(name)).minutiae) < MATCHABLE_MINUTIAE
    assert match.verify(template(name), template(name)) == match.MatchResult(matched=False, score=0)


def test_one_view_record_too_short_for_its_view_header_raises_value_error() -> None:
    """Found by the property test: a 26-byte record that claims one finger view."""
    data = b"FMR\x00 20\x00" + struct.pack(">I", 26) + bytes(10) + b"\x01\x00" + bytes(2)
    with pytest.raises(ValueError, match="too short"):
        match.parse_template(data)


@settings(max_examples=400, deadline=None)
@given(
    st.integers(0, 2),
    st.integers(0, 300),
    st.integers(0, 300),
    st.integers(0, 30),
    st.binary(max_size=200),
    st.booleans(),
    st.booleans(),
)
def test_plausible_records_only_ever_raise_value_error(
    views: int, width: int, height: int, count: int, body: bytes, short_variant: bool, exact: bool
) -> None:
    """Records with a valid header and length, a random minutiae count and random minutiae bytes."""
    if exact:  # exactly ``count`` minutiae of random bytes: mostly reaches bozorth3
        body = (body * (count * 6 // max(1, len(body)) + 1))[: count * 6] if body else bytes(count * 6)
        body += b"" if short_variant else b"\x00\x00"
    head = b"\x00\x00" + struct.pack(">HHHHBB", width, height, 197, 197, views, 0)
    rest = (b"\x00" + bytes([count]) if short_variant else bytes([0, 0, 0, count])) + body
    data = b"FMR\x00 20\x00" + struct.pack(">I", 12 + len(head) + len(rest)) + head + rest
    try:
        result = match.verify(template("elan"), data)
    except ValueError:
        return
    assert result.score >= 0
