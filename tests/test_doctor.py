"""station doctor: each check reports what is wrong and what to do, and never crashes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from station.doctor import (
    DoctorContext,
    Finding,
    check_certificate,
    check_clock,
    check_config,
    check_disk,
    run_checks,
)
from station.home import StationConfig, StationHome

NOW = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)


def write_cert(home: StationHome, not_before: dt.datetime, not_after: dt.datetime) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "st-1")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )
    home.pki_dir.mkdir(parents=True, exist_ok=True)
    (home.pki_dir / "station.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def test_missing_station_is_a_failure_with_a_fix(tmp_path: Path) -> None:
    f = check_config(DoctorContext(home=StationHome(tmp_path / "none"), now=NOW))
    assert f.status == "fail" and "station provision" in f.fix


def test_config_without_station_id_fails(tmp_path: Path) -> None:
    home = StationHome(tmp_path)
    home.save_config(StationConfig())
    assert check_config(DoctorContext(home=home, now=NOW)).status == "fail"
    home.save_config(StationConfig(station_id="st-1"))
    assert check_config(DoctorContext(home=home, now=NOW)).status == "ok"


def test_certificate_states(tmp_path: Path) -> None:
    home = StationHome(tmp_path)
    ctx = DoctorContext(home=home, now=NOW)
    assert check_certificate(ctx).status == "fail"
    day = dt.timedelta(days=1)
    write_cert(home, NOW - day, NOW + 20 * day)
    assert check_certificate(ctx).status == "ok"
    write_cert(home, NOW - day, NOW + 3 * day)
    f = check_certificate(ctx)
    assert f.status == "warn" and "expires in" in f.detail
    write_cert(home, NOW - 40 * day, NOW - day)
    f = check_certificate(ctx)
    assert f.status == "fail" and "expired" in f.detail and "provision again" in f.fix
    write_cert(home, NOW + day, NOW + 30 * day)
    f = check_certificate(ctx)
    assert f.status == "fail" and "clock" in f.detail


def test_clock_before_build_fails(tmp_path: Path) -> None:
    f = check_clock(DoctorContext(home=StationHome(tmp_path), now=dt.datetime(2020, 1, 1, tzinfo=dt.UTC)))
    assert f.status == "fail" and "timedatectl" in f.fix


def test_disk_floor(tmp_path: Path) -> None:
    home = StationHome(tmp_path)
    ctx = DoctorContext(home=home, now=NOW, config=StationConfig(station_id="s", disk_floor_mb=10**9))
    f = check_disk(ctx)
    assert f.status == "fail" and "below" in f.detail
    ctx.config = StationConfig(station_id="s", disk_floor_mb=0)
    assert check_disk(ctx).status == "ok"


def test_a_crashing_check_becomes_a_failed_finding(tmp_path: Path) -> None:
    def check_boom(ctx: DoctorContext) -> Finding:
        raise RuntimeError("boom")

    findings = run_checks(DoctorContext(home=StationHome(tmp_path), now=NOW), [check_boom])
    assert findings == [Finding("boom", "fail", "RuntimeError: boom", findings[0].fix)]


def _real_station(tmp_path: Path) -> StationHome:
    from station.session import init_station

    home = StationHome(tmp_path / "home")
    init_station(home, "uc-doc-01", demo=True).close()
    return home


def test_keys_and_queue_checks_on_a_healthy_station(tmp_path: Path) -> None:
    from station.doctor import check_keys, check_store

    ctx = DoctorContext(home=_real_station(tmp_path), now=NOW)
    check_config(ctx)
    assert check_keys(ctx).status == "ok"
    found = check_store(ctx)
    assert found.status == "ok" and "integrity ok" in found.detail and "audit chain ok" in found.detail


def test_loose_key_and_tampered_queue_fail_with_a_fix(tmp_path: Path) -> None:
    import os

    from station.doctor import check_keys, check_store

    home = _real_station(tmp_path)
    ctx = DoctorContext(home=home, now=NOW)
    check_config(ctx)
    os.chmod(home.keys_dir / "identity.key", 0o644)
    keys = check_keys(ctx)
    assert keys.status == "fail" and "call the support desk" in keys.fix
    os.chmod(home.keys_dir / "identity.key", 0o600)
    data = bytearray(home.db_path.read_bytes())
    data[5000] ^= 0xFF
    home.db_path.write_bytes(bytes(data))
    queue = check_store(ctx)
    assert queue.status == "fail" and "Do not delete" in queue.fix
