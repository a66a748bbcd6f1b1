"""R30x fault handling over the pty: each fault ends in its typed error, and the next command works."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers.errors import DeviceReportedError, DeviceTimeout, DeviceUnplugged, ProtocolError
from drivers.r30x import protocol as p
from drivers.r30x.driver import R30xScanner
from drivers.r30x.opener import open_serial
from drivers.r30x.sensor_image import load_sensor_image, quantise
from drivers.r30x.simulator import R30xSimulator
from drivers.url import parse_url

FINGER = Path(__file__).parent / "fixtures" / "r30x" / "elan.png"


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[R30xSimulator]:
    simulator = R30xSimulator(image=FINGER, library_dir=tmp_path / "library").start()
    simulator.link(tmp_path / "scanner")
    yield simulator
    simulator.stop()


@pytest.fixture
def scanner(sim: R30xSimulator, tmp_path: Path) -> Iterator[R30xScanner]:
    device = open_serial(parse_url(f"serial://{tmp_path / 'scanner'}?timeout=0.3"), trace=None)
    yield device
    device.close()


def works(scanner: R30xScanner) -> bool:
    return scanner.read_sys_params().packet_size == 128 and scanner.template_count() == 0


def test_unsolicited_garbage_is_discarded(sim: R30xSimulator, scanner: R30xScanner) -> None:
    sim.inject_garbage(b"\x00\xff\xef\x01\x13garbage")
    assert works(scanner)


def test_garbage_before_an_answer_is_skipped(sim: R30xSimulator, scanner: R30xScanner) -> None:
    sim.inject_garbage(b"\x00\x55\xaa noise \xef", before_next_answer=True)
    assert scanner.template_count() == 0
    assert works(scanner)


def test_false_header_in_garbage_is_a_protocol_error_then_recovery(
    sim: R30xSimulator, scanner: R30xScanner
) -> None:
    fake = b"\xef\x01\xff\xff\xff\xff\x07\x00\x03\x00\x99\x99"  # a well-formed header, bad checksum
    sim.inject_garbage(fake, before_next_answer=True)
    with pytest.raises(ProtocolError, match="Checksum"):
        scanner.template_count()
    assert works(scanner)


def test_corrupt_checksum_then_recovery(sim: R30xSimulator, scanner: R30xScanner) -> None:
    sim.corrupt_next_checksum()
    with pytest.raises(ProtocolError, match="Checksum"):
        scanner.read_sys_params()
    assert works(scanner)


def test_corrupt_checksum_during_image_upload(sim: R30xSimulator, scanner: R30xScanner) -> None:
    assert scanner.gen_img()
    sent = sim.responses_sent
    sim.wait_for(lambda: sim.responses_sent == sent)
    sim.corrupt_next_checksum()
    with pytest.raises(ProtocolError):
        scanner.up_image()  # the acknowledge is corrupted
    image = scanner.capture(timeout=1.0)
    assert np.array_equal(image.pixels, quantise(load_sensor_image(FINGER)))


def test_dropped_bytes_garble_the_answer_then_recovery(sim: R30xSimulator, scanner: R30xScanner) -> None:
    sim.drop_next_bytes(3)
    with pytest.raises(ProtocolError, match="unreadable"):
        scanner.template_count()
    assert works(scanner)


def test_delay_times_out_then_recovery(sim: R30xSimulator, scanner: R30xScanner) -> None:
    sim.set_delay(0.6)
    before = sim.responses_sent
    with pytest.raises(DeviceTimeout, match="did not answer"):
        scanner.template_count()
    sim.set_delay(0)
    # the late answer arrives after the driver gave up; the next command must not take it for its own
    assert sim.wait_for(lambda: sim.responses_sent > before, timeout=3)
    assert scanner.read_sys_params().packet_size == 128


def test_unplug_then_replug(sim: R30xSimulator, scanner: R30xScanner) -> None:
    sim.unplug()
    with pytest.raises(DeviceUnplugged, match="reconnect"):
        scanner.template_count()
    with pytest.raises(DeviceUnplugged, match="reconnect"):
        scanner.template_count()  # still unplugged: the link is gone, the driver cannot reopen it
    sim.replug()
    assert works(scanner)


def test_unplug_during_image_upload(sim: R30xSimulator, scanner: R30xScanner) -> None:
    def pull_cable(done: int, total: int) -> None:
        if done == 100:
            sim.unplug()

    with pytest.raises(DeviceUnplugged):
        scanner.capture(timeout=1.0, progress=pull_cable)
    sim.replug()
    image = scanner.capture(timeout=1.0)
    assert np.array_equal(image.pixels, quantise(load_sensor_image(FINGER)))


def test_module_reports_receive_error_for_a_corrupt_command(sim: R30xSimulator, scanner: R30xScanner) -> None:
    transport = scanner._ensure_open()
    bad = bytearray(p.build_command(p.Instruction.TEMPLATE_NUM))
    bad[-1] ^= 1
    transport.write(bytes(bad))
    packet = scanner._read_packet(transport, 1.0)
    assert packet.type == p.PacketType.ACK and packet.payload == b"\x01"
    assert works(scanner)


def test_wrong_address_is_ignored_by_the_module(sim: R30xSimulator, tmp_path: Path) -> None:
    with pytest.raises(DeviceTimeout):
        open_serial(parse_url(f"serial://{tmp_path / 'scanner'}?address=0x12345678&timeout=0.2"), trace=None)


@given(garbage=st.binary(min_size=1, max_size=40))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_garbage_before_an_answer_ends_typed_and_recovers(
    sim: R30xSimulator, scanner: R30xScanner, garbage: bytes
) -> None:
    sim.inject_garbage(garbage, before_next_answer=True)
    try:
        assert scanner.template_count() == 0
    except (ProtocolError, DeviceTimeout):
        pass
    except DeviceReportedError as exc:  # garbage that parses as a whole ack packet with an error code
        assert exc.status != 0
    assert works(scanner)


def test_scanner_at_another_baud_then_reconnect_at_its_rate(tmp_path: Path) -> None:
    with R30xSimulator(baud=115200, library_dir=tmp_path / "lib") as sim:
        link = sim.link(tmp_path / "scanner")
        with pytest.raises(ProtocolError, match="baud rate"):
            open_serial(parse_url(f"serial://{link}?baud=57600&maxbaud=0&timeout=0.3"), trace=None)
        scanner = open_serial(parse_url(f"serial://{link}?baud=115200&timeout=0.3"), trace=None)
        try:
            assert scanner.read_sys_params().baud == 115200
        finally:
            scanner.close()
        auto = open_serial(parse_url(f"serial://{link}?baud=auto&timeout=0.3"), trace=None)
        try:
            assert auto.read_sys_params().baud == 115200 and auto.template_count() == 0
        finally:
            auto.close()


def test_baud_change_moves_the_module_and_the_driver(
    sim: R30xSimulator, scanner: R30xScanner, tmp_path: Path
) -> None:
    scanner.set_baud(115200)
    assert sim.baud == 115200 and works(scanner)
    scanner.close()
    with pytest.raises(ProtocolError, match="baud rate"):  # the old rate no longer reaches it
        open_serial(
            parse_url(f"serial://{tmp_path / 'scanner'}?baud=57600&maxbaud=0&timeout=0.3"), trace=None
        )
    again = open_serial(parse_url(f"serial://{tmp_path / 'scanner'}?baud=57600&timeout=0.3"), trace=None)
    try:  # without maxbaud=0 the driver remembers where it left the module and opens there at once
        assert again.baud == 115200 and works(again)
    finally:
        again.close()
