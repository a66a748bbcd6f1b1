"""The R30x driver against the simulator over a real pty: the whole instruction set."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from drivers.errors import DeviceReportedError, DeviceTimeout
from drivers.r30x import protocol as p
from drivers.r30x.driver import R30xScanner
from drivers.r30x.opener import open_serial
from drivers.r30x.sensor_image import load_sensor_image, quantise, synthetic_print
from drivers.r30x.simulator import R30xSimulator
from drivers.url import open_device, parse_url

FINGER = Path(__file__).parent / "fixtures" / "r30x" / "elan.png"


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[R30xSimulator]:
    simulator = R30xSimulator(image=FINGER, library_dir=tmp_path / "library").start()
    simulator.link(tmp_path / "scanner")
    yield simulator
    simulator.stop()


@pytest.fixture
def scanner(sim: R30xSimulator, tmp_path: Path) -> Iterator[R30xScanner]:
    device = open_device(f"serial://{tmp_path / 'scanner'}?baud=57600&timeout=1")
    assert isinstance(device, R30xScanner)
    yield device
    device.close()


def test_handshake_and_sys_params(scanner: R30xScanner) -> None:
    scanner.handshake()
    params = scanner.read_sys_params()
    assert params.packet_size == 128 and params.baud == 115200  # raised after the handshake
    assert params.address == 0xFFFFFFFF and params.library_size == 300 and params.security_level == 3
    info = scanner.info()
    assert info.kind == "fingerprint" and info.details["packet_size"] == "128"


def test_password_wrong_and_right(tmp_path: Path) -> None:
    with R30xSimulator(password=0x1234, library_dir=tmp_path / "lib") as sim:
        with pytest.raises(DeviceReportedError) as wrong:
            open_serial(parse_url(f"serial://{sim.port}?password=0x1111&timeout=1"), trace=None)
        assert wrong.value.status == 0x13 and "password" in wrong.value.message
        right = open_serial(parse_url(f"serial://{sim.port}?password=0x1234&timeout=1"), trace=None)
        try:
            assert right.verify_password() is True
            assert right.verify_password(0x9999) is False
            assert right.template_count() == 0
        finally:
            right.close()


def test_commands_before_password_are_refused(tmp_path: Path) -> None:
    with R30xSimulator(password=7, library_dir=tmp_path / "lib") as sim:
        link = sim.link(tmp_path / "scanner")
        scanner = open_serial(parse_url(f"serial://{link}?password=7&timeout=1"), trace=None)
        try:
            sim.unplug()
            sim.replug()  # power cycle: the module forgets the verification
            with pytest.raises(DeviceReportedError) as err:
                scanner._drop_transport()
                scanner._transport = scanner._factory(scanner.baud)  # raw reopen, no VfyPwd
                scanner.template_count()
            assert err.value.status == 0x21
            scanner.reconnect()  # the driver's reconnect verifies the password again
            assert scanner.template_count() == 0
        finally:
            scanner.close()


def test_capture_with_progress_is_the_sensor_image(scanner: R30xScanner) -> None:
    progress: list[tuple[int, int]] = []
    image = scanner.capture(timeout=2.0, progress=lambda done, total: progress.append((done, total)))
    assert image.pixels.shape == (288, 256) and image.pixels.dtype == np.uint8 and image.ppi == 500
    assert len(progress) == 288 and progress[0] == (1, 288) and progress[-1] == (288, 288)
    assert np.array_equal(image.pixels, quantise(load_sensor_image(FINGER)))


def test_no_finger_times_out(sim: R30xSimulator, scanner: R30xScanner) -> None:
    sim.lift_finger()
    assert scanner.finger_present() is False
    with pytest.raises(DeviceTimeout, match="No finger"):
        scanner.capture(timeout=0.2)
    sim.place_finger()
    assert scanner.finger_present() is True


@pytest.mark.parametrize("size", [32, 64, 128, 256])
def test_packet_size_change(sim: R30xSimulator, scanner: R30xScanner, size: int) -> None:
    scanner.set_packet_size(size)
    assert scanner.read_sys_params().packet_size == size == sim.packet_size
    progress: list[int] = []
    image = scanner.capture(timeout=2.0, progress=lambda done, total: progress.append(total))
    assert progress[-1] == p.IMAGE_BYTES // size and len(progress) == p.IMAGE_BYTES // size
    assert np.array_equal(image.pixels, quantise(load_sensor_image(FINGER)))


def test_security_level_and_baud(sim: R30xSimulator, scanner: R30xScanner) -> None:
    scanner.set_security_level(5)
    scanner.set_baud(115200)
    params = scanner.read_sys_params()
    assert params.security_level == 5 and params.baud == 115200 == sim.baud
    with pytest.raises(ValueError):
        scanner.set_security_level(9)


def test_invalid_parameter_is_reported(scanner: R30xScanner) -> None:
    with pytest.raises(DeviceReportedError) as err:
        scanner._command(p.Instruction.SET_SYS_PARA, bytes([9, 1]))
    assert err.value.status == 0x1A and err.value.code == "device.reported.0x1a"


def test_enroll_store_search_same_finger_not_another(sim: R30xSimulator, scanner: R30xScanner) -> None:
    assert scanner.gen_img()
    scanner.img2tz(1)
    assert scanner.gen_img()
    scanner.img2tz(2)
    assert scanner.match() > 100
    scanner.reg_model()
    scanner.store(7)
    assert scanner.template_count() == 1 and scanner.read_index_table(0) == [7]

    assert scanner.gen_img()
    scanner.img2tz(1)
    found = scanner.search()
    assert found is not None and found.page == 7 and found.score > 100

    sim.place_finger(synthetic_print(2))
    assert scanner.gen_img()
    scanner.img2tz(1)
    assert scanner.search() is None
    scanner.load_char(7, buffer=2)
    assert scanner.match() == 0


def test_reg_model_refuses_two_different_fingers(sim: R30xSimulator, scanner: R30xScanner) -> None:
    scanner.gen_img()
    scanner.img2tz(1)
    sim.place_finger(synthetic_print(2))
    scanner.gen_img()
    scanner.img2tz(2)
    with pytest.raises(DeviceReportedError) as err:
        scanner.reg_model()
    assert err.value.status == 0x0A


def test_template_upload_is_iso_record(scanner: R30xScanner) -> None:
    scanner.gen_img()
    scanner.img2tz(1)
    template = scanner.up_char(1)
    assert len(template) == p.CHAR_BUFFER_SIZE and template[2:6] == b"FMR\x00"
    scanner.down_char(template, buffer=2)
    assert scanner.match() > 100


def test_blank_image_has_too_few_features(sim: R30xSimulator, scanner: R30xScanner) -> None:
    sim.place_finger(np.full((288, 256), 255, dtype=np.uint8))
    scanner.gen_img()
    with pytest.raises(DeviceReportedError) as err:
        scanner.img2tz(1)
    assert err.value.status == 0x07 and "features" in err.value.message


def test_library_index_delete_empty(sim: R30xSimulator, scanner: R30xScanner) -> None:
    scanner.gen_img()
    scanner.img2tz(1)
    for page in (0, 3, 255, 256, 299):
        scanner.store(page)
    assert scanner.template_count() == 5
    assert scanner.read_index_table(0) == [0, 3, 255]
    assert scanner.read_index_table(1) == [256, 299]
    assert sorted(sim.library()) == [0, 3, 255, 256, 299]
    scanner.delete_char(3)
    assert scanner.read_index_table(0) == [0, 255]
    with pytest.raises(DeviceReportedError) as err:
        scanner.store(300)
    assert err.value.status == 0x0B
    with pytest.raises(DeviceReportedError) as err:
        scanner.load_char(3)
    assert err.value.status == 0x0C
    scanner.empty()
    assert scanner.template_count() == 0 and scanner.read_index_table(0) == []


def test_library_survives_power_cycle(sim: R30xSimulator, scanner: R30xScanner) -> None:
    scanner.gen_img()
    scanner.img2tz(1)
    scanner.store(42)
    sim.unplug()
    sim.replug()
    scanner.reconnect()
    assert scanner.read_index_table(0) == [42]


def test_led_control(sim: R30xSimulator, scanner: R30xScanner) -> None:
    scanner.led_control(p.LedMode.BREATHING, p.LedColour.PURPLE, speed=100, count=3)
    assert sim.led == (1, 100, 3, 3)
    scanner.led_control(p.LedMode.OFF)
    assert sim.led is not None and sim.led[0] == 4


def test_trace_dumps_every_byte(sim: R30xSimulator) -> None:
    out = io.StringIO()
    device = open_device(f"serial://{sim.port}", trace=out)
    try:
        assert isinstance(device, R30xScanner)
        device.template_count()
    finally:
        device.close()
    text = out.getvalue()
    assert "> ef 01 ff ff ff ff 01 00 03 1d 00 21" in text  # TemplateNum
    assert "< ef 01 ff ff ff ff 07 00 05\n" in text and "< 00 00 00 00 0c\n" in text  # count 0
    assert "# close" in text


def test_sim_url_opens_a_real_serial_driver(tmp_path: Path) -> None:
    device = open_device(f"sim://r30x?image={FINGER}")
    assert isinstance(device, R30xScanner)
    try:
        sim = device.simulator
        assert isinstance(sim, R30xSimulator) and sim.port.startswith("/dev/pts/")
        assert device.capture(timeout=2.0).pixels.shape == (288, 256)
        sim.lift_finger()
        assert not device.finger_present()
    finally:
        device.close()
    assert not sim.plugged


def test_sim_url_finger_auto() -> None:
    device = open_device("sim://r30x?finger=auto")
    try:
        assert isinstance(device, R30xScanner)
        assert device.finger_present()
        assert device.capture(timeout=2.0).pixels.std() > 20
    finally:
        device.close()


def test_paced_line_takes_at_least_the_wire_time(sim: R30xSimulator, scanner: R30xScanner) -> None:
    import time

    scanner.set_baud(9600)
    sim.pace_line()
    start = time.monotonic()
    assert scanner.read_sys_params().baud == 9600
    elapsed = time.monotonic() - start
    assert elapsed >= (p.HEADER_LEN + 17 + 2) * 10 / 9600  # 28 bytes at 960 bytes/s: 29 ms


def test_serial_url_with_two_slashes_names_the_same_port(sim: R30xSimulator, tmp_path: Path) -> None:
    device = open_device(f"serial:/{tmp_path / 'scanner'}")  # serial://tmp/... : netloc + path
    try:
        assert isinstance(device, R30xScanner) and device.template_count() == 0
    finally:
        device.close()


def test_sim_url_leaves_nothing_behind_without_close(tmp_path: Path) -> None:
    import subprocess
    import sys

    script = (
        "from drivers.url import open_device\n"
        "d = open_device('sim://r30x?finger=auto')\n"
        "print(d.simulator.library_dir.parent)\n"
        "assert d.finger_present()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).parent.parent,
    )
    assert result.returncode == 0, result.stderr
    workdir = Path(result.stdout.strip())
    assert workdir.name.startswith("r30x-sim-") and not workdir.exists()
