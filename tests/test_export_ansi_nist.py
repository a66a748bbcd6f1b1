"""ANSI/NIST-ITL 1-2011 export: the writer, the project's strict reader, and Idemia's ``nistitl``.

A real enrollment (NFIQ 2-scored synthetic prints, the kiosk's portrait token of a real face, one
finger amputated and one injured) is sealed, stored at central, opened with the back-office key
and written; the file is read back by the project's reader and by ``nistitl`` (an independent
implementation) and every record, field and image is compared with the packet's document.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
from typing import Any

import nistitl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers.formats import wsq
from drivers.portrait import EYE_LINE, EYE_SPACING
from sync.central.backoffice import open_in
from sync.central.database import open_storage
from sync.central.export.ansi_nist_reader import (
    MalformedFile,
    NonConformant,
    ReadError,
    Transaction,
    TruncatedFile,
    read_transaction,
)
from sync.central.export.batch import render
from sync.central.export.document import TOKEN_EYE_LINE, TOKEN_EYE_SPACING, read_view
from sync.central.export.errors import ExportError
from tests.export_support import ExportSetup, export_enrollment, export_setup, store_packets

__all__ = ["export_enrollment"]  # the session fixture, imported for pytest


@dataclasses.dataclass
class Exported:
    setup: ExportSetup
    meta: dict[str, Any]
    document: dict[str, Any]
    data: bytes


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, export_enrollment: Any) -> Exported:
    setup = export_setup(tmp_path_factory.mktemp("ansi"))
    (pid,) = store_packets(setup.home, setup.client, export_enrollment)
    storage = open_storage(setup.home)
    try:
        meta, document = open_in(storage, pid, setup.key)
    finally:
        storage.close()
    data = render("ansi-nist", document, meta, setup.home.central_id, "CNIC")
    return Exported(setup, meta, document, data)


def _fingers(document: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {f["position"]: f for f in document["fingers"]}


def test_round_trip_type1_lists_every_record(exported: Exported) -> None:
    txn = read_transaction(exported.data)
    t1 = txn.type1
    assert t1.text(2) == "0500"
    assert t1.text(4) == "CNIC"
    assert t1.text(7) == exported.setup.home.central_id
    assert t1.text(8) == "uc-lhr-0421-01"
    assert t1.text(9) == exported.meta["packet_id"]
    assert t1.text(11) == t1.text(12) == "19.69"
    assert t1.items(15) == [["3", "UTF-8"]]
    created = dt.datetime.fromtimestamp(exported.meta["created_at"], dt.UTC)
    assert t1.text(5) == created.strftime("%Y%m%d")
    assert t1.text(14) == created.strftime("%Y%m%d%H%M%SZ")
    cnt = t1.items(3)
    assert cnt[0] == ["1", str(len(txn.records) - 1)]
    assert cnt[1:] == [[str(r.type), str(r.idc)] for r in txn.records[1:]]
    assert [r.type for r in txn.records] == [1, 2, *[14] * 10, 10]


def test_round_trip_type2_demographics_in_both_scripts(exported: Exported) -> None:
    t2 = read_transaction(exported.data).of_type(2)[0]
    demo = exported.document["demographics"]
    expected = {
        11: demo["name_en"],
        12: demo["name_ur"],
        13: demo["father_or_husband_name_en"],
        14: demo["father_or_husband_name_ur"],
        15: demo["cnic"],
        16: demo["parent_cnic"],
        17: demo["date_of_birth"].replace("-", ""),
        18: "M",
        20: demo["present_address_ur"],
        26: demo["purpose"],
        27: "Y",
        28: exported.document["operator_id"],
    }
    for number, value in expected.items():
        assert t2.text(number) == value, number
    assert "احمد" in t2.text(12)
    assert not t2.has(29) or t2.text(29)  # policy version only when the packet carries one


def test_round_trip_type14_images_and_quality(exported: Exported) -> None:
    txn = read_transaction(exported.data)
    fingers = _fingers(exported.document)
    captured = [r for r in txn.of_type(14) if r.image() is not None]
    assert len(captured) == 8
    for r in captured:
        position = int(r.text(13))
        doc = fingers[position]
        assert r.image() == doc["image"]
        pixels = wsq.decode(r.image() or b"")
        assert (int(r.text(6)), int(r.text(7))) == (pixels.shape[1], pixels.shape[0]) == (400, 500)
        assert (r.text(8), r.text(9), r.text(10), r.text(11), r.text(12)) == ("1", "500", "500", "WSQ20", "8")
        assert r.text(3) == "0"  # live-scan plain
        assert r.items(24) == [[str(position), str(doc["quality"]["score"]), "0101", "57"]]  # NFIQ 2.3


def test_exceptions_carry_amp_codes(exported: Exported) -> None:
    txn = read_transaction(exported.data)
    missing = {int(r.text(13)): r for r in txn.of_type(14) if r.image() is None}
    assert set(missing) == {5, 10}
    assert missing[5].items(18) == [["5", "XX"]]  # amputated
    assert missing[10].items(18) == [["10", "UP"]]  # injured (bandaged): unable to print
    for r in missing.values():
        assert not r.has(6) and not r.has(11)


def test_type10_face_token_and_eyes(exported: Exported) -> None:
    (t10,) = read_transaction(exported.data).of_type(10)
    face = exported.document["face"]
    assert t10.image() == face["image"]
    assert (t10.text(3), t10.text(11), t10.text(12), t10.text(13), t10.text(20)) == (
        "FACE",
        "JPEGB",
        "YCC",
        "13",
        "F",
    )
    assert (t10.text(6), t10.text(7)) == ("480", "640")
    assert face["checks"]["portrait"]["eyes_from"] == "eyes"
    assert t10.items(29) == [["1", "12.1", "300", "288"], ["1", "12.2", "180", "288"]]
    assert t10.text(38).startswith("ICAO-style checks all passed: ")


def test_token_geometry_matches_the_portrait_driver() -> None:
    assert (TOKEN_EYE_LINE, TOKEN_EYE_SPACING) == (EYE_LINE, EYE_SPACING)


def _nistitl_items(field: Any) -> list[list[str]] | bytes:
    """A ``nistitl`` field as the project reader's subfields-of-items (text was read as Latin-1)."""
    if isinstance(field, nistitl.BinaryField):
        return bytes(field.value)

    def text(v: Any) -> str:
        return str(v).encode("latin-1").decode("utf-8")

    value = field.value
    if not isinstance(value, list):
        return [[text(value)]]
    return [[text(i) for i in sub] if isinstance(sub, list) else [text(sub)] for sub in value]


