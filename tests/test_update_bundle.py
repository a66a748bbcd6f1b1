"""Signed update bundles: only a vendor-signed, intact, newer package is installed."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from station.update import (
    UpdateRefused,
    apply_bundle,
    build_bundle,
    generate_vendor_key,
    load_vendor_private_key,
    trusted_keys,
    verify_bundle,
)

pytestmark = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb not installed")


def make_deb(tmp: Path, version: str, package: str = "enrollment-station") -> Path:
    root = tmp / f"pkg-{package}-{version}"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "opt" / "x").mkdir(parents=True)
    (root / "opt" / "x" / "payload.txt").write_text(f"version {version}\n" * 200)
    (root / "DEBIAN" / "control").write_text(
        f"Package: {package}\nVersion: {version}\nArchitecture: all\n"
        "Maintainer: test <t@localhost>\nDescription: test package\n"
    )
    out = tmp / f"{package}_{version}_all.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(root), str(out)],
        check=True,
        capture_output=True,
    )
    return out


@pytest.fixture
def vendor(tmp_path: Path) -> tuple[Ed25519PrivateKey, Path]:
    priv, pub = generate_vendor_key(tmp_path / "vendor")
    assert os.stat(priv).st_mode & 0o777 == 0o600
    keydir = tmp_path / "trusted"
    keydir.mkdir()
    shutil.copy(pub, keydir / "vendor.pub")
    return load_vendor_private_key(priv), keydir


@pytest.fixture
def bundle(tmp_path: Path, vendor: tuple[Ed25519PrivateKey, Path]) -> Path:
    deb = make_deb(tmp_path, "0.2.0")
    out = tmp_path / "update.esu"
    header = build_bundle(deb, vendor[0], out, created=1_700_000_000)
    assert header.version == "0.2.0" and header.package == "enrollment-station"
    return out


def recorder(tmp_path: Path) -> tuple[list[str], Path]:
    """An installer that copies what it is given, so the test sees exactly what would be installed."""
    got = tmp_path / "installed.deb"
    return ["sh", "-c", f'cp "$1" {got}', "installer"], got


def test_signed_newer_bundle_is_installed_byte_for_byte(
    tmp_path: Path, bundle: Path, vendor: tuple[Ed25519PrivateKey, Path]
) -> None:
    installer, got = recorder(tmp_path)
    header = apply_bundle(bundle, trusted_keys([vendor[1]]), installer=installer, current="0.1.0")
    assert header.version == "0.2.0"
    assert got.read_bytes() == (tmp_path / "enrollment-station_0.2.0_all.deb").read_bytes()


@pytest.mark.parametrize("current", ["0.2.0", "0.3.0", "1.0"])
def test_same_or_older_version_is_refused(
    tmp_path: Path, bundle: Path, vendor: tuple[Ed25519PrivateKey, Path], current: str
) -> None:
    installer, got = recorder(tmp_path)
    with pytest.raises(UpdateRefused, match="not newer"):
        apply_bundle(bundle, trusted_keys([vendor[1]]), installer=installer, current=current)
    assert not got.exists()


def test_debian_version_order_is_used(bundle: Path, vendor: tuple[Ed25519PrivateKey, Path]) -> None:
    # 0.2.0 > 0.1.10~rc1 in Debian order; a plain string compare would disagree with 0.10.
    assert verify_bundle(bundle, trusted_keys([vendor[1]]), current="0.1.10~rc1").header.version == "0.2.0"
    with pytest.raises(UpdateRefused):
        verify_bundle(bundle, trusted_keys([vendor[1]]), current="0.10")


def test_other_vendor_key_is_refused(tmp_path: Path, bundle: Path) -> None:
    _, pub = generate_vendor_key(tmp_path / "other")
    keydir = tmp_path / "other-trusted"
    keydir.mkdir()
    shutil.copy(pub, keydir)
    with pytest.raises(UpdateRefused, match="not signed by a trusted vendor key"):
        verify_bundle(bundle, trusted_keys([keydir]), current="0.1.0")


def test_no_trusted_key_refuses_everything(tmp_path: Path, bundle: Path) -> None:
    with pytest.raises(UpdateRefused, match="No vendor key"):
        verify_bundle(bundle, trusted_keys([tmp_path / "empty"]), current="0.1.0")


def test_unsigned_bundle_is_refused(
    tmp_path: Path, bundle: Path, vendor: tuple[Ed25519PrivateKey, Path]
) -> None:
    data = bytearray(bundle.read_bytes())
    hlen = int.from_bytes(data[9:13], "big")
    sig_at = 13 + hlen + 2
    data[sig_at : sig_at + 64] = bytes(64)
    bad = tmp_path / "unsigned.esu"
    bad.write_bytes(bytes(data))
    with pytest.raises(UpdateRefused):
        verify_bundle(bad, trusted_keys([vendor[1]]), current="0.1.0")


def test_tampered_payload_is_refused(
    tmp_path: Path, bundle: Path, vendor: tuple[Ed25519PrivateKey, Path]
) -> None:
    data = bytearray(bundle.read_bytes())
    data[-100] ^= 0x01
    bad = tmp_path / "tampered.esu"
    bad.write_bytes(bytes(data))
    installer, got = recorder(tmp_path)
    with pytest.raises(UpdateRefused, match="does not match its signature"):
        apply_bundle(bad, trusted_keys([vendor[1]]), installer=installer, current="0.1.0")
    assert not got.exists()


def test_payload_swapped_for_another_signed_package_is_refused(
    tmp_path: Path, vendor: tuple[Ed25519PrivateKey, Path]
) -> None:
    # The vendor signed 0.2.0; an attacker appends a different (older) .deb under that header.
    newer = tmp_path / "newer.esu"
    build_bundle(make_deb(tmp_path, "0.2.0"), vendor[0], newer)
    older = make_deb(tmp_path, "0.0.1")
    data = newer.read_bytes()
    hlen = int.from_bytes(data[9:13], "big")
    forged = tmp_path / "forged.esu"
    forged.write_bytes(data[: 13 + hlen + 2 + 64] + older.read_bytes())
    with pytest.raises(UpdateRefused):
        verify_bundle(forged, trusted_keys([vendor[1]]), current="0.1.0")


def test_wrong_package_is_refused(tmp_path: Path, vendor: tuple[Ed25519PrivateKey, Path]) -> None:
    out = tmp_path / "other.esu"
    build_bundle(make_deb(tmp_path, "9.0", package="something-else"), vendor[0], out)
    with pytest.raises(UpdateRefused, match="something-else"):
        verify_bundle(out, trusted_keys([vendor[1]]), current="0.1.0")


def test_not_a_bundle_and_truncated_are_refused(
    tmp_path: Path, bundle: Path, vendor: tuple[Ed25519PrivateKey, Path]
) -> None:
    keys = trusted_keys([vendor[1]])
    deb = tmp_path / "enrollment-station_0.2.0_all.deb"
    with pytest.raises(UpdateRefused, match=r"not an Enrollment Station update bundle"):
        verify_bundle(deb, keys, current="0.1.0")
    data = bundle.read_bytes()
    for cut in (0, 5, 13, 40, len(data) - 1):
        short = tmp_path / f"short{cut}.esu"
        short.write_bytes(data[:cut])
        with pytest.raises(UpdateRefused):
            verify_bundle(short, keys, current="0.1.0")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_mutation_is_refused_and_nothing_else_escapes(
    tmp_path: Path, bundle: Path, vendor: tuple[Ed25519PrivateKey, Path], data: st.DataObject
) -> None:
    raw = bytearray(bundle.read_bytes())
    pos = data.draw(st.integers(0, len(raw) - 1))
    flip = data.draw(st.integers(1, 255))
    raw[pos] ^= flip
    bad = tmp_path / "fuzz.esu"
    bad.write_bytes(bytes(raw))
    with pytest.raises(UpdateRefused):
        verify_bundle(bad, trusted_keys([vendor[1]]), current="0.1.0")


def test_cli_refuses_with_a_clear_error(
    tmp_path: Path, bundle: Path, vendor: tuple[Ed25519PrivateKey, Path]
) -> None:
    station = Path(__file__).resolve().parents[1] / ".venv" / "bin" / "station"
    env = {**os.environ, "STATION_VENDOR_KEYS": str(tmp_path / "nothing-here")}
    proc = subprocess.run(
        [str(station), "--home", str(tmp_path / "home"), "update", "apply", "--yes", str(bundle)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 1
    assert "error [update.refused]: No vendor key is installed" in proc.stderr
    env["STATION_VENDOR_KEYS"] = str(vendor[1])
    proc = subprocess.run(
        [str(station), "--home", str(tmp_path / "home"), "update", "verify", str(bundle)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "OK: this update can be applied" in proc.stdout
