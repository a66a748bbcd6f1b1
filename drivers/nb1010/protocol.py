"""NEXT Biometrics NB-1010-U wire protocol as pure functions over bytes.

The sensor talks over two bulk endpoints (OUT 0x02, IN 0x83). Every message,
both ways, starts with an 8-byte header::

    0x80, code, sequence, 0x00, total length (u32 little-endian, header included)

A command is answered by a 16-byte reply. After the capture command the frame
(256 x 180, 8-bit grey) arrives as 90 "partials" of 540 bytes: a 25-byte header
(whose bytes 16..19 hold the index of the partial's last line, 20..23 the line
width), two 256-byte scan lines, and 3 trailing bytes that carry no image.
Byte 12 of the reply to the finger-detect command is the sensor's finger
signal: above 0x30 means a finger lies on the sensor.

Public facts from libfprint's ``nb1010`` driver (LGPL-2.1-or-later), checked
against a real recording (``tests/fixtures/usb/nb1010``). Nothing here touches
USB: the driver (``driver.py``) moves these bytes; tests feed them directly.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from drivers.base import GreyImage
from drivers.errors import ProtocolError

VENDOR_ID = 0x298D
PRODUCT_ID = 0x1010
MODEL = "NEXT Biometrics NB-1010-U"

INTERFACE = 0
EP_OUT = 0x02
EP_IN = 0x83

FRAME_WIDTH = 256
FRAME_HEIGHT = 180
PPI = 385  # NB-1010-U datasheet: 385 ppi, 256 x 180 active area (11.9 x 16.9 mm)

MAGIC = 0x80
HEADER_LEN = 8
REPLY_LEN = 16
PARTIAL_LEN = 540
PARTIAL_HEADER_LEN = 25
LINES_PER_PARTIAL = 2
PARTIAL_COUNT = FRAME_HEIGHT // LINES_PER_PARTIAL  # 90
PARTIAL_PIXELS = LINES_PER_PARTIAL * FRAME_WIDTH  # 512

FINGER_SIGNAL_OFFSET = 12
FINGER_THRESHOLD = 0x30

# Command codes and the codes of their answers.
CODE_CHECK_FINGER = 0x38
CODE_CHECK_FINGER_REPLY = 0x37
CODE_PRECAPTURE = 0x0D
CODE_CAPTURE = 0x12
CODE_ACK = 0x20
CODE_PARTIAL = 0x21


def build_command(code: int, sequence: int, body: bytes = b"") -> bytes:
    """A command: the 8-byte header (its length field counts itself) followed by ``body``."""
    if not 0 <= code <= 0xFF or not 0 <= sequence <= 0xFF:
        raise ValueError("code and sequence are single bytes")
    return struct.pack("<BBBBI", MAGIC, code, sequence, 0, HEADER_LEN + len(body)) + body


# The three commands of a capture, byte for byte as the vendor's driver sends them.
CMD_CHECK_FINGER = build_command(CODE_CHECK_FINGER, 0x01)
CMD_PRECAPTURE = build_command(CODE_PRECAPTURE, 0x03, bytes([0x00, 0x04, 0x00, 0x00]))
CMD_CAPTURE = build_command(
    CODE_CAPTURE,
    0x04,
    bytes([0x02]) + bytes(19) + struct.pack("<I", 0x20),
)


@dataclass(frozen=True)
class Header:
    code: int
    sequence: int
    length: int


def parse_header(data: bytes) -> Header:
    """The 8-byte header of any message; ProtocolError if it is not one."""
    if len(data) < HEADER_LEN:
        raise ProtocolError(f"NB-1010 message too short ({len(data)} bytes): replug the scanner and retry.")
    magic, code, sequence, _zero, length = struct.unpack_from("<BBBBI", data)
    if magic != MAGIC:
        raise ProtocolError(
            f"NB-1010 message starts with {magic:#04x}, not 0x80: replug the scanner and retry."
        )
    if length != len(data):
        raise ProtocolError(
            f"NB-1010 message says {length} bytes but {len(data)} arrived: replug the scanner and retry."
        )
    return Header(code=code, sequence=sequence, length=length)


def parse_reply(data: bytes, *, sequence: int) -> Header:
    """Check a 16-byte reply to the command sent with ``sequence``."""
    if len(data) != REPLY_LEN:
        raise ProtocolError(f"NB-1010 reply of {len(data)} bytes, expected {REPLY_LEN}: replug the scanner.")
    header = parse_header(data)
    if header.sequence != sequence:
        raise ProtocolError(
            f"NB-1010 reply to command {header.sequence}, expected {sequence}: replug the scanner and retry."
        )
    return header


def finger_signal(reply: bytes) -> int:
    """The finger signal (0-255) from the reply to CMD_CHECK_FINGER."""
    header = parse_reply(reply, sequence=CMD_CHECK_FINGER[2])
    if header.code != CODE_CHECK_FINGER_REPLY:
        raise ProtocolError(
            f"NB-1010 answered finger detect with code {header.code:#04x}: replug the scanner."
        )
    return reply[FINGER_SIGNAL_OFFSET]


def finger_present(reply: bytes) -> bool:
    """True when the finger-detect reply says a finger lies on the sensor."""
    return finger_signal(reply) > FINGER_THRESHOLD


def check_ack(reply: bytes, *, command: bytes) -> None:
    """Check the acknowledgement of ``command`` (pre-capture or capture)."""
    header = parse_reply(reply, sequence=command[2])
    if header.code != CODE_ACK:
        raise ProtocolError(
            f"NB-1010 answered command {command[1]:#04x} with code {header.code:#04x}: replug the scanner."
        )


@dataclass(frozen=True)
class Partial:
    """Two scan lines of the frame: ``first_line`` is the index of the upper one."""

    first_line: int
    pixels: bytes  # LINES_PER_PARTIAL * FRAME_WIDTH bytes


def parse_partial(data: bytes) -> Partial:
    """One 540-byte frame transfer: header checked, the two scan lines returned."""
    if len(data) != PARTIAL_LEN:
        raise ProtocolError(
            f"NB-1010 image block of {len(data)} bytes, expected {PARTIAL_LEN}: replug the scanner and retry."
        )
    header = parse_header(data)
    if header.code != CODE_PARTIAL:
        raise ProtocolError(
            f"NB-1010 image block with code {header.code:#04x}: replug the scanner and retry."
        )
    last_line, width = struct.unpack_from("<II", data, 16)
    if width != FRAME_WIDTH:
        raise ProtocolError(
            f"NB-1010 image line of {width} pixels, expected {FRAME_WIDTH}: unsupported sensor."
        )
    first_line = last_line - (LINES_PER_PARTIAL - 1)
    if first_line < 0 or last_line >= FRAME_HEIGHT or first_line % LINES_PER_PARTIAL:
        raise ProtocolError(f"NB-1010 image block for line {last_line} is out of the frame: retry.")
    return Partial(first_line, bytes(data[PARTIAL_HEADER_LEN : PARTIAL_HEADER_LEN + PARTIAL_PIXELS]))


class FrameAssembler:
    """Collects partials into a 256 x 180 frame; refuses duplicates and gaps."""

    def __init__(self) -> None:
        self._frame = np.zeros((FRAME_HEIGHT, FRAME_WIDTH), dtype=np.uint8)
        self._seen: set[int] = set()

    @property
    def received(self) -> int:
        return len(self._seen)

    @property
    def complete(self) -> bool:
        return len(self._seen) == PARTIAL_COUNT

    def add(self, data: bytes) -> Partial:
        partial = parse_partial(data)
        if partial.first_line in self._seen:
            raise ProtocolError(f"NB-1010 sent line {partial.first_line} twice: retry the capture.")
        self._seen.add(partial.first_line)
        lines = np.frombuffer(partial.pixels, dtype=np.uint8).reshape(LINES_PER_PARTIAL, FRAME_WIDTH)
        self._frame[partial.first_line : partial.first_line + LINES_PER_PARTIAL] = lines
        return partial

    def frame(self) -> GreyImage:
        if not self.complete:
            raise ProtocolError(
                f"NB-1010 frame incomplete ({self.received} of {PARTIAL_COUNT} blocks): retry the capture."
            )
        return self._frame.copy()


def decode_frame(blocks: list[bytes]) -> GreyImage:
    """The frame from its 90 transfers, in any order."""
    assembler = FrameAssembler()
    for block in blocks:
        assembler.add(block)
    return assembler.frame()


def build_partial(first_line: int, pixels: bytes) -> bytes:
    """The inverse of ``parse_partial`` (for tests and a future simulator)."""
    if len(pixels) != PARTIAL_PIXELS:
        raise ValueError(f"a partial carries {PARTIAL_PIXELS} pixels")
    header = struct.pack("<BBBBI", MAGIC, CODE_PARTIAL, 0, 0, PARTIAL_LEN)
    header += bytes([0, 0, 0, 0, 1, 0, 0, 0])
    header += struct.pack("<II", first_line + LINES_PER_PARTIAL - 1, FRAME_WIDTH) + b"\x01"
    return header + pixels + bytes(PARTIAL_LEN - PARTIAL_HEADER_LEN - PARTIAL_PIXELS)