def test_independent_reader_nistitl_sees_the_same_transaction(exported: Exported) -> None:
    ours: Transaction = read_transaction(exported.data)
    msg = nistitl.Message()
    msg.parse(exported.data)
    theirs = list(msg)
    assert [r.type for r in theirs] == [r.type for r in ours.records]
    assert msg.TOT == "CNIC"
    for mine, other in zip(ours.records, theirs, strict=True):
        # nistitl keeps a record's fields in a list; every one is compared, images included
        other_fields = {f.tag: _nistitl_items(f) for f in other._fields}
        assert set(other_fields) == set(mine.fields), mine.type
        for tag, value in mine.fields.items():
            assert other_fields[tag] == value, f"{mine.type}.{tag:03d}"
    images = [f.value for r in theirs for f in r._fields if isinstance(f, nistitl.BinaryField)]
    fingers = _fingers(exported.document)
    expected = [fingers[p]["image"] for p in sorted(fingers) if "image" in fingers[p]]
    assert images == [*expected, exported.document["face"]["image"]]


def test_tot_is_configurable_and_checked(exported: Exported) -> None:
    txn = read_transaction(render("ansi-nist", exported.document, exported.meta, "central-x", "ENRL"))
    assert txn.type1.text(4) == "ENRL"
    with pytest.raises(ExportError) as err:
        render("ansi-nist", exported.document, exported.meta, "central-x", "cnic card")
    assert err.value.code == "export.tot"


