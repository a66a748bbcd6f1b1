"""Enrollments as files: the example writer, the JSON+images loader on real captures, the document."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import hashlib
import io
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cbor2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from drivers.formats import wsq
from station.enrollment import (
    Enrollment,
    FingerCapture,
    FingerException,
    FingerExceptionReason,
    FingerPosition,
    Gender,
    validate,
)
from station.enrollment import files as enrollment_files
from station.enrollment.example import EXAMPLE_DEMOGRAPHICS, write_example
from station.enrollment.files import enrollment_from_json, load_enrollment
from station.enrollment.quality import NFIQ2_VERSION, QualityUnavailable, nfiq2_score, resample_to_500
from station.errors import ValidationFailed

FIXTURES = Path(__file__).parent / "fixtures" / "enrollment"
TODAY = dt.date(2026, 11, 24)


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_example(tmp_path_factory.mktemp("example"))


@pytest.fixture(scope="module")
def loaded(example: Path) -> Enrollment:
    return load_enrollment(example, station_id="st-1")


def _json(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _write_json(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def test_example_is_complete_valid_and_realistically_sized(example: Path, loaded: Enrollment) -> None:
    data = _json(example)
    named = {data["face"]} | {f["image"] for f in data["fingers"].values() if "image" in f}
    assert all((example.parent / name).is_file() for name in named)
    assert validate(loaded, TODAY) == []
    assert sorted(loaded.fingers) == list(FingerPosition)
    exceptions = [f for f in loaded.fingers.values() if isinstance(f, FingerException)]
    assert len(exceptions) == 1 and exceptions[0].reason is FingerExceptionReason.INJURED
    captures = [f for f in loaded.fingers.values() if isinstance(f, FingerCapture)]
    for capture in captures:
        assert 10_000 <= len(capture.wsq) <= 30_000, len(capture.wsq)
        assert wsq.decode(capture.wsq).shape == (500, 400)
        assert 0 <= capture.quality <= 100
    assert loaded.face is not None and 20_000 <= len(loaded.face.jpeg) <= 40_000
    # A fictitious man: his CNIC ends in an odd digit.
    assert loaded.demographics.gender is Gender.MALE and int(loaded.demographics.cnic[-1]) % 2 == 1


def test_example_prints_look_like_fingerprints(loaded: Enrollment) -> None:
    """NBIS finds a plausible number of minutiae and NFIQ 2 scores them as usable prints."""
    import nbis

    extractor = nbis.new_nbis_extractor(
        nbis.NbisExtractorSettings(
            min_quality=0.0, get_center=False, check_fingerprint=False, compute_nfiq2=False, ppi=500.0
        )
    )
    captures = [f for f in loaded.fingers.values() if isinstance(f, FingerCapture)]
    for capture in captures[:3]:
        png = io.BytesIO()
        Image.fromarray(wsq.decode(capture.wsq), "L").save(png, "PNG")
        count = len(extractor.extract_minutiae(png.getvalue()).get())
        assert 20 <= count <= 400, count
    assert all(c.quality >= 30 for c in captures), [c.quality for c in captures]
    # The prints differ from finger to finger.
    assert len({c.wsq for c in captures}) == len(captures)


def test_round_trip_is_deterministic(tmp_path: Path, example: Path, loaded: Enrollment) -> None:
    again = write_example(tmp_path / "again")
    for name in sorted(p.name for p in example.parent.iterdir()):
        assert (again.parent / name).read_bytes() == (example.parent / name).read_bytes(), name
    other = enrollment_from_json(_json(again), again.parent, station_id="st-1")
    assert other == loaded
    assert cbor2.dumps(other.to_document(), canonical=True) == cbor2.dumps(
        loaded.to_document(), canonical=True
    )
    shuffled = dataclasses.replace(loaded, fingers=dict(reversed(list(loaded.fingers.items()))))
    assert shuffled.to_document() == loaded.to_document()


def _walk(value: Any, path: str = "") -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            assert isinstance(k, str), path
            _walk(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _walk(v, f"{path}[{i}]")
    else:
        assert value is None or type(value) in (str, int, bytes, bool), (path, type(value))


def test_document_is_plain_and_complete(loaded: Enrollment) -> None:
    assert loaded.face is not None
    face = dataclasses.replace(
        loaded.face, checks={"sharpness": np.float64(41.5), "eyes": (2, 1.0), "ok": np.bool_(True)}
    )
    doc = dataclasses.replace(loaded, face=face).to_document()
    _walk(doc)
    assert doc["format"] == "enrollment/1"
    assert doc["operator_id"] == "op-demo" and doc["station_id"] == "st-1"
    assert doc["demographics"]["date_of_birth"] == "1990-05-14"
    assert doc["demographics"]["mobile"] == "+923001234567"
    assert doc["face"]["sha256"] == hashlib.sha256(doc["face"]["image"]).hexdigest()
    assert doc["face"]["checks"] == {"eyes": [2, "1.0"], "ok": True, "sharpness": "41.5"}
    assert [f["position"] for f in doc["fingers"]] == list(range(1, 11))
    for f in doc["fingers"]:
        if "exception" in f:
            assert f == {"position": 10, "exception": "injured", "note": "bandaged"}
        else:
            assert f["sha256"] == hashlib.sha256(f["image"]).hexdigest()
            assert f["format"] == "wsq" and f["attempts"] == 1
            assert set(f["quality"]) == {"algorithm", "version", "score"}
            assert f["quality"]["algorithm"] == "NFIQ2" and f["quality"]["version"] == NFIQ2_VERSION
            assert isinstance(f["quality"]["score"], int) and 0 <= f["quality"]["score"] <= 100
    cbor2.loads(cbor2.dumps(doc, canonical=True))


def _grey(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("L"), dtype=np.uint8)


def at_385_ppi(pixels: np.ndarray) -> np.ndarray:
    """A 500 ppi print as the NB-1010 (385 ppi) would have scanned it."""
    h, w = pixels.shape
    small = Image.fromarray(pixels).resize((round(w * 0.77), round(h * 0.77)), Image.Resampling.BOX)
    return np.asarray(small)


def _real_json(tmp_path: Path) -> dict[str, Any]:
    """An enrollment whose images are real sensor captures and a real photograph."""
    for name in ("elan.png", "aes3500.png", "egis0570.png", "upektc_img.png", "astronaut.png"):
        shutil.copy(FIXTURES / name, tmp_path / name)
    with Image.open(FIXTURES / "aes3500.png") as img:
        (tmp_path / "aes3500.wsq").write_bytes(wsq.encode(np.asarray(img.convert("L"), dtype=np.uint8)))
    Image.fromarray(at_385_ppi(_grey(FIXTURES / "egis0570.png"))).save(tmp_path / "egis0570-385ppi.png")
    data: dict[str, Any] = {"operator_id": "op-7", "demographics": dict(EXAMPLE_DEMOGRAPHICS)}
    data["face"] = "astronaut.png"
    data["fingers"] = {
        "right_thumb": {"image": "elan.png"},
        "2": {"image": "aes3500.wsq", "attempts": 2},
        "3": {"image": "egis0570.png", "quality": 99},
        "4": {"image": "egis0570-385ppi.png", "ppi": 385, "attempts": 3},
        **{str(p): {"exception": "amputated"} for p in range(5, 11)},
    }
    return data


def test_real_captures_through_the_loader(tmp_path: Path) -> None:
    e = enrollment_from_json(_real_json(tmp_path), tmp_path, station_id="st-9")
    assert validate(e, TODAY) == []
    thumb = e.fingers[FingerPosition.RIGHT_THUMB]
    assert isinstance(thumb, FingerCapture)
    with Image.open(FIXTURES / "elan.png") as img:
        grey = np.asarray(img.convert("L"), dtype=np.uint8)
    assert thumb.quality == nfiq2_score(grey)
    assert wsq.decode(thumb.wsq).shape == grey.shape
    index = e.fingers[FingerPosition.RIGHT_INDEX]
    assert isinstance(index, FingerCapture)
    assert index.wsq == (tmp_path / "aes3500.wsq").read_bytes() and index.attempts == 2
    middle = e.fingers[FingerPosition.RIGHT_MIDDLE]
    with Image.open(FIXTURES / "egis0570.png") as img:
        egis = np.asarray(img.convert("L"), dtype=np.uint8)
    # The number written in the file (99) is ignored: the station scores the image itself.
    assert isinstance(middle, FingerCapture) and middle.quality == nfiq2_score(egis) != 99
    ring = e.fingers[FingerPosition.RIGHT_RING]
    assert isinstance(ring, FingerCapture)
    # Scanned at 385 ppi: stored (and scored) resampled to 500 ppi, 500/385 times larger each way, and
    # its NFIQ 2 score is then close to the 500 ppi original's.
    small = at_385_ppi(egis)
    h, w = small.shape
    assert wsq.decode(ring.wsq).shape == (round(h * 500 / 385), round(w * 500 / 385))
    assert ring.quality == nfiq2_score(resample_to_500(small, 385))
    assert abs(ring.quality - middle.quality) <= 5
    assert e.face is not None and e.face.jpeg.startswith(b"\xff\xd8")
    with Image.open(io.BytesIO(e.face.jpeg)) as face:
        assert face.format == "JPEG" and face.size == (512, 512)


def test_nfiq2_ranks_real_captures() -> None:
    scores = {}
    for name in ("elan", "egis0570", "aes3500"):
        with Image.open(FIXTURES / f"{name}.png") as img:
            scores[name] = nfiq2_score(np.asarray(img.convert("L"), dtype=np.uint8))
    assert all(0 <= s <= 100 for s in scores.values())
    # The smeared swipe capture is the worst of the three.
    assert scores["elan"] < scores["aes3500"] < scores["egis0570"], scores
    with pytest.raises(QualityUnavailable):
        nfiq2_score(np.full((500, 400), 255, dtype=np.uint8))
    with pytest.raises(QualityUnavailable):
        nfiq2_score(np.zeros((20, 20, 3), dtype=np.uint8))


def _mutated(tmp_path: Path, change: Any) -> Path:
    data = _real_json(tmp_path)
    change(data)
    return _write_json(tmp_path / "enrollment.json", data)


BAD_FILES: list[tuple[str, Any, str]] = [
    (
        "missing image",
        lambda d: d["fingers"]["3"].update(image="nope.png"),
        r"fingers\.3: cannot read .*nope\.png",
    ),
    (
        "unscorable",
        lambda d: d["fingers"]["4"].update(image="upektc_img.png", ppi=500),
        r"fingers\.4: cannot score .*upektc_img\.png",
    ),
    ("ppi too low", lambda d: d["fingers"]["3"].update(ppi=50), r"fingers\.3: ppi must be"),
    ("ppi text", lambda d: d["fingers"]["3"].update(ppi="500"), r"fingers\.3: ppi must be"),
    ("attempts zero", lambda d: d["fingers"]["3"].update(attempts=0), r"fingers\.3: attempts must be"),
    ("position 11", lambda d: d["fingers"].update({"11": {"exception": "other"}}), r"'11' is not a finger"),
    ("reason", lambda d: d["fingers"].update({"5": {"exception": "lazy"}}), r"fingers\.5: exception must be"),
    ("not a finger object", lambda d: d["fingers"].update({"5": "x"}), r"fingers\.5: expected an object"),
    ("face not image", lambda d: d.update(face="enrollment.json"), r"face: .* not an image"),
    ("face checks", lambda d: d.update(face_checks=[1, 2]), r"face_checks: expected an object"),
    ("dob", lambda d: d["demographics"].update(date_of_birth="14/05/1990"), r"date_of_birth: expected"),
    ("gender", lambda d: d["demographics"].update(gender="m"), r"demographics: kind or gender"),
    ("name type", lambda d: d["demographics"].update(name_en=7), r"demographics\.name_en: expected text"),
]


@pytest.mark.parametrize(("label", "change", "message"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_files_name_the_field_and_file(tmp_path: Path, label: str, change: Any, message: str) -> None:
    path = _mutated(tmp_path, change)
    with pytest.raises(ValidationFailed, match=message) as err:
        load_enrollment(path)
    assert err.value.urdu


def test_damaged_images_are_refused(tmp_path: Path) -> None:
    data = _real_json(tmp_path)
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 200)
    (tmp_path / "broken.wsq").write_bytes(b"\xff\xa0" + bytes(100))
    Image.fromarray(np.full((50, 60), 128, dtype=np.uint8)).save(tmp_path / "tiny.png")
    cases: list[tuple[Callable[[dict[str, Any]], None], str]] = [
        (lambda d: d.update(face="broken.jpg"), r"face: .*broken\.jpg is not an image"),
        (lambda d: d["fingers"]["2"].update(image="broken.wsq"), r"fingers\.2: .*not a valid WSQ"),
        (lambda d: d["fingers"]["2"].update(image="tiny.png"), r"fingers\.2: .*60x50 pixels"),
    ]
    for change, message in cases:
        bad = copy.deepcopy(data)
        change(bad)
        with pytest.raises(ValidationFailed, match=message):
            enrollment_from_json(bad, tmp_path)


def test_oversized_image_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _real_json(tmp_path)
    monkeypatch.setattr(enrollment_files, "MAX_IMAGE_BYTES", 1000)
    with pytest.raises(ValidationFailed, match=r"face: .*astronaut\.png is \d+ bytes, over the 1000-byte"):
        enrollment_from_json(data, tmp_path)


def test_not_json(tmp_path: Path) -> None:
    (tmp_path / "enrollment.json").write_text("{not json")
    with pytest.raises(ValidationFailed, match=r"not valid JSON \(line 1"):
        load_enrollment(tmp_path / "enrollment.json")
    with pytest.raises(ValidationFailed, match="cannot read"):
        load_enrollment(tmp_path / "absent.json")
    with pytest.raises(ValidationFailed, match="one JSON object"):
        enrollment_from_json([1, 2], tmp_path)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
field_names = st.sampled_from(
    ["kind", "gender", "date_of_birth", "cnic", "name_ur", "mobile", "consent", "purpose", "district"]
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    demographics=st.dictionaries(field_names, json_values, max_size=6),
    fingers=st.dictionaries(st.sampled_from(["1", "2", "left_little", "12", "x"]), json_values, max_size=3),
    top=st.dictionaries(st.sampled_from(["face", "face_checks", "operator_id", "station_id"]), json_values),
)
def test_loader_fails_only_with_validation_failed(
    tmp_path: Path, demographics: dict[str, Any], fingers: dict[str, Any], top: dict[str, Any]
) -> None:
    base = {"kind": "new", "gender": "female", "date_of_birth": "1990-01-01"}
    data = {"demographics": {**base, **demographics}, "fingers": fingers, **top}
    try:
        e = enrollment_from_json(data, tmp_path)
    except ValidationFailed as exc:
        assert str(exc)
        return
    validate(e, TODAY)
    _walk(e.to_document())
