"""R30x/ZFM packet framing, instruction codes and confirmation messages, as pure functions over bytes.

Wire format of every packet (big-endian)::

    EF 01 | address (4) | packet id (1) | length (2) | payload (length - 2) | checksum (2)

``length`` counts the payload plus the two checksum bytes; the checksum is the 16-bit sum of the
packet id, both length bytes and every payload byte. Command packets (id 0x01) carry an instruction
code and its parameters; the module answers with an acknowledge packet (id 0x07) whose first payload
byte is a confirmation code; bulk data (images, templates) travels in data packets (0x02) ended by an
end-of-data packet (0x08). Nothing here touches a port: the driver and the simulator share it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import numpy.typing as npt

from drivers.errors import ProtocolError

HEADER = b"\xef\x01"
HEADER_LEN = 9  # EF 01, address, packet id, length
MIN_LENGTH = 2  # a packet carries at least its checksum
MAX_LENGTH = 256 + 2  # the largest data packet (256 bytes) plus checksum
DEFAULT_ADDRESS = 0xFFFFFFFF
_RETRY = "Press Retry; if it repeats, replace the cable."  # what a person does about garbled bytes

IMAGE_WIDTH = 256
IMAGE_HEIGHT = 288
IMAGE_BYTES = IMAGE_WIDTH * IMAGE_HEIGHT // 2  # 4 bits per pixel: 36,864 bytes

PACKET_SIZES = (32, 64, 128, 256)  # system parameter "data packet size" codes 0..3
BAUD_UNIT = 9600  # baud rate = N * 9600, N in 1..12
CHAR_BUFFER_SIZE = 512  # bytes in one character file / template on the modules we target


class PacketType(IntEnum):
    COMMAND = 0x01
    DATA = 0x02
    ACK = 0x07
    END_DATA = 0x08


class Instruction(IntEnum):
    GEN_IMG = 0x01
    IMG2TZ = 0x02
    MATCH = 0x03
    SEARCH = 0x04
    REG_MODEL = 0x05
    STORE = 0x06
    LOAD_CHAR = 0x07
    UP_CHAR = 0x08
    DOWN_CHAR = 0x09
    UP_IMAGE = 0x0A
    DOWN_IMAGE = 0x0B
    DELETE_CHAR = 0x0C
    EMPTY = 0x0D
    SET_SYS_PARA = 0x0E
    READ_SYS_PARA = 0x0F
    SET_PWD = 0x12
    VFY_PWD = 0x13
    GET_RANDOM_CODE = 0x14
    SET_ADDR = 0x15
    TEMPLATE_NUM = 0x1D
    READ_INDEX_TABLE = 0x1F
    AURA_LED_CONFIG = 0x35
    HANDSHAKE = 0x40


class SysParam(IntEnum):
    """Parameter numbers of SetSysPara."""

    BAUD = 4
    SECURITY_LEVEL = 5
    PACKET_SIZE = 6


class LedMode(IntEnum):
    """R503 ring-LED control codes (AuraLedConfig)."""

    BREATHING = 1
    FLASHING = 2
    ON = 3
    OFF = 4
    GRADUAL_ON = 5
    GRADUAL_OFF = 6


class LedColour(IntEnum):
    RED = 1
    BLUE = 2
    PURPLE = 3


OK = 0x00
NO_FINGER = 0x02
NO_MATCH = 0x08
NOT_FOUND = 0x09

# Confirmation codes from the ZFM/R30x/R503 user manuals, worded for the person at the counter.
CONFIRMATION_MESSAGES: dict[int, str] = {
    0x00: "Command completed.",
    0x01: "The scanner could not read the command (receive error): press Retry.",
    0x02: "No finger on the scanner: place a finger on the glass.",
    0x03: "The scanner could not take the image: place the finger again.",
    0x04: "The image is too dry or too light: moisten the finger slightly and try again.",
    0x05: "The image is too wet or too dark: dry the finger and try again.",
    0x06: "The image is too messy to extract features: clean the glass and place the finger again.",
    0x07: "Too few features in the image: press the finger flat and cover more of the glass.",
    0x08: "The fingers do not match.",
    0x09: "No matching finger was found in the scanner's library.",
    0x0A: "The two captures could not be combined into one template: enroll the finger again.",
    0x0B: "The template number is outside the scanner's library.",
    0x0C: "The stored template could not be read or is invalid: enroll that finger again.",
    0x0D: "The template upload failed: press Retry.",
    0x0E: "The scanner could not receive the following data packets: press Retry.",
    0x0F: "The image upload failed: press Retry.",
    0x10: "The template could not be deleted: press Retry.",
    0x11: "The scanner's library could not be cleared: press Retry.",
    0x12: "The scanner could not enter low-power mode.",
    0x13: "Wrong scanner password: check the password in the device URL.",
    0x14: "The scanner could not reset: unplug it and plug it in again.",
    0x15: "No valid image in the scanner's buffer: capture the finger again.",
    0x16: "The scanner's online upgrade failed.",
    0x17: "The finger did not move between captures: lift it and place it again.",
    0x18: "The scanner could not write its flash memory: the module may need replacing.",
    0x19: "The scanner reported an undefined error: press Retry.",
    0x1A: "Invalid register number in a system-parameter command.",
    0x1B: "Invalid register value in a system-parameter command.",
    0x1C: "Wrong notepad page number.",
    0x1D: "The scanner could not operate its communication port.",
    0x1E: "Automatic enrollment failed: enroll the finger again.",
    0x1F: "The scanner's fingerprint library is full: delete templates first.",
    0x20: "Wrong scanner address: check the address in the device URL.",
    0x21: "The scanner password must be verified first.",
    0x22: "The template buffer is empty.",
    0x24: "The scanner's fingerprint library is empty.",
    0x26: "The scanner timed out waiting for a finger.",
    0x27: "This fingerprint is already enrolled on the scanner.",
    0x28: "The templates are associated with each other.",
    0x29: "The sensor failed its hardware check: the module may need replacing.",
    0xFC: "The scanner does not support this command.",
    0xFD: "The scanner reported a hardware error: unplug it and plug it in again.",
    0xFE: "The scanner failed to execute the command: press Retry.",
}


def confirmation_message(code: int) -> str:
    """An English message for any confirmation code (unknown codes included)."""
    message = CONFIRMATION_MESSAGES.get(code)
    if message is not None:
        return message
    return f"The scanner answered with unknown code {code:#04x}: press Retry; if it repeats, note the code."


def checksum(packet_type: int, payload: bytes) -> int:
    """16-bit sum of packet id, length bytes and payload."""
    length = len(payload) + 2
    return (packet_type + (length >> 8) + (length & 0xFF) + sum(payload)) & 0xFFFF


def build_packet(packet_type: int, payload: bytes, address: int = DEFAULT_ADDRESS) -> bytes:
    """Frame ``payload`` as one packet."""
    if not 0 <= address <= 0xFFFFFFFF:
        raise ValueError(f"address {address:#x} does not fit in 32 bits")
    if len(payload) + 2 > 0xFFFF:
        raise ValueError("payload too long")
    length = len(payload) + 2
    return (
        HEADER
        + struct.pack(">IBH", address, packet_type, length)
        + payload
        + struct.pack(">H", checksum(packet_type, payload))
    )


def build_command(instruction: int, params: bytes = b"", address: int = DEFAULT_ADDRESS) -> bytes:
    return build_packet(PacketType.COMMAND, bytes([instruction]) + params, address)


def build_ack(code: int, data: bytes = b"", address: int = DEFAULT_ADDRESS) -> bytes:
    return build_packet(PacketType.ACK, bytes([code]) + data, address)


@dataclass(frozen=True)
class Packet:
    address: int
    type: int
    payload: bytes


def parse_header(header: bytes) -> tuple[int, int, int]:
    """(address, packet id, length) of a 9-byte header; ProtocolError when it is not one."""
    if len(header) != HEADER_LEN or header[:2] != HEADER:
        raise ProtocolError(
            f"Bad packet header {header[:HEADER_LEN].hex(' ')}: expected EF 01. {_RETRY}",
            code="device.r30x.header",
        )
    address, packet_type, length = struct.unpack(">IBH", header[2:])
    if packet_type not in (PacketType.COMMAND, PacketType.DATA, PacketType.ACK, PacketType.END_DATA):
        raise ProtocolError(f"Unknown packet id {packet_type:#04x}. {_RETRY}", code="device.r30x.packet_type")
    if not MIN_LENGTH <= length <= MAX_LENGTH:
        raise ProtocolError(
            f"Packet length {length} is outside {MIN_LENGTH}..{MAX_LENGTH}. {_RETRY}",
            code="device.r30x.length",
        )
    return address, packet_type, length


def parse_body(address: int, packet_type: int, body: bytes) -> Packet:
    """Check the checksum at the end of ``body`` (payload + 2) and return the packet."""
    if len(body) < 2:
        raise ProtocolError(f"Packet body shorter than its checksum. {_RETRY}", code="device.r30x.length")
    payload, received = body[:-2], int.from_bytes(body[-2:], "big")
    expected = checksum(packet_type, payload)
    if received != expected:
        raise ProtocolError(
            f"Checksum mismatch: received {received:#06x}, computed {expected:#06x}. {_RETRY}",
            code="device.r30x.checksum",
        )
    return Packet(address, packet_type, bytes(payload))


def parse_packet(data: bytes) -> Packet:
    """Parse exactly one complete packet."""
    address, packet_type, length = parse_header(data[:HEADER_LEN])
    if len(data) != HEADER_LEN + length:
        raise ProtocolError(
            f"Packet is {len(data)} bytes; its header announces {HEADER_LEN + length}. {_RETRY}",
            code="device.r30x.length",
        )
    return parse_body(address, packet_type, data[HEADER_LEN:])


class StreamParser:
    """Incremental parser over an arbitrary byte stream.

    ``feed`` bytes, then ``next_packet`` returns a complete packet, None while more bytes are needed,
    or raises ProtocolError for a malformed one (after dropping its first byte so that parsing
    resumes on the next ``EF 01``). Bytes before a header are skipped and counted in ``skipped``.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self.skipped = 0

    def feed(self, data: bytes) -> None:
        self._buf += data

    def pending(self) -> int:
        return len(self._buf)

    def clear(self) -> None:
        self._buf.clear()

    def peek(self, n: int) -> bytes:
        """The first ``n`` buffered bytes (after skipping to a header), without consuming them."""
        self._resync()
        return bytes(self._buf[:n])

    def _resync(self) -> None:
        start = self._buf.find(HEADER)
        if start < 0:
            # keep a trailing EF that may begin the next header
            keep = 1 if self._buf[-1:] == HEADER[:1] else 0
            self.skipped += len(self._buf) - keep
            del self._buf[: len(self._buf) - keep]
        elif start > 0:
            self.skipped += start
            del self._buf[:start]

    def next_packet(self) -> Packet | None:
        self._resync()
        if len(self._buf) < HEADER_LEN:
            return None
        try:
            address, packet_type, length = parse_header(bytes(self._buf[:HEADER_LEN]))
        except ProtocolError:
            del self._buf[:1]
            self.skipped += 1
            raise
        if len(self._buf) < HEADER_LEN + length:
            return None
        body = bytes(self._buf[HEADER_LEN : HEADER_LEN + length])
        try:
            packet = parse_body(address, packet_type, body)
        except ProtocolError:
            del self._buf[:1]
            self.skipped += 1
            raise
        del self._buf[: HEADER_LEN + length]
        return packet


