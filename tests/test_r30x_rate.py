"""The R30x at 115,200 baud: raised after the handshake, fallbacks, the rate remembered, progress."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.errors import DeviceError, DeviceTimeout
from drivers.r30x import protocol as p
from drivers.r30x import rates
from drivers.r30x.driver import R30xScanner
from drivers.r30x.opener import open_serial
from drivers.r30x.simulator import R30xSimulator
from drivers.transport.base import Transport
from drivers.transport.serial import SerialTransport
from drivers.url import parse_url


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[R30xSimulator]:
    simulator = R30xSimulator(finger_auto=True, library_dir=tmp_path / "library").start()
    yield simulator
    simulator.stop()


@pytest.fixture(autouse=True)
def no_rate_file() -> Iterator[None]:
    rates._rates.clear()  # pty names are reused from test to test
    yield
    rates.use_file(None)


def test_the_driver_raises_the_module_to_115200_and_the_upload_is_intact(sim: R30xSimulator) -> None:
    assert sim.baud == 57600
    scanner = open_serial(parse_url(f"serial://{sim.port}?baud=57600&timeout=1"), trace=None)
    try:
        assert sim.baud == 115200 and scanner.baud == 115200 and rates.recall(sim.port) == 115200
        assert scanner.read_sys_params().baud == 115200 and "baud_note" not in scanner.info().details
        seen: list[tuple[int, int]] = []
        image = scanner.capture(timeout=2.0, progress=lambda done, total: seen.append((done, total)))
        assert image.pixels.shape == (288, 256)
        total = p.IMAGE_BYTES // 128
        assert [done for done, _ in seen] == list(range(1, total + 1)) and {t for _, t in seen} == {total}
    finally:
        scanner.close()


def test_the_new_rate_applies_from_the_command_after_the_acknowledgement(sim: R30xSimulator) -> None:
    transport = SerialTransport(sim.port, 57600)
    try:
        parser = p.StreamParser()

        def ask(command: bytes) -> p.Packet | None:
            transport.flush_input()
            parser.clear()
            transport.write(command)
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline:
                parser.feed(transport.read(64, 0.05))
                try:
                    packet = parser.next_packet()
                except Exception:
                    return None
                if packet is not None:
                    return packet
            return None

        ack = ask(p.build_command(p.Instruction.SET_SYS_PARA, bytes([p.SysParam.BAUD, 12])))
        assert ack is not None and ack.payload[0] == p.OK  # answered at the old rate
        assert sim.baud == 115200
        assert ask(p.build_command(p.Instruction.HANDSHAKE)) is None  # the old rate: garbled
        transport.set_baud(115200)
        answer = ask(p.build_command(p.Instruction.HANDSHAKE))
        assert answer is not None and answer.payload[0] == p.OK
    finally:
        transport.close()


def test_a_module_that_refuses_the_rate_stays_at_its_own(tmp_path: Path) -> None:
    with R30xSimulator(finger_auto=True, max_baud=57600, library_dir=tmp_path / "lib") as sim:
        scanner = open_serial(parse_url(f"serial://{sim.port}?timeout=1"), trace=None)
        try:
            assert sim.baud == 57600 == scanner.baud and rates.recall(sim.port) == 57600
            assert "refused" in scanner.info().details["baud_note"]
            assert scanner.capture(timeout=2.0).pixels.shape == (288, 256)
        finally:
            scanner.close()


class PickyAdapter(SerialTransport):
    """A USB-serial adapter that cannot do 115,200 baud (tcsetattr fails for it)."""

    def set_baud(self, baud: int) -> None:
        if baud > 57600:
            raise DeviceError(f"the adapter does not support {baud} baud")
        super().set_baud(baud)


class LyingAdapter(SerialTransport):
    """An adapter that accepts 115,200 but puts the line at 9,600: the module is then out of reach."""

    def set_baud(self, baud: int) -> None:
        super().set_baud(9600 if baud == 115200 else baud)


def test_an_adapter_that_refuses_the_rate_leaves_the_module_alone(sim: R30xSimulator) -> None:
    def factory(rate: int) -> Transport:
        return PickyAdapter(sim.port, rate)

    scanner = R30xScanner(factory, url="test", packet_timeout=1.0, max_baud=115200)
    try:
        scanner.connect()
        assert sim.baud == 57600 == scanner.baud and "adapter refused" in scanner.rate_note
        assert scanner.template_count() == 0
    finally:
        scanner.close()


def test_a_rate_that_cannot_be_reached_is_reported_clearly(sim: R30xSimulator) -> None:
    def factory(rate: int) -> Transport:
        return LyingAdapter(sim.port, rate)

    scanner = R30xScanner(factory, url="test", packet_timeout=0.3, max_baud=115200)
    try:
        with pytest.raises(DeviceTimeout, match="after a baud-rate change") as info:
            scanner.connect()
        assert info.value.code == "device.timeout.baud"
    finally:
        scanner.close()


def test_the_rate_is_remembered_in_the_station_file_across_processes(
    sim: R30xSimulator, tmp_path: Path
) -> None:
    path = tmp_path / "device-rates.json"
    rates.use_file(path)
    open_serial(parse_url(f"serial://{sim.port}?timeout=1"), trace=None).close()
    assert json.loads(path.read_text()) == {sim.port: 115200}
    rates._rates.clear()  # a new process: it knows only the file
    rates.use_file(path)
    assert rates.recall(sim.port) == 115200
    started = time.monotonic()
    scanner = open_serial(parse_url(f"serial://{sim.port}?baud=57600&timeout=1"), trace=None)
    try:  # opened straight at 115200: no timeout spent guessing at 57600 first
        assert scanner.baud == 115200 and time.monotonic() - started < 0.9
        assert scanner.template_count() == 0
    finally:
        scanner.close()


def test_a_damaged_rate_file_is_only_a_wrong_guess(sim: R30xSimulator, tmp_path: Path) -> None:
    path = tmp_path / "device-rates.json"
    path.write_text("{not json")
    rates.use_file(path)
    scanner = open_serial(parse_url(f"serial://{sim.port}?timeout=1"), trace=None)
    try:
        assert scanner.baud == 115200 and json.loads(path.read_text()) == {sim.port: 115200}
    finally:
        scanner.close()
