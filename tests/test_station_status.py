"""The station status snapshot (``station.status``) and its renderers: ``station status --json``, the
heartbeat, the doctor; device presence from sysfs without opening anything.

The kiosk's status screen is pinned in ``tests/test_kiosk_status.py``."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from drivers.discovery import presence
from packetformat.packet import seal
from station.cli.core import status_fields
from station.doctor import DoctorContext, check_certificate, check_config, check_disk, check_store
from station.errors import StationError
from station.home import StationHome
from station.session import Station, init_station, open_station
from station.status import (
    CENTRAL_REACHABLE,
    LAST_SYNC_AT,
    SYNC_STATUS,
    certificate_status,
    home_status,
    read_status,
)
from sync.agent.heartbeat import build_heartbeat
from sync.common import wire

NOW = float(int(time.time()))
NOT_AFTER = dt.datetime.fromtimestamp(NOW, dt.UTC).replace(microsecond=0) + dt.timedelta(days=20)


def write_cert(home: StationHome, not_after: dt.datetime = NOT_AFTER) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "st-status-1")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(not_after - dt.timedelta(days=30))
        .not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )
    home.pki.station_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def seal_packets(station: Station, created: list[float]) -> list[str]:
    public, suite = station.central_public_key()
    ids = []
    for at in created:
        sp = seal(
            {"note": "status test"},
            station_id=station.station_id,
            identity_key=station.keys.identity_key(),
            recipient_public_key=public,
            suite=suite,
            created_at=int(at),
        )
        station.store.add_packet(
            sp.packet_id, sp.envelope, hashlib.sha256(sp.envelope).hexdigest(), sp.created_at
        )
        ids.append(sp.packet_id)
    return ids


@pytest.fixture
def home(tmp_path: Path) -> StationHome:
    home = StationHome(tmp_path / "home")
    with init_station(home, "st-status-1", demo=True) as station:
        ids = seal_packets(station, [NOW - 300, NOW - 100, NOW - 50])
        station.store.mark_uploading(ids[1])
        station.store.meta_set(LAST_SYNC_AT, "2026-12-01T10:00:00Z")
        station.store.meta_set(SYNC_STATUS, "offline")
        station.store.meta_set(CENTRAL_REACHABLE, "0")
        station.audit.append("test.status", n=1)
    write_cert(home)
    return home


def test_snapshot_of_a_real_station(home: StationHome) -> None:
    s = read_status(home, now=NOW)
    assert s.station_id == "st-status-1" and s.taken_at == NOW
    q = s.queue
    assert q is not None
    assert dict(q.counts) == {"sealed": 2, "uploading": 1, "acked": 0, "purged": 0} and q.pending == 3
    assert q.oldest_pending_age_s == 300
    assert q.last_sync_at == "2026-12-01T10:00:00Z" and q.sync_status == "offline"
    assert q.last_sync_timestamp == dt.datetime(2026, 12, 1, 10, tzinfo=dt.UTC).timestamp()
    assert q.central_reachable is False
    assert q.audit_seq == 2 and len(q.audit_head) == 64  # station.init + test.status
    assert q.policy_version == 0 and dict(q.outcomes) == {"accepted": 0, "re-enroll": 0, "rejected": 0}
    assert s.provisioned and s.certificate.not_after == NOT_AFTER and s.certificate.problem == ""
    assert s.disk.floor_bytes == 200 * 1024 * 1024 and s.disk.free_bytes > 0
    assert dict(s.devices) == {"scanner": "simulated", "camera": "simulated"}  # the demo's sim:// URLs
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.station_id = "other"  # type: ignore[misc]  # frozen: the test proves assignment is refused


def test_the_renderers_show_the_same_snapshot(home: StationHome) -> None:
    s = read_status(home, now=NOW)
    assert s.queue is not None
    cli = status_fields(s)
    beat = wire.Heartbeat.from_json(build_heartbeat(s).to_json())  # through the wire format's parser
    assert cli["counts"] == beat.counts == dict(s.queue.counts)
    assert cli["oldest_pending_age_s"] == beat.oldest_pending_age_s == 300
    assert cli["last_sync_at"] == beat.last_sync_at == "2026-12-01T10:00:00Z"
    assert cli["audit_seq"] == beat.audit_seq and cli["audit_head"] == beat.audit_head
    assert cli["disk_free_bytes"] == beat.disk_free_bytes == s.disk.free_bytes
    assert beat.cert_not_after == NOT_AFTER.isoformat().replace("+00:00", "Z")
    assert beat.sent_at == wire_time(NOW) and beat.devices == {"scanner": "simulated", "camera": "simulated"}
    assert cli["provisioned"] is True and cli["pending"] == 3 and cli["station_id"] == beat.station_id
    # The doctor judges the same parts.
    ctx = DoctorContext(home=home, now=dt.datetime.fromtimestamp(NOW, dt.UTC))
    check_config(ctx)
    queue = check_store(ctx)
    assert queue.status == "ok" and queue.detail.startswith("3 pending, 0 acked, 0 purged")
    cert = check_certificate(ctx)
    assert cert.status == "ok" and f"valid until {NOT_AFTER:%Y-%m-%d}" in cert.detail
    assert check_disk(ctx).detail.endswith("(floor 200 MB)")


def wire_time(ts: float) -> str:
    from sync.agent.uploader import iso_utc

    return iso_utc(ts)


def test_a_snapshot_without_its_queue(home: StationHome) -> None:
    config = home.load_config()
    s = home_status(home, config, None, None, now=NOW, problem="The queue is locked: try again.")
    assert s.queue is None and s.problem == "The queue is locked: try again." and s.provisioned
    with pytest.raises(StationError) as err:
        status_fields(s)
    assert err.value.code == "status.no_queue" and "try again" in err.value.message
    with pytest.raises(ValueError, match="queue"):
        build_heartbeat(s)


def test_a_damaged_certificate_is_present_but_unread(home: StationHome) -> None:
    home.pki.station_cert.write_bytes(b"-----BEGIN CERTIFICATE-----\nnot a certificate\n")
    cert = certificate_status(home.pki)
    assert cert.present and cert.not_after is None and "provision the station again" in cert.problem
    found = check_certificate(DoctorContext(home=home))
    assert found.status == "fail" and found.detail == cert.problem and "provision again" in found.fix
    home.pki.station_cert.unlink()
    assert not certificate_status(home.pki).present
    assert status_fields(read_status(home))["provisioned"] is False


def test_status_of_an_unreadable_queue_fails_with_its_code(home: StationHome) -> None:
    """``station status`` reports a queue that cannot be opened; it does not invent a snapshot."""
    home.db_path.write_bytes(b"not a database" * 100)
    with pytest.raises(StationError) as err:
        read_status(home)
    assert err.value.code.startswith(("store.", "keys.")) and err.value.message
    with pytest.raises(StationError):
        open_station(home, integrity_check=False)


def fake_usb(sysfs: Path, name: str, vendor: str, product: str) -> None:
    dev = sysfs / "bus" / "usb" / "devices" / name
    dev.mkdir(parents=True)
    (dev / "idVendor").write_text(vendor + "\n")
    (dev / "idProduct").write_text(product + "\n")


def test_presence_reads_the_system_without_opening(tmp_path: Path) -> None:
    sysfs = tmp_path / "sys"
    fake_usb(sysfs, "1-1", "298D", "1010")
    node = tmp_path / "ttyUSB0"
    node.write_text("")
    assert presence("usb://298d:1010", sysfs_root=sysfs) == "ok"
    assert presence("usb://298D:1010", sysfs_root=sysfs) == "ok"
    assert presence("usb://298d:2020", sysfs_root=sysfs) == "missing"
    assert presence("usb://298d:1010", sysfs_root=tmp_path / "no-sysfs") == "missing"
    assert presence(f"serial://{node}?baud=57600") == "ok"
    assert presence(f"camera://{tmp_path / 'video9'}") == "missing"
    assert presence("sim://r30x?finger=auto") == "simulated"
    assert presence("") == "unconfigured"
    assert presence("usb://nonsense") == "unknown" and presence("ftp://x") == "unknown"


def test_devices_in_the_snapshot_follow_the_configuration(home: StationHome, tmp_path: Path) -> None:
    config = home.load_config()
    config.scanner_url = ""
    config.camera_url = f"camera://{tmp_path / 'video7'}"
    s = home_status(home, config, None, None)
    assert dict(s.devices) == {"scanner": "unconfigured", "camera": "missing"}