def test_policy_version_goes_to_type2(exported: Exported) -> None:
    document = {**exported.document, "policy_version": "2026.11-1"}
    t2 = read_transaction(render("ansi-nist", document, exported.meta, "c", "CNIC")).of_type(2)[0]
    assert t2.text(29) == "2026.11-1"


def test_damaged_image_is_refused(exported: Exported) -> None:
    document = {**exported.document, "fingers": [dict(f) for f in exported.document["fingers"]]}
    document["fingers"][0]["image"] = document["fingers"][0]["image"][:-1] + b"\x00"
    with pytest.raises(ExportError) as err:
        render("ansi-nist", document, exported.meta, "c", "CNIC")
    assert err.value.code == "export.image_hash"


def test_not_an_enrollment_document_is_refused(exported: Exported) -> None:
    with pytest.raises(ExportError) as err:
        read_view({"demographics": {}}, exported.meta, "c")
    assert err.value.code == "export.document"


# -- malformed and truncated files -------------------------------------------------------------
def test_every_truncation_is_a_typed_error(exported: Exported) -> None:
    data = exported.data
    cuts = sorted({*range(0, 400), *range(400, len(data), 997), len(data) - 1})
    for cut in cuts:
        with pytest.raises(ReadError):
            read_transaction(data[:cut])
    with pytest.raises(TruncatedFile):
        read_transaction(data[: len(data) // 2])


def test_specific_malformations(exported: Exported) -> None:
    data = exported.data
    with pytest.raises(MalformedFile):
        read_transaction(b"2.001:10\x1d2.002:0\x1c")
    with pytest.raises(MalformedFile):
        read_transaction(data + b"x")
    t1_len = data[6 : data.index(b"\x1d")]
    with pytest.raises(MalformedFile):  # Type-1 one byte shorter than it says: no FS there
        read_transaction(data.replace(b"1.001:" + t1_len, b"1.001:" + str(int(t1_len) - 1).encode(), 1))
    version = data.replace(b"1.002:0500", b"1.002:0400", 1)
    with pytest.raises(NonConformant):
        read_transaction(version)
    cnt = data.replace(b"1.003:1\x1f12", b"1.003:1\x1f11", 1)
    with pytest.raises(NonConformant):
        read_transaction(cnt)
    urdu = "احمد".encode()
    pos = data.index(urdu)
    bad_utf8 = data[:pos] + b"\xff" + data[pos + 1 :]
    with pytest.raises(MalformedFile):
        read_transaction(bad_utf8)
    wrong_size = data.replace(b"14.006:400", b"14.006:401", 1)
    with pytest.raises(ReadError):  # the record grew by one byte too: its length no longer fits
        read_transaction(wrong_size)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_fuzzed_files_raise_only_typed_errors(exported: Exported, data: st.DataObject) -> None:
    blob = bytearray(exported.data)
    for _ in range(data.draw(st.integers(1, 4))):
        kind = data.draw(st.sampled_from(["flip", "insert", "delete", "separator"]))
        pos = data.draw(st.integers(0, len(blob) - 1))
        if kind == "flip":
            blob[pos] = data.draw(st.integers(0, 255))
        elif kind == "insert":
            blob[pos:pos] = data.draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del blob[pos : pos + data.draw(st.integers(1, 16))]
        else:
            blob[pos] = data.draw(st.sampled_from([0x1C, 0x1D, 0x1E, 0x1F]))
    with contextlib.suppress(ReadError):
        read_transaction(bytes(blob))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_raise_only_typed_errors(blob: bytes) -> None:
    with contextlib.suppress(ReadError):
        read_transaction(b"1.001:" + blob)


def test_control_character_in_a_field_is_refused_by_name(exported: Exported) -> None:
    document = {
        **exported.document,
        "demographics": {**exported.document["demographics"], "tehsil": "A\x1eB"},
    }
    with pytest.raises(ExportError) as err:
        render("ansi-nist", document, exported.meta, "c", "CNIC")
    assert err.value.code == "export.field" and "2.024" in str(err.value)
