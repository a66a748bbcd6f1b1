"""Interop: pyfingerprint, an independent open-source R30x client, drives the simulator unchanged."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from drivers.r30x.sensor_image import load_sensor_image, quantise, synthetic_print
from drivers.r30x.simulator import R30xSimulator

pyfingerprint = pytest.importorskip("pyfingerprint.pyfingerprint")

FINGER = Path(__file__).parent / "fixtures" / "r30x" / "elan.png"


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[R30xSimulator]:
    simulator = R30xSimulator(image=FINGER, library_dir=tmp_path / "library").start()
    yield simulator
    simulator.stop()


@pytest.fixture
def client(sim: R30xSimulator) -> Iterator[Any]:
    f = pyfingerprint.PyFingerprint(sim.port, 57600, 0xFFFFFFFF, 0x00000000)
    yield f
    del f


def test_verify_password_and_parameters(client: Any) -> None:
    assert client.verifyPassword() is True
    _status, _system_id, capacity, level, address, _size, baud = client.getSystemParameters()
    assert capacity == 300 and level == 3 and address == 0xFFFFFFFF and baud == 6  # 6 x 9600
    assert client.getStorageCapacity() == 300
    assert client.getTemplateCount() == 0


def test_read_and_download_image(sim: R30xSimulator, client: Any, tmp_path: Path) -> None:
    assert client.verifyPassword()
    sim.lift_finger()
    assert client.readImage() is False
    sim.place_finger()
    assert client.readImage() is True
    out = tmp_path / "download.bmp"
    client.downloadImage(str(out))
    with Image.open(out) as image:
        pixels = np.asarray(image.convert("L"))
    assert np.array_equal(pixels, quantise(load_sensor_image(FINGER)))


def test_enroll_store_and_search(sim: R30xSimulator, client: Any) -> None:
    assert client.verifyPassword()
    assert client.readImage()
    client.convertImage(0x01)
    assert client.searchTemplate() == (-1, -1)
    assert client.readImage()
    client.convertImage(0x02)
    assert client.compareCharacteristics() > 100
    assert client.createTemplate() is True
    position = client.storeTemplate()
    assert position == 0 and client.getTemplateCount() == 1
    assert client.getTemplateIndex(0)[0] is True

    assert client.readImage()
    client.convertImage(0x01)
    found, score = client.searchTemplate()
    assert found == 0 and score > 100

    sim.place_finger(synthetic_print(3))
    assert client.readImage()
    client.convertImage(0x01)
    assert client.searchTemplate() == (-1, -1)

    assert client.deleteTemplate(0) is True
    assert client.getTemplateCount() == 0
    assert client.clearDatabase() is True


def test_characteristics_round_trip(client: Any) -> None:
    assert client.verifyPassword()
    assert client.readImage()
    client.convertImage(0x01)
    characteristics = client.downloadCharacteristics(0x01)
    assert len(characteristics) == 512
    assert client.uploadCharacteristics(0x02, characteristics) is True
    assert client.compareCharacteristics() > 100
