"""A strict reader of ANSI/NIST-ITL 1-2011 traditional-encoding transactions (what ``ansi_nist`` writes).

Every problem raises a :class:`ReadError` subclass and nothing else: :class:`TruncatedFile` when
the bytes end early, :class:`MalformedFile` when the encoding itself is broken (tags, separators,
lengths, characters), :class:`NonConformant` when well-formed fields break the standard's rules
(Type-1 CNT against the records present, mandatory fields, value ranges, image headers against
HLL/VLL). Tagged record types other than 1, 2, 10 and 14 are parsed but their fields not checked;
the binary-only types (3-8) are refused. ``central export --check FILE`` prints :func:`describe`.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from sync.central.export.document import jpeg_header, wsq_header
from sync.central.export.errors import ExportError, MalformedFile, NonConformant, ReadError, TruncatedFile

FS, GS, RS, US = 0x1C, 0x1D, 0x1E, 0x1F
MAX_FILE = 64 * 1024 * 1024
MAX_RECORDS = 1000
_DIGITS = re.compile(rb"[0-9]{1,9}")
_FIELD_TAG = re.compile(rb"([1-9][0-9]?)\.([0-9]{3,9}):")
_BINARY_TYPES = range(3, 9)
_CGA = {"NONE", "WSQ20", "JPEGB", "JPEGL", "JP2", "JP2L", "PNG"}

Items = list[list[str]]


@dataclass
class Record:
    type: int
    offset: int
    fields: dict[int, Items | bytes] = field(default_factory=dict)

    @property
    def idc(self) -> int:
        return int(self.text(2)) if self.type != 1 else 0

    def has(self, number: int) -> bool:
        return number in self.fields

    def items(self, number: int) -> Items:
        value = self.fields.get(number)
        if value is None:
            raise NonConformant(
                f"record Type-{self.type} has no field {self.type}.{number:03d}", offset=self.offset
            )
        if isinstance(value, bytes):
            raise NonConformant(f"field {self.type}.{number:03d} is binary", offset=self.offset)
        return value

    def text(self, number: int) -> str:
        value = self.items(number)
        if len(value) != 1 or len(value[0]) != 1:
            raise NonConformant(f"field {self.type}.{number:03d} must hold one value", offset=self.offset)
        return value[0][0]

    def image(self) -> bytes | None:
        value = self.fields.get(999)
        return value if isinstance(value, bytes) else None


@dataclass
class Transaction:
    records: list[Record]

    @property
    def type1(self) -> Record:
        return self.records[0]

    def of_type(self, record_type: int) -> list[Record]:
        return [r for r in self.records if r.type == record_type]


def _decode(raw: bytes, *, utf8: bool, where: int, tag: str) -> str:
    for b in raw:
        if b < 0x20 or b == 0x7F:
            raise MalformedFile(f"field {tag} holds control byte 0x{b:02x}", offset=where)
    try:
        return raw.decode("utf-8" if utf8 else "ascii")
    except UnicodeDecodeError as exc:
        enc = "UTF-8" if utf8 else "7-bit ASCII"
        raise MalformedFile(f"field {tag} is not {enc}", offset=where + exc.start) from None


def _split(raw: bytes, *, utf8: bool, where: int, tag: str) -> Items:
    if not raw:
        raise MalformedFile(f"field {tag} is empty", offset=where)
    out: Items = []
    for sub in raw.split(bytes([RS])):
        items = sub.split(bytes([US]))
        out.append([_decode(i, utf8=utf8, where=where, tag=tag) for i in items])
    return out


def _record(data: bytes, offset: int, *, utf8: bool) -> tuple[Record, int]:
    """One tagged record starting at ``offset``: (record, offset of the next one)."""
    m = _FIELD_TAG.match(data, offset)
    if m is None:
        if len(data) - offset < 8 and not data[offset:].rstrip(b"0123456789.:"):
            raise TruncatedFile("the file ends inside a record tag", offset=offset)
        raise MalformedFile("a record does not start with a 'T.001:' length field", offset=offset)
    record_type, number = int(m.group(1)), int(m.group(2))
    if number != 1:
        raise MalformedFile(
            f"record Type-{record_type} starts with field {number}, not its length", offset=offset
        )
    if record_type in _BINARY_TYPES:
        raise NonConformant(f"binary record Type-{record_type} is not read here", offset=offset)
    gs = data.find(bytes([GS]), m.end(), m.end() + 12)
    if gs < 0:
        if len(data) - m.end() < 12:
            raise TruncatedFile(
                f"the file ends inside the length of a Type-{record_type} record", offset=offset
            )
        raise MalformedFile(f"the length of a Type-{record_type} record is not followed by GS", offset=offset)
    if not _DIGITS.fullmatch(data, m.end(), gs):
        raise MalformedFile(f"the length of a Type-{record_type} record is not a number", offset=m.end())
    length = int(data[m.end() : gs])
    end = offset + length
    if length < gs - offset + 2:
        raise MalformedFile(f"a Type-{record_type} record declares {length} bytes, too few", offset=offset)
    if end > len(data):
        raise TruncatedFile(
            f"a Type-{record_type} record declares {length} bytes, the file has {len(data) - offset} left",
            offset=offset,
        )
    if data[end - 1] != FS:
        raise MalformedFile(
            f"the Type-{record_type} record does not end with FS where its length says", offset=end - 1
        )
    record = Record(record_type, offset)
    record.fields[1] = [[str(length)]]
    pos, last = gs + 1, 1
    ascii_only = record_type == 1 or not utf8
    while pos < end - 1:
        fm = _FIELD_TAG.match(data, pos, end)
        if fm is None:
            raise MalformedFile(f"a field of the Type-{record_type} record has no 'T.NNN:' tag", offset=pos)
        ftype, number = int(fm.group(1)), int(fm.group(2))
        tag = f"{ftype}.{number:03d}"
        if ftype != record_type:
            raise MalformedFile(f"field {tag} inside a Type-{record_type} record", offset=pos)
        if number <= last:
            raise MalformedFile(f"field {tag} is out of order or repeated", offset=pos)
        last = number
        if number == 999:
            record.fields[999] = bytes(data[fm.end() : end - 1])
            if not record.fields[999]:
                raise MalformedFile(f"field {tag} (image) is empty", offset=pos)
            pos = end - 1
            break
        stop = data.find(bytes([GS]), fm.end(), end - 1)
        stop = end - 1 if stop < 0 else stop
        raw = data[fm.end() : stop]
        if FS in raw:
            raise MalformedFile(f"field {tag} holds FS inside its record", offset=fm.end())
        record.fields[number] = _split(raw, utf8=not ascii_only, where=fm.end(), tag=tag)
        pos = stop + 1
    if (999 in record.fields and pos != end - 1) or (999 not in record.fields and pos != end):
        raise MalformedFile(f"the Type-{record_type} record does not end cleanly", offset=pos)
    return record, end


def _int(record: Record, number: int, low: int, high: int) -> int:
    text = record.text(number)
    if not text.isdigit() or not low <= int(text) <= high:
        raise NonConformant(
            f"field {record.type}.{number:03d} = {text!r}: expected {low}-{high}", offset=record.offset
        )
    return int(text)


def _date(record: Record, number: int) -> None:
    text = record.text(number)
    try:
        if len(text) != 8 or not text.isdigit():
            raise ValueError
        dt.datetime.strptime(text, "%Y%m%d")
    except ValueError:
        raise NonConformant(
            f"field {record.type}.{number:03d} = {text!r} is not a YYYYMMDD date", offset=record.offset
        ) from None


def _check_type1(r: Record, others: list[Record]) -> None:
    for number in (2, 3, 4, 5, 7, 8, 9, 11, 12):
        r.items(number)
    if r.text(2) != "0500":
        raise NonConformant(
            f"version {r.text(2)!r}: this reader reads ANSI/NIST-ITL 1-2011 (0500)", offset=r.offset
        )
    _date(r, 5)
    for number in (11, 12):
        if not re.fullmatch(r"[0-9]{2}\.[0-9]{2}", r.text(number)):
            raise NonConformant(f"field 1.{number:03d} is not a resolution NN.NN", offset=r.offset)
    if r.has(14) and not re.fullmatch(r"[0-9]{14}Z", r.text(14)):
        raise NonConformant("field 1.014 GMT is not YYYYMMDDHHMMSSZ", offset=r.offset)
    cnt = r.items(3)
    if any(len(sub) != 2 for sub in cnt):
        raise NonConformant("field 1.003 CNT: every subfield has a record type and an IDC", offset=r.offset)
    if cnt[0][0] != "1" or cnt[0][1] != str(len(others)):
        raise NonConformant(
            f"field 1.003 CNT announces {cnt[0][1]} records after Type-1; the file holds {len(others)}",
            offset=r.offset,
        )
    if len(cnt) - 1 != len(others):
        raise NonConformant(
            f"field 1.003 CNT lists {len(cnt) - 1} records; the file holds {len(others)}", offset=r.offset
        )
    for (t, idc), rec in zip(cnt[1:], others, strict=True):
        if t != str(rec.type) or idc != str(rec.idc):
            raise NonConformant(
                f"field 1.003 CNT lists Type-{t} IDC {idc} where the file has Type-{rec.type} IDC {rec.idc}",
                offset=rec.offset,
            )


def _check_image_size(r: Record, size: tuple[int, int], what: str) -> None:
    hll, vll = _int(r, 6, 10, 99999), _int(r, 7, 10, 99999)
    if size != (hll, vll):
        raise NonConformant(
            f"Type-{r.type} IDC {r.idc}: the {what} image is {size[0]}x{size[1]}, HLL/VLL say {hll}x{vll}",
            offset=r.offset,
        )


def _image_size(r: Record, image: bytes, cga: str) -> tuple[int, int] | None:
    try:
        if cga == "WSQ20":
            return wsq_header(image)
        if cga == "JPEGB":
            w, h, _c, _sof = jpeg_header(image)
            return w, h
    except ExportError as exc:
        raise NonConformant(f"Type-{r.type} IDC {r.idc}: {exc}", offset=r.offset) from None
    return None


def _check_type14(r: Record) -> None:
    _int(r, 3, 0, 99)
    r.text(4)
    _date(r, 5)
    positions = [sub[0] for sub in r.items(13)]
    for p in positions:
        if not p.isdigit() or not (0 <= int(p) <= 19 or int(p) in (33, 36) or 40 <= int(p) <= 50):
            raise NonConformant(f"field 14.013 FGP = {p!r} is not a finger position", offset=r.offset)
    amp = r.items(18) if r.has(18) else []
    for sub in amp:
        if len(sub) != 2 or sub[1] not in ("XX", "UP") or not sub[0].isdigit() or not 1 <= int(sub[0]) <= 10:
            raise NonConformant(
                f"field 14.018 AMP entry {sub!r}: expected FGP 1-10 and XX or UP", offset=r.offset
            )
    image = r.image()
    if image is None:
        covered = {sub[0] for sub in amp}
        if not amp or any(p not in covered for p in positions):
            raise NonConformant(
                f"Type-14 IDC {r.idc} has no image and no AMP entry for its finger", offset=r.offset
            )
        return
    for number in (6, 7, 8, 9, 10, 11, 12):
        r.items(number)
    _int(r, 8, 0, 2)
    _int(r, 12, 8, 99)
    cga = r.text(11)
    if cga not in _CGA:
        raise NonConformant(f"field 14.011 CGA = {cga!r} is not a compression code", offset=r.offset)
    size = _image_size(r, image, cga)
    if size is not None:
        _check_image_size(r, size, cga)
    for sub in r.items(22) if r.has(22) else []:
        if len(sub) != 2 or not sub[1].isdigit() or not (1 <= int(sub[1]) <= 5 or int(sub[1]) in (254, 255)):
            raise NonConformant(f"field 14.022 NQM entry {sub!r}: NFIQ is 1-5, 254 or 255", offset=r.offset)
    for sub in r.items(24) if r.has(24) else []:
        ok = len(sub) == 4 and sub[1].isdigit() and (int(sub[1]) <= 100 or int(sub[1]) in (254, 255))
        ok = (
            ok
            and re.fullmatch(r"[0-9A-F]{4}", sub[2]) is not None
            and sub[3].isdigit()
            and 1 <= int(sub[3]) <= 65535
        )
        if not ok:
            raise NonConformant(
                f"field 14.024 FQM entry {sub!r}: FGP, score 0-100, vendor hex, product", offset=r.offset
            )


def _check_type10(r: Record) -> None:
    imt = r.text(3)
    if imt not in ("FACE", "SMT", "TATTOO", "CHAR", "IRIS", "OTHER"):
        raise NonConformant(f"field 10.003 IMT = {imt!r} is not an image type", offset=r.offset)
    for number in (4, 5, 6, 7, 8, 9, 10, 11, 12):
        r.items(number)
    _date(r, 5)
    _int(r, 8, 0, 2)
    image = r.image()
    if image is None:
        raise NonConformant(f"Type-10 IDC {r.idc} has no image (10.999)", offset=r.offset)
    cga = r.text(11)
    if cga not in _CGA:
        raise NonConformant(f"field 10.011 CGA = {cga!r} is not a compression code", offset=r.offset)
    if r.text(12) not in ("GRAY", "RGB", "SRGB", "YCC", "SYCC"):
        raise NonConformant(f"field 10.012 CSP = {r.text(12)!r} is not a colour space", offset=r.offset)
    if imt == "FACE":
        _int(r, 13, 0, 99)
    size = _image_size(r, image, cga)
    if size is not None:
        _check_image_size(r, size, cga)


def read_transaction(data: bytes) -> Transaction:
    """Parse and check a whole transaction; raises only :class:`ReadError` subclasses."""
    if not isinstance(data, bytes | bytearray):
        raise MalformedFile("expected the bytes of a file")
    data = bytes(data)
    if len(data) > MAX_FILE:
        raise MalformedFile(f"the file is {len(data)} bytes; at most {MAX_FILE} are read")
    if not data:
        raise TruncatedFile("the file is empty", offset=0)
    if not data.startswith(b"1.001:"):
        if b"1.001:".startswith(data):
            raise TruncatedFile("the file ends inside the Type-1 record's first tag", offset=0)
        raise MalformedFile("not an ANSI/NIST-ITL file: it does not start with '1.001:'", offset=0)
    first, offset = _record(data, 0, utf8=False)
    if first.type != 1:  # pragma: no cover - the prefix check above makes this Type-1
        raise MalformedFile("the first record is not Type-1", offset=0)
    utf8 = any(sub and sub[0] == "3" for sub in first.items(15)) if first.has(15) else False
    records = [first]
    while offset < len(data):
        if len(records) > MAX_RECORDS:
            raise MalformedFile(f"more than {MAX_RECORDS} records", offset=offset)
        record, offset = _record(data, offset, utf8=utf8)
        if record.type == 1:
            raise MalformedFile("a second Type-1 record", offset=record.offset)
        records.append(record)
    others = records[1:]
    for r in others:
        _int(r, 2, 0, 99)
    _check_type1(first, others)
    for r in others:
        if r.type == 14:
            _check_type14(r)
        elif r.type == 10:
            _check_type10(r)
    return Transaction(records)


def describe(txn: Transaction) -> list[str]:
    """What ``--check`` prints: one line per record, then the verdict."""
    t1 = txn.type1
    lines = [
        f"Type-1  version {t1.text(2)}  TOT {t1.text(4)}  DAT {t1.text(5)}  TCN {t1.text(9)}",
        f"        ORI {t1.text(8)}  DAI {t1.text(7)}  NSR/NTR {t1.text(11)}/{t1.text(12)} ppmm"
        + (f"  DCS {'/'.join(t1.items(15)[0])}" if t1.has(15) else ""),
    ]
    for r in txn.records[1:]:
        if r.type == 2:
            lines.append(f"Type-2  IDC {r.idc}  {len(r.fields) - 2} demographic fields")
        elif r.type == 14:
            fgp = ",".join(sub[0] for sub in r.items(13))
            image = r.image()
            if image is None:
                amp = " ".join(f"{s[0]}:{s[1]}" for s in r.items(18))
                lines.append(f"Type-14 IDC {r.idc}  FGP {fgp}  no image  AMP {amp}")
            else:
                q = ""
                if r.has(24):
                    s = r.items(24)[0]
                    q = f"  FQM {s[1]} (vendor {s[2]} product {s[3]})"
                lines.append(
                    f"Type-14 IDC {r.idc}  FGP {fgp}  {r.text(11)} {r.text(6)}x{r.text(7)} "
                    f"at {r.text(9)} ppi  {len(image)} bytes{q}"
                )
        elif r.type == 10:
            ffp = f"  FFP {len(r.items(29))} points" if r.has(29) else ""
            sap = f"  SAP {r.text(13)}" if r.has(13) else ""
            lines.append(
                f"Type-10 IDC {r.idc}  IMT {r.text(3)}  {r.text(11)} {r.text(6)}x{r.text(7)}{sap}{ffp}"
                f"  {len(r.image() or b'')} bytes"
            )
        else:
            lines.append(f"Type-{r.type} IDC {r.idc}  {len(r.fields)} fields (not checked)")
    lines.append(f"OK: {len(txn.records)} records, ANSI/NIST-ITL 1-2011 traditional encoding")
    return lines


__all__ = [
    "MalformedFile",
    "NonConformant",
    "ReadError",
    "Record",
    "Transaction",
    "TruncatedFile",
    "describe",
    "read_transaction",
]
