"""Helpers for the export tests and bench: a real enrollment sealed into packets stored at central.

The enrollment is the project's example (synthetic prints scored by NFIQ 2, WSQ-encoded) with the
portrait replaced by the kiosk's real token of the astronaut frame (so the eyes are known), the
left little finger an injured exception and, when asked, the right little finger amputated.
Packets are sealed with ``packetformat.packet.seal`` by a station certificate the home's CA issued and
committed through the home's real storage (``open_storage``), as ``central serve`` does at finalise.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from drivers.portrait import make_portrait
from packetformat.packet import parse, seal
from station.enrollment import Enrollment
from station.enrollment.example import write_example
from station.enrollment.files import enrollment_from_json
from station.enrollment.model import FaceCapture, FingerException, FingerExceptionReason, FingerPosition
from sync.central.authority import read_hpke_private_key
from sync.central.database import open_storage
from sync.central.home import CentralHome
from sync.central.storage import StoredPacket
from sync.common.receipt import utc_now_iso
from tests.central_support import Client, hpke_public, make_home, station_client
from tests.face_images import preview_frame


def example_enrollment(directory: Path, *, amputated: bool = True) -> Enrollment:
    path = write_example(directory)
    enrollment = enrollment_from_json(json.loads(path.read_text(encoding="utf-8")), directory, station_id="")
    portrait = make_portrait(preview_frame())
    fingers = dict(enrollment.fingers)
    if amputated:
        fingers[FingerPosition.RIGHT_LITTLE] = FingerException(
            FingerPosition.RIGHT_LITTLE, FingerExceptionReason.AMPUTATED
        )
    return dataclasses.replace(
        enrollment, face=FaceCapture(jpeg=portrait.jpeg, checks=portrait.checks), fingers=fingers
    )


def store_packets(
    home: CentralHome,
    client: Client,
    enrollment: Enrollment,
    count: int = 1,
    *,
    received_at: str | None = None,
) -> list[str]:
    """Seal ``count`` packets of ``enrollment`` from ``client``'s station and store them at central."""
    enrollment = dataclasses.replace(enrollment, station_id=client.station_id)
    document = enrollment.to_document()
    public = hpke_public(home)
    storage = open_storage(home)
    ids = []
    try:
        for _ in range(count):
            sealed = seal(
                document, station_id=client.station_id, identity_key=client.key, recipient_public_key=public
            )
            env = sealed.envelope
            pid = parse(env).header.packet_id
            row = StoredPacket(
                pid,
                client.station_id,
                hashlib.sha256(env).hexdigest(),
                len(env),
                received_at or utc_now_iso(),
                b"receipt",
                client.cert.public_bytes(Encoding.DER),
            )
            storage.commit_packet(row, env)
            ids.append(pid)
    finally:
        storage.close()
    return ids


@pytest.fixture(scope="session")
def export_enrollment(tmp_path_factory: pytest.TempPathFactory) -> Enrollment:
    """The example enrollment (built once per session: scoring nine prints takes seconds)."""
    return example_enrollment(tmp_path_factory.mktemp("export-example"))


@dataclasses.dataclass
class ExportSetup:
    home: CentralHome
    client: Client
    key_path: Path
    key: bytes
    root: Path


def export_setup(root: Path) -> ExportSetup:
    """A central home whose HPKE key was moved out of the home (as ``central init`` tells), a station."""
    home = make_home(root / "central")
    client = station_client(home, root / "station", "uc-lhr-0421-01")
    key_path = root / "backoffice" / "hpke.key"
    key_path.parent.mkdir()
    shutil.move(str(home.backoffice_key), key_path)
    return ExportSetup(home, client, key_path, read_hpke_private_key(key_path), root)
