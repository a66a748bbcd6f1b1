"""R30x packet framing, checksums, confirmation messages and image packing (pure functions)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.errors import ProtocolError
from drivers.r30x import protocol as p

packet_types = st.sampled_from([int(t) for t in p.PacketType])
payloads = st.binary(min_size=0, max_size=256)
addresses = st.integers(min_value=0, max_value=0xFFFFFFFF)


def test_known_command_bytes() -> None:
    # GenImg to the default address, as printed in every R30x manual
    assert p.build_command(p.Instruction.GEN_IMG).hex(" ") == "ef 01 ff ff ff ff 01 00 03 01 00 05"
    # VfyPwd with password 0
    assert p.build_command(p.Instruction.VFY_PWD, b"\x00\x00\x00\x00").hex(" ") == (
        "ef 01 ff ff ff ff 01 00 07 13 00 00 00 00 00 1b"
    )


@given(packet_types, payloads, addresses)
def test_build_parse_round_trip(packet_type: int, payload: bytes, address: int) -> None:
    raw = p.build_packet(packet_type, payload, address)
    assert len(raw) == p.HEADER_LEN + len(payload) + 2
    packet = p.parse_packet(raw)
    assert (packet.address, packet.type, packet.payload) == (address, packet_type, payload)


@given(packet_types, payloads, st.data())
def test_any_single_byte_corruption_of_payload_or_checksum_is_caught(
    packet_type: int, payload: bytes, data: st.DataObject
) -> None:
    raw = bytearray(p.build_packet(packet_type, payload))
    index = data.draw(st.integers(min_value=p.HEADER_LEN, max_value=len(raw) - 1))
    delta = data.draw(st.integers(min_value=1, max_value=255))
    raw[index] = (raw[index] + delta) & 0xFF
    with pytest.raises(ProtocolError):
        p.parse_packet(bytes(raw))


@given(st.binary(max_size=600), st.lists(st.integers(min_value=1, max_value=64), max_size=40))
@settings(max_examples=300)
def test_stream_parser_on_arbitrary_bytes_raises_only_protocol_error(data: bytes, cuts: list[int]) -> None:
    parser = p.StreamParser()
    pos = 0
    for cut in [*cuts, len(data)]:
        parser.feed(data[pos : pos + cut])
        pos += cut
        for _ in range(len(data) + 2):  # bounded: every call consumes bytes or returns None
            try:
                if parser.next_packet() is None:
                    break
            except ProtocolError:
                continue
    assert parser.pending() <= len(data)


@given(st.binary(max_size=100).filter(lambda b: p.HEADER not in b), payloads)
def test_stream_parser_resynchronises_after_garbage(garbage: bytes, payload: bytes) -> None:
    raw = p.build_ack(0, payload)
    parser = p.StreamParser()
    parser.feed(garbage + raw)
    packet = parser.next_packet()
    assert packet is not None and packet.payload == b"\x00" + payload
    assert parser.skipped == len(garbage)


def test_stream_parser_recovers_after_corrupt_packet() -> None:
    bad = bytearray(p.build_ack(0, b"abc"))
    bad[-1] ^= 0xFF
    good = p.build_ack(0x09, b"\x00\x00\x00\x00")
    parser = p.StreamParser()
    parser.feed(bytes(bad) + good)
    with pytest.raises(ProtocolError, match="Checksum"):
        parser.next_packet()
    packet = parser.next_packet()
    assert packet is not None and packet.payload[0] == 0x09


def test_bad_header_length_and_type() -> None:
    with pytest.raises(ProtocolError):
        p.parse_header(b"\xef\x02" + b"\x00" * 7)
    with pytest.raises(ProtocolError, match="packet id"):
        p.parse_header(b"\xef\x01\xff\xff\xff\xff\x05\x00\x03")
    with pytest.raises(ProtocolError, match="length"):
        p.parse_header(b"\xef\x01\xff\xff\xff\xff\x02\x04\x00")


def test_every_confirmation_code_has_a_message() -> None:
    for code in range(256):
        message = p.confirmation_message(code)
        assert message.endswith(".") and len(message) > 10
    for code in (0x01, 0x02, 0x03, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x13, 0x15, 0x18, 0x1A):
        assert code in p.CONFIRMATION_MESSAGES
    assert "unknown code 0x99" in p.confirmation_message(0x99)


def test_image_pack_unpack_first_pixel_in_high_nibble() -> None:
    data = bytes([0xA5]) + bytes(p.IMAGE_BYTES - 1)
    image = p.unpack_image(data)
    assert image.shape == (288, 256) and image.dtype == np.uint8
    assert image[0, 0] == 0xA * 17 and image[0, 1] == 0x5 * 17
    assert p.pack_image(image) == data


@given(st.integers(min_value=0, max_value=2**32 - 1))
@settings(max_examples=20)
def test_image_round_trip(seed: int) -> None:
    data = np.random.default_rng(seed).integers(0, 256, p.IMAGE_BYTES, dtype=np.uint8).tobytes()
    assert p.pack_image(p.unpack_image(data)) == data


def test_image_wrong_size() -> None:
    with pytest.raises(ProtocolError):
        p.unpack_image(b"\x00" * 100)


def test_sys_params_round_trip_and_codes() -> None:
    params = p.SysParams(0x0004, 0x0009, 1000, 3, 0xFFFFFFFF, 128, 57600)
    raw = params.to_bytes()
    assert raw.hex() == "0004000903e80003ffffffff00020006"
    assert p.SysParams.from_bytes(raw) == params
    assert [p.packet_size_code(s) for s in (32, 64, 128, 256)] == [0, 1, 2, 3]
    assert p.baud_code(115200) == 12
    with pytest.raises(ValueError):
        p.baud_code(56000)


def test_split_data_ends_with_end_packet() -> None:
    parts = p.split_data(bytes(p.IMAGE_BYTES), 128)
    assert len(parts) == 288
    assert all(t == p.PacketType.DATA for t, _ in parts[:-1]) and parts[-1][0] == p.PacketType.END_DATA