# -- system parameters -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SysParams:
    """The 16 bytes of ReadSysPara."""

    status: int
    system_id: int
    library_size: int
    security_level: int
    address: int
    packet_size: int  # bytes: 32, 64, 128 or 256
    baud: int  # bits per second

    def to_bytes(self) -> bytes:
        return struct.pack(
            ">HHHHIHH",
            self.status,
            self.system_id,
            self.library_size,
            self.security_level,
            self.address,
            PACKET_SIZES.index(self.packet_size),
            self.baud // BAUD_UNIT,
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> SysParams:
        if len(data) != 16:
            raise ProtocolError(
                f"System parameters are {len(data)} bytes, expected 16. {_RETRY}",
                code="device.r30x.sys_params",
            )
        status, system_id, size, level, address, size_code, baud_n = struct.unpack(">HHHHIHH", data)
        if size_code >= len(PACKET_SIZES):
            raise ProtocolError(
                f"Unknown packet-size code {size_code}. {_RETRY}", code="device.r30x.sys_params"
            )
        return cls(status, system_id, size, level, address, PACKET_SIZES[size_code], baud_n * BAUD_UNIT)


def packet_size_code(size: int) -> int:
    if size not in PACKET_SIZES:
        raise ValueError(f"packet size {size} is not one of {PACKET_SIZES}")
    return PACKET_SIZES.index(size)


def baud_code(baud: int) -> int:
    if baud % BAUD_UNIT or not 1 <= baud // BAUD_UNIT <= 12:
        raise ValueError(f"baud {baud} is not 9600 x N with N in 1..12")
    return baud // BAUD_UNIT


# -- images ------------------------------------------------------------------------------------------


def unpack_image(data: bytes) -> npt.NDArray[np.uint8]:
    """4-bit packed upload -> 288x256 uint8; the first pixel is the high nibble; 0..15 -> 0..255."""
    if len(data) != IMAGE_BYTES:
        raise ProtocolError(
            f"Image upload is {len(data)} bytes, expected {IMAGE_BYTES}. {_RETRY}", code="device.r30x.image"
        )
    raw = np.frombuffer(data, dtype=np.uint8)
    pixels = np.empty(raw.size * 2, dtype=np.uint8)
    pixels[0::2] = raw >> 4
    pixels[1::2] = raw & 0x0F
    return (pixels * 17).astype(np.uint8).reshape(IMAGE_HEIGHT, IMAGE_WIDTH)


def pack_image(pixels: npt.NDArray[np.uint8]) -> bytes:
    """288x256 uint8 -> the 4-bit wire form (upper 4 bits of each pixel, first pixel high)."""
    if pixels.shape != (IMAGE_HEIGHT, IMAGE_WIDTH):
        raise ValueError(f"image must be {IMAGE_HEIGHT}x{IMAGE_WIDTH}, got {pixels.shape}")
    flat = pixels.astype(np.uint8).reshape(-1) >> 4
    return bytes(((flat[0::2] << 4) | flat[1::2]).astype(np.uint8).tobytes())


def split_data(data: bytes, packet_size: int) -> list[tuple[int, bytes]]:
    """(packet id, chunk) for bulk ``data``: DATA packets then one END_DATA."""
    chunks = [data[i : i + packet_size] for i in range(0, len(data), packet_size)] or [b""]
    return [
        (PacketType.END_DATA if i == len(chunks) - 1 else PacketType.DATA, chunk)
        for i, chunk in enumerate(chunks)
    ]
