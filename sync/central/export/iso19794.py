"""ISO/IEC 19794-4:2005 finger image and ISO/IEC 19794-5:2005 face image records, and their reader.

19794-4 (clause 8): a 32-byte general header (``FIR\\0``, version ``010\\0``, 6-byte record length,
device id, acquisition level, number of fingers, scale units, scan and image resolutions, pixel
depth, compression algorithm) and per finger a 14-byte finger header (block length, position,
view count and number, quality, impression type, width, height) followed by the image. Here the
images are WSQ (compression code 2) at 500 ppi, acquisition level 30, live-scan plain (0).

19794-5 (clause 5): a 14-byte header (``FAC\\0``, ``010\\0``, 4-byte length, number of images),
then per image a 20-byte facial information block, 8 bytes per feature point (MPEG-4 12.1/12.2,
the eye centres, when known), a 12-byte image information block and the JPEG.

One packet becomes one ``PACKET_ID.zip`` holding ``finger.fir`` and ``face.fac`` (stored, not
deflated: WSQ and JPEG are compressed already); ISO/IEC 19794 carries no demographics.
"""

from __future__ import annotations

import io
import struct
import zipfile
from dataclasses import dataclass

from sync.central.export.document import FaceImage, FingerImage, PacketView, jpeg_header, wsq_header
from sync.central.export.errors import ExportError, MalformedFile, TruncatedFile

FIR_MAGIC, FAC_MAGIC, VERSION = b"FIR\x00", b"FAC\x00", b"010\x00"
COMPRESSION_WSQ = 2
ACQUISITION_LEVEL = 30  # image acquisition setting level 30: 500 ppi, 256 grey levels
SCALE_PPI = 1
IMPRESSION_LIVE_PLAIN = 0
FACE_TOKEN, FACE_BASIC = 2, 0  # face image type: 0 basic, 1 full frontal, 2 token frontal
IMAGE_JPEG = 0
COLOUR_RGB24, COLOUR_GREY8 = 1, 3
SOURCE_DIGITAL_CAMERA = 2
GENDER = {"male": 1, "female": 2}  # 0 unspecified; ISO/IEC 19794-5:2005 has no code for "x"
MPEG4 = 1
EYE_LEFT, EYE_RIGHT = 0xC1, 0xC2  # feature points 12.1 and 12.2 (major 12 << 4 | minor)


def finger_record(fingers: tuple[FingerImage, ...]) -> bytes:
    """The ISO/IEC 19794-4:2005 record of every captured finger (empty tuple: an error)."""
    if not fingers:
        raise ExportError(
            "the packet has no captured finger for an ISO/IEC 19794-4 record", code="export.empty"
        )
    blocks = []
    for f in fingers:
        quality = f.quality.score if f.quality is not None else 0
        header = struct.pack(
            ">IBBBBBHHB",
            14 + len(f.wsq),
            f.position,
            1,
            1,
            quality,
            IMPRESSION_LIVE_PLAIN,
            f.width,
            f.height,
            0,
        )
        blocks.append(header + f.wsq)
    body = b"".join(blocks)
    length = 32 + len(body)
    general = (
        FIR_MAGIC
        + VERSION
        + length.to_bytes(6, "big")
        + struct.pack(">HHBB", 0, ACQUISITION_LEVEL, len(fingers), SCALE_PPI)
        + struct.pack(">HHHHBBH", 500, 500, 500, 500, 8, COMPRESSION_WSQ, 0)
    )
    assert len(general) == 32
    return general + body


def face_record(view: PacketView, face: FaceImage) -> bytes:
    """The ISO/IEC 19794-5:2005 record of the portrait."""
    points = b""
    if face.eyes is not None:
        (rx, ry), (lx, ly) = face.eyes
        points = struct.pack(">BBHHH", MPEG4, EYE_LEFT, lx, ly, 0) + struct.pack(
            ">BBHHH", MPEG4, EYE_RIGHT, rx, ry, 0
        )
    count = len(points) // 8
    image_type = FACE_TOKEN if face.token else FACE_BASIC
    colour = COLOUR_RGB24 if face.components == 3 else COLOUR_GREY8
    info = struct.pack(
        ">BBHHBBHH", image_type, IMAGE_JPEG, face.width, face.height, colour, SOURCE_DIGITAL_CAMERA, 0, 0
    )
    data_length = 20 + len(points) + len(info) + len(face.jpeg)
    gender = GENDER.get(str(view.demographics.get("gender")), 0)
    facial = (
        struct.pack(">IHBBB", data_length, count, gender, 0, 0) + b"\x00\x00\x00" + b"\x00\x00" + bytes(6)
    )
    assert len(facial) == 20
    block = facial + points + info + face.jpeg
    header = FAC_MAGIC + VERSION + struct.pack(">IH", 14 + len(block), 1)
    return header + block


