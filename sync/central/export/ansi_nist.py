"""ANSI/NIST-ITL 1-2011 traditional encoding: one transaction per packet (Type-1, 2, 14, 10).

A field is ``T.NNN:value``; GS (0x1D) separates fields, RS (0x1E) subfields, US (0x1F) information
items, and FS (0x1C) ends a record. Field ``T.001`` is the record's length in bytes (itself
included); the binary image field ``T.999`` comes last. Type-1 is 7-bit ASCII; the other text is
UTF-8, declared in Type-1 field 1.015 DCS (character encoding index 3, Table 4), written directly
(no STX/ETX switching: UTF-8 never produces the separator bytes).

Records, in order: Type-1 (transaction), Type-2 (demographics, IDC 0), one Type-14 per finger
(IDC 1..), captured fingers with their WSQ image and missing ones with 14.018 AMP and no image,
and Type-10 for the face. No Type-4 (legacy binary, superseded by Type-14), no Type-8 (signature
image: the station captures none) and no Type-20 (source representation: the captures are the
originals). The field map and the clauses each field follows are in ``docs/formats.md``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from sync.central.export.document import FaceImage, FingerImage, FingerMissing, PacketView
from sync.central.export.errors import ExportError

FS, GS, RS, US = b"\x1c", b"\x1d", b"\x1e", b"\x1f"
VERSION = "0500"  # ANSI/NIST-ITL 1-2011
DEFAULT_TOT = "CNIC"
NATIVE_RESOLUTION = "19.69"  # pixels per millimetre: 500 ppi (1.011 NSR, 1.012 NTR)
DOMAIN = ("ENROLLMENT-STATION", "1")  # 1.013 DOM: whose Type-2 field map applies, and its version
UTF8_CSI = "3"
IMPRESSION_LIVE_PLAIN = "0"  # Table 7: live-scan plain
SAP_ISO_TOKEN = "13"  # field 10.013 SAP code: ISO/IEC 19794-5 token facial image
SAP_UNKNOWN = "0"
MPEG4_FEATURE_POINTS = "1"  # 10.029 FFP feature point type: ISO/IEC 14496-2 (MPEG-4)
_TOT = re.compile(r"[A-Z0-9]{1,16}")
_ASCII_TEXT = re.compile(r"[\x20-\x7e]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

Value = str | Sequence[Sequence[str]]  # one item, or subfields of information items

# The Type-2 field map (domain ENROLLMENT-STATION version 1): field -> (mnemonic, document key).
TYPE2_FIELDS: tuple[tuple[int, str, str], ...] = (
    (10, "KND", "kind"),
    (11, "NEN", "name_en"),
    (12, "NUR", "name_ur"),
    (13, "FEN", "father_or_husband_name_en"),
    (14, "FUR", "father_or_husband_name_ur"),
    (15, "CNI", "cnic"),
    (16, "PCN", "parent_cnic"),
    (17, "DOB", "date_of_birth"),
    (18, "SEX", "gender"),
    (19, "PAE", "present_address_en"),
    (20, "PAU", "present_address_ur"),
    (21, "RAE", "permanent_address_en"),
    (22, "RAU", "permanent_address_ur"),
    (23, "DIS", "district"),
    (24, "TEH", "tehsil"),
    (25, "UCN", "union_council"),
    (26, "PUR", "purpose"),
    (27, "CON", "consent"),
    (28, "OPR", "operator_id"),
    (29, "POL", "policy_version"),
)
SEX_CODES = {"male": "M", "female": "F", "x": "X"}


def _check_text(text: str, *, ascii_only: bool, what: str) -> bytes:
    if not text:
        raise ExportError(f"{what} is empty; ANSI/NIST-ITL fields may not be", code="export.field")
    if ascii_only:
        if not _ASCII_TEXT.fullmatch(text):
            raise ExportError(f"{what} must be printable 7-bit ASCII", code="export.field")
    elif _CONTROL.search(text):
        raise ExportError(f"{what} holds a control character", code="export.field")
    return text.encode("utf-8")


def encode_value(value: Value, *, ascii_only: bool, what: str) -> bytes:
    if isinstance(value, str):
        return _check_text(value, ascii_only=ascii_only, what=what)
    return RS.join(
        US.join(_check_text(item, ascii_only=ascii_only, what=what) for item in subfield)
        for subfield in value
    )


def encode_record(record_type: int, fields: Iterable[tuple[int, Value]], image: bytes | None = None) -> bytes:
    """One tagged record with its x.001 length computed; ``image`` becomes field x.999."""
    ascii_only = record_type == 1
    fields = list(fields)
    texts: list[str] = []
    items: list[str] = []
    for number, value in sorted(fields):
        if isinstance(value, str):
            items.append(value)
            text = value
        else:
            subfields = ["\x1f".join(sub) for sub in value]
            items.extend(item for sub in value for item in sub)
            text = "\x1e".join(subfields)
        texts.append(f"{record_type}.{number:03d}:{text}")
    # One check per record (the items joined without separators), then each item's rule by name.
    joined = "".join(items)
    bad = not _ASCII_TEXT.fullmatch(joined) if ascii_only else bool(_CONTROL.search(joined))
    if bad or not all(items):
        for number, value in fields:  # find the field to name in the error
            encode_value(value, ascii_only=ascii_only, what=f"field {record_type}.{number:03d}")
    body = "\x1d".join(texts).encode("utf-8")
    tail = (GS, f"{record_type}.999:".encode(), image, FS) if image is not None else (FS,)
    rest = b"".join((body, *tail))
    head = f"{record_type}.001:"
    length = len(head) + 1 + len(rest)
    for _ in range(4):  # the length's own digits count: settle in two or three rounds
        total = length + len(str(length))
        if len(str(total)) == len(str(length)):
            length = total
            break
        length += 1
    else:  # pragma: no cover - four rounds always settle
        raise ExportError("record length did not settle: report this packet id", code="export.record_length")
    out = b"".join((head.encode(), str(length).encode(), GS, rest))
    assert len(out) == length
    return out


def _date(view: PacketView) -> str:
    return view.created.strftime("%Y%m%d")


def type1(view: PacketView, records: Sequence[tuple[int, int]], tot: str) -> bytes:
    cnt = [["1", str(len(records))], *[[str(t), str(idc)] for t, idc in records]]
    return encode_record(
        1,
        [
            (2, VERSION),
            (3, cnt),
            (4, tot),
            (5, _date(view)),
            (7, view.central_id),
            (8, view.station_id),
            (9, view.packet_id),
            (11, NATIVE_RESOLUTION),
            (12, NATIVE_RESOLUTION),
            (13, [list(DOMAIN)]),
            (14, view.created.strftime("%Y%m%d%H%M%SZ")),
            (15, [[UTF8_CSI, "UTF-8"]]),
        ],
    )


def type2_values(view: PacketView) -> list[tuple[int, str]]:
    """The Type-2 fields of a packet (field number, text), in the documented map."""
    demo = view.demographics
    values = dict(demo)
    values["date_of_birth"] = demo["date_of_birth"].replace("-", "")
    values["gender"] = SEX_CODES.get(demo["gender"], "")
    values["consent"] = "Y" if demo["consent"] else "N"
    values["operator_id"] = view.operator_id
    values["policy_version"] = view.policy_version or ""
    out: list[tuple[int, str]] = []
    for number, _mnemonic, key in TYPE2_FIELDS:
        text = str(values.get(key, ""))
        if text:  # an empty field is not allowed: an unknown value is left out
            out.append((number, text))
    return out


def type2(view: PacketView, idc: int) -> bytes:
    return encode_record(2, [(2, str(idc)), *type2_values(view)])


def type14_captured(view: PacketView, finger: FingerImage, idc: int) -> bytes:
    fields: list[tuple[int, Value]] = [
        (2, str(idc)),
        (3, IMPRESSION_LIVE_PLAIN),
        (4, view.station_id),
        (5, _date(view)),
        (6, str(finger.width)),
        (7, str(finger.height)),
        (8, "1"),  # SLC: pixels per inch
        (9, str(finger.ppi)),
        (10, str(finger.ppi)),
        (11, "WSQ20"),
        (12, "8"),
        (13, str(finger.position)),
    ]
    if finger.quality is not None:
        q = finger.quality
        fields.append((24, [[str(finger.position), str(q.score), f"{q.vendor:04X}", str(q.product)]]))
    return encode_record(14, fields, finger.wsq)


def type14_missing(view: PacketView, finger: FingerMissing, idc: int) -> bytes:
    return encode_record(
        14,
        [
            (2, str(idc)),
            (3, IMPRESSION_LIVE_PLAIN),
            (4, view.station_id),
            (5, _date(view)),
            (13, str(finger.position)),
            (18, [[str(finger.position), finger.amp]]),
            (20, f"finger exception: {finger.reason}"),
        ],
    )


def face_comment(face: FaceImage) -> str | None:
    """The ICAO-style check results no Type-10 field holds, as one ASCII comment (10.038 COM)."""
    checks = face.checks.get("checks")
    if not isinstance(checks, dict) or not checks:
        return None
    verdict = "all passed" if face.checks.get("all_passed") is True else "not all passed"
    items = []
    for name in sorted(checks):
        entry = checks[name]
        passed = isinstance(entry, dict) and entry.get("passed") is True
        items.append(f"{name}={'pass' if passed else 'fail'}")
    text = f"ICAO-style checks {verdict}: " + " ".join(items)
    return text if _ASCII_TEXT.fullmatch(text) else None


def type10(view: PacketView, face: FaceImage, idc: int) -> bytes:
    if not face.baseline:
        raise ExportError(
            "the face JPEG is not baseline (progressive or lossless); ANSI/NIST-ITL 1-2011 Type-10 "
            "takes baseline JPEG as JPEGB: re-encode the portrait",
            code="export.face",
        )
    fields: list[tuple[int, Value]] = [
        (2, str(idc)),
        (3, "FACE"),
        (4, view.station_id),
        (5, _date(view)),
        (6, str(face.width)),
        (7, str(face.height)),
        (8, "0"),  # SLC 0: no scale; THPS:TVPS is the pixel aspect ratio
        (9, "1"),
        (10, "1"),
        (11, "JPEGB"),
        (12, "YCC" if face.components == 3 else "GRAY"),
        (13, SAP_ISO_TOKEN if face.token else SAP_UNKNOWN),
        (20, "F"),  # POS: full face frontal
    ]
    if face.eyes is not None:
        (rx, ry), (lx, ly) = face.eyes
        # MPEG-4 12.1 is the subject's left eye centre, 12.2 the right (ISO/IEC 19794-5 Annex C).
        fields.append(
            (
                29,
                [
                    [MPEG4_FEATURE_POINTS, "12.1", str(lx), str(ly)],
                    [MPEG4_FEATURE_POINTS, "12.2", str(rx), str(ry)],
                ],
            )
        )
    comment = face_comment(face)
    if comment:
        fields.append((38, comment))
    return encode_record(10, fields, face.jpeg)


def write_transaction(view: PacketView, *, tot: str = DEFAULT_TOT) -> bytes:
    """The whole transaction for one packet (bytes of a ``.an2`` file)."""
    if not _TOT.fullmatch(tot):
        raise ExportError(
            f"type of transaction {tot!r}: use 1-16 capital letters or digits (e.g. CNIC)", code="export.tot"
        )
    body: list[bytes] = []
    listed: list[tuple[int, int]] = []
    body.append(type2(view, 0))
    listed.append((2, 0))
    idc = 1
    entries: list[FingerImage | FingerMissing] = sorted(
        [*view.fingers, *view.missing], key=lambda f: f.position
    )
    for finger in entries:
        if isinstance(finger, FingerImage):
            body.append(type14_captured(view, finger, idc))
        else:
            body.append(type14_missing(view, finger, idc))
        listed.append((14, idc))
        idc += 1
    if view.face is not None:
        body.append(type10(view, view.face, idc))
        listed.append((10, idc))
    return type1(view, listed, tot) + b"".join(body)
