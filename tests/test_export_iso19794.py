"""ISO/IEC 19794-4:2005 and 19794-5:2005 export: records read back, images decoded, bad bytes refused."""

from __future__ import annotations

import contextlib
import io
import zipfile
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from drivers.formats import wsq
from sync.central.backoffice import open_in
from sync.central.database import open_storage
from sync.central.export import iso19794
from sync.central.export.batch import render
from sync.central.export.errors import MalformedFile, ReadError, TruncatedFile
from tests.export_support import export_enrollment, export_setup, store_packets

__all__ = ["export_enrollment"]


@pytest.fixture(scope="module")
def packet(tmp_path_factory: pytest.TempPathFactory, export_enrollment: Any) -> tuple[dict[str, Any], bytes]:
    setup = export_setup(tmp_path_factory.mktemp("iso"))
    (pid,) = store_packets(setup.home, setup.client, export_enrollment)
    storage = open_storage(setup.home)
    try:
        meta, document = open_in(storage, pid, setup.key)
    finally:
        storage.close()
    return document, render("iso19794", document, meta, setup.home.central_id, "CNIC")


def _members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert all(i.compress_type == zipfile.ZIP_STORED for i in zf.infolist())
        return {name: zf.read(name) for name in zf.namelist()}


def test_finger_record_holds_every_captured_finger(packet: tuple[dict[str, Any], bytes]) -> None:
    document, data = packet
    fir = _members(data)["finger.fir"]
    assert fir[:8] == b"FIR\x0001" + b"0\x00"
    assert int.from_bytes(fir[8:14], "big") == len(fir)
    assert fir[16:18] == b"\x00\x1e"  # acquisition level 30
    assert fir[29] == iso19794.COMPRESSION_WSQ
    views = iso19794.read_finger_record(fir)
    captured = {f["position"]: f for f in document["fingers"] if "image" in f}
    assert [v.position for v in views] == sorted(captured)
    for v in views:
        assert v.image == captured[v.position]["image"]
        assert v.quality == captured[v.position]["quality"]["score"]
        assert v.impression == 0
        pixels = wsq.decode(v.image)
        assert pixels.shape == (v.height, v.width) == (500, 400)


def test_face_record_is_a_token_with_eye_points(packet: tuple[dict[str, Any], bytes]) -> None:
    document, data = packet
    fac = _members(data)["face.fac"]
    face = iso19794.read_face_record(fac)
    assert face.image == document["face"]["image"]
    assert face.image_type == iso19794.FACE_TOKEN
    assert (face.width, face.height) == (480, 640)
    assert face.gender == 1
    assert face.points == ((0xC1, 300, 288), (0xC2, 180, 288))
    with Image.open(io.BytesIO(face.image)) as img:
        assert img.size == (480, 640)
        # the subject's eyes are darker than the skin between them at the recorded points
        grey = np.asarray(img.convert("L"), dtype=np.float64)
    between = grey[288, 235:245].mean()
    assert grey[286:291, 295:306].mean() < between and grey[286:291, 175:186].mean() < between


def test_truncated_and_malformed_records_are_typed(packet: tuple[dict[str, Any], bytes]) -> None:
    members = _members(packet[1])
    fir, fac = members["finger.fir"], members["face.fac"]
    for cut in (0, 10, 31, 40, 100, len(fir) // 2, len(fir) - 1):
        with pytest.raises(TruncatedFile):
            iso19794.read_finger_record(fir[:cut])
    for cut in (0, 13, 20, 40, len(fac) - 1):
        with pytest.raises(ReadError):
            iso19794.read_face_record(fac[:cut])
    with pytest.raises(MalformedFile):
        iso19794.read_finger_record(b"FIR\x00020\x00" + fir[8:])
    bad = bytearray(fir)
    bad[32 + 14] ^= 0xFF  # the first image no longer starts with the WSQ marker
    with pytest.raises(MalformedFile):
        iso19794.read_finger_record(bytes(bad))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_fuzzed_records_raise_only_typed_errors(
    packet: tuple[dict[str, Any], bytes], data: st.DataObject
) -> None:
    members = _members(packet[1])
    name = data.draw(st.sampled_from(["finger.fir", "face.fac"]))
    blob = bytearray(members[name][:4000])  # the headers and the first image's start
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(blob) - 1))
        blob[pos] = data.draw(st.integers(0, 255))
    reader = iso19794.read_finger_record if name == "finger.fir" else iso19794.read_face_record
    with contextlib.suppress(ReadError):
        reader(bytes(blob))
    with contextlib.suppress(ReadError):
        reader(members[name][: data.draw(st.integers(0, len(members[name])))])