def write_packet(view: PacketView) -> bytes:
    """``PACKET_ID.zip``: ``finger.fir`` (when a finger was captured) and ``face.fac`` (when a face was)."""
    if not view.fingers and view.face is None:
        raise ExportError("the packet has neither a captured finger nor a face", code="export.empty")
    buf = io.BytesIO()
    stamp = view.created.timetuple()[:6]
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        if view.fingers:
            zf.writestr(zipfile.ZipInfo("finger.fir", date_time=stamp), finger_record(view.fingers))
        if view.face is not None:
            zf.writestr(zipfile.ZipInfo("face.fac", date_time=stamp), face_record(view, view.face))
    return buf.getvalue()


# -- reading (the tests and --check) ----------------------------------------------------------
@dataclass(frozen=True)
class FingerView:
    position: int
    quality: int
    impression: int
    width: int
    height: int
    image: bytes


@dataclass(frozen=True)
class FaceView:
    image_type: int
    width: int
    height: int
    gender: int
    points: tuple[tuple[int, int, int], ...]  # (code, x, y)
    image: bytes


def _need(data: bytes, end: int, what: str) -> None:
    if end > len(data):
        raise TruncatedFile(f"the file ends inside {what}", offset=len(data))


def read_finger_record(data: bytes) -> list[FingerView]:
    """Parse an ISO/IEC 19794-4:2005 record strictly (the header's length and counts must agree)."""
    _need(data, 32, "the general header")
    if data[:8] != FIR_MAGIC + VERSION:
        raise MalformedFile("not an ISO/IEC 19794-4:2005 record (FIR 010)", offset=0)
    length = int.from_bytes(data[8:14], "big")
    _need(data, length, "the record")
    if length != len(data):
        raise MalformedFile(f"the record declares {length} bytes, the file has {len(data)}", offset=8)
    _dev, _level, count, scale = struct.unpack_from(">HHBB", data, 14)
    *_res, depth, compression, _r = struct.unpack_from(">HHHHBBH", data, 20)
    if compression != COMPRESSION_WSQ or depth != 8 or scale not in (1, 2):
        raise MalformedFile("only 8-bit WSQ finger images are read here", offset=20)
    out, pos = [], 32
    for _ in range(count):
        _need(data, pos + 14, "a finger header")
        block, position, _views, _view, quality, impression, width, height, _ = struct.unpack_from(
            ">IBBBBBHHB", data, pos
        )
        if block < 14:
            raise MalformedFile("a finger block is shorter than its header", offset=pos)
        _need(data, pos + block, "a finger image")
        image = data[pos + 14 : pos + block]
        try:
            size = wsq_header(image)
        except ExportError as exc:
            raise MalformedFile(str(exc), offset=pos + 14) from None
        if size != (width, height):
            raise MalformedFile(
                f"finger {position}: the WSQ image is {size}, the header says {(width, height)}", offset=pos
            )
        out.append(FingerView(position, quality, impression, width, height, image))
        pos += block
    if pos != len(data):
        raise MalformedFile("bytes after the last finger", offset=pos)
    return out


def read_face_record(data: bytes) -> FaceView:
    """Parse an ISO/IEC 19794-5:2005 record with one image strictly."""
    _need(data, 14, "the header")
    if data[:8] != FAC_MAGIC + VERSION:
        raise MalformedFile("not an ISO/IEC 19794-5:2005 record (FAC 010)", offset=0)
    length, count = struct.unpack_from(">IH", data, 8)
    _need(data, length, "the record")
    if length != len(data) or count != 1:
        raise MalformedFile("the record's length or image count is wrong", offset=8)
    _need(data, 14 + 20, "the facial information")
    block, npoints, gender = struct.unpack_from(">IHB", data, 14)
    if 14 + block != len(data):
        raise MalformedFile("the facial block length is wrong", offset=14)
    pos = 34
    points = []
    for _ in range(npoints):
        _need(data, pos + 8, "a feature point")
        _t, code, x, y, _r = struct.unpack_from(">BBHHH", data, pos)
        points.append((code, x, y))
        pos += 8
    _need(data, pos + 12, "the image information")
    image_type, data_type, width, height, *_ = struct.unpack_from(">BBHHBBHH", data, pos)
    image = data[pos + 12 :]
    if data_type != IMAGE_JPEG:
        raise MalformedFile("only JPEG face images are read here", offset=pos)
    try:
        w, h, _c, _s = jpeg_header(image)
    except ExportError as exc:
        raise MalformedFile(str(exc), offset=pos + 12) from None
    if (w, h) != (width, height):
        raise MalformedFile("the JPEG size differs from the image information", offset=pos)
    return FaceView(image_type, width, height, gender, tuple(points), image)
