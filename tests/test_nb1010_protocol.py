"""NB-1010-U protocol: pure functions over the bytes of the real recording."""

from __future__ import annotations

import contextlib
import hashlib
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.errors import ProtocolError
from drivers.nb1010 import protocol as p
from tests.nb1010_replay import EXPECTED_SHA256, load_transfers

TRANSFERS = load_transfers()
OUT = [t.data for t in TRANSFERS if t.endpoint == 0x02]
REPLIES = [t.data for t in TRANSFERS if t.endpoint == 0x83 and len(t.data) == p.REPLY_LEN]
BLOCKS = [t.data for t in TRANSFERS if len(t.data) == p.PARTIAL_LEN]


def test_recording_shape() -> None:
    assert len(OUT) == 3 and len(REPLIES) == 3 and len(BLOCKS) == p.PARTIAL_COUNT == 90


def test_commands_are_byte_exact_with_the_vendor_driver() -> None:
    assert [p.CMD_CHECK_FINGER, p.CMD_PRECAPTURE, p.CMD_CAPTURE] == OUT
    assert p.parse_header(p.CMD_CAPTURE) == p.Header(code=p.CODE_CAPTURE, sequence=4, length=32)


def test_finger_detect_reply() -> None:
    reply = REPLIES[0]
    assert p.finger_signal(reply) == 0xF7
    assert p.finger_present(reply)
    lifted = bytearray(reply)
    lifted[p.FINGER_SIGNAL_OFFSET] = p.FINGER_THRESHOLD
    assert not p.finger_present(bytes(lifted))
    lifted[p.FINGER_SIGNAL_OFFSET] = p.FINGER_THRESHOLD + 1
    assert p.finger_present(bytes(lifted))


def test_acks() -> None:
    p.check_ack(REPLIES[1], command=p.CMD_PRECAPTURE)
    p.check_ack(REPLIES[2], command=p.CMD_CAPTURE)
    with pytest.raises(ProtocolError, match="reply to command 3, expected 4"):
        p.check_ack(REPLIES[1], command=p.CMD_CAPTURE)
    with pytest.raises(ProtocolError, match="answered finger detect"):
        p.finger_signal(bytes([0x80, 0x20]) + REPLIES[0][2:])


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b[:-1], "539 bytes"),
        (lambda b: b"\x81" + b[1:], "starts with 0x81"),
        (lambda b: b[:1] + b"\x20" + b[2:], "code 0x20"),
        (lambda b: b[:20] + (255).to_bytes(4, "little") + b[24:], "255 pixels"),
        (lambda b: b[:16] + (181).to_bytes(4, "little") + b[20:], "out of the frame"),
        (lambda b: b[:16] + (2).to_bytes(4, "little") + b[20:], "out of the frame"),
        (lambda b: b[:4] + (541).to_bytes(4, "little") + b[8:], "says 541 bytes"),
    ],
)
def test_bad_blocks_are_protocol_errors(mutate: object, message: str) -> None:
    assert callable(mutate)
    with pytest.raises(ProtocolError, match=message):
        p.parse_partial(mutate(BLOCKS[10]))


def test_frame_from_recording_matches_expected_hash_in_any_order() -> None:
    frame = p.decode_frame(BLOCKS)
    assert frame.shape == (180, 256) and frame.dtype == np.uint8
    assert hashlib.sha256(frame.tobytes()).hexdigest() == EXPECTED_SHA256
    shuffled = list(BLOCKS)
    random.Random(4).shuffle(shuffled)
    assert np.array_equal(p.decode_frame(shuffled), frame)
    # the first block carries lines 0 and 1, byte for byte after its 25-byte header
    assert frame[0:2].tobytes() == BLOCKS[0][25:537]


def test_duplicate_and_missing_blocks() -> None:
    with pytest.raises(ProtocolError, match="twice"):
        p.decode_frame([*BLOCKS[:5], BLOCKS[3]])
    with pytest.raises(ProtocolError, match="89 of 90"):
        p.decode_frame(BLOCKS[:-1])


def test_build_partial_round_trips_and_matches_recorded_header() -> None:
    block = BLOCKS[7]
    partial = p.parse_partial(block)
    assert partial.first_line == 14
    assert p.build_partial(partial.first_line, partial.pixels) == block


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_parsers_raise_only_protocol_error(data: bytes) -> None:
    for parse in (p.parse_partial, p.finger_signal, lambda d: p.check_ack(d, command=p.CMD_CAPTURE)):
        with contextlib.suppress(ProtocolError):
            parse(data)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 89), st.integers(0, 539), st.integers(1, 255))
def test_byte_flips_break_the_header_or_change_exactly_that_pixel(index: int, offset: int, xor: int) -> None:
    block = bytearray(BLOCKS[index])
    block[offset] ^= xor
    checked = {0, 1, 4, 5, 6, 7, 20, 21, 22, 23}  # magic, code, length, line width
    if offset in checked:
        with pytest.raises(ProtocolError):
            p.parse_partial(bytes(block))
        return
    if 16 <= offset < 20:  # the line index: another valid line, or out of the frame
        return
    partial = p.parse_partial(bytes(block))
    original = p.parse_partial(BLOCKS[index])
    diff = [i for i in range(512) if partial.pixels[i] != original.pixels[i]]
    assert diff == ([offset - 25] if 25 <= offset < 537 else [])
