"""Keys and trust (issue 13, finding 12: the parts done): the keys folder and key files, tokens off the
command line with a 7-day default, older certificates revoked when a station is provisioned again,
and `central serve` warning while the HPKE private key is still in its home."""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12

from station.errors import KeyProblem
from station.home import StationHome
from station.keys import KeyStore
from sync.central.home import CentralHome
from tests.central_support import CentralProcess, Client, make_home, write_identity
from tests.sync_live import (
    BIN,
    TEST_LOCATION,
    Central,
    central_cli,
    make_station,
    running_central,
    station_cli,
)

pytestmark = pytest.mark.timeout(300)


def test_a_keys_folder_open_to_others_or_a_linked_key_is_refused(tmp_path: Path) -> None:
    ks = KeyStore(StationHome(tmp_path / "home"))
    key = ks.create_db_key()
    folder = ks.backend.directory
    os.chmod(folder, 0o755)
    with pytest.raises(KeyProblem, match=r"keys folder .* is open to other users") as err:
        ks.db_key()
    assert err.value.code == "keys.permissions"
    os.chmod(folder, 0o700)
    assert ks.db_key() == key
    # A key file replaced by a link to another 0600 file of the same user: refused, not followed.
    elsewhere = tmp_path / "planted.key"
    elsewhere.write_bytes(bytes(32))
    os.chmod(elsewhere, 0o600)
    path = ks.backend.path("db")
    path.unlink()
    path.symlink_to(elsewhere)
    with pytest.raises(KeyProblem, match="symbolic link") as err:
        ks.db_key()
    assert err.value.code == "keys.symlink"
    # ...and a keys folder that is itself a link.
    path.unlink()
    moved = tmp_path / "real-keys"
    folder.rename(moved)
    folder.symlink_to(moved)
    with pytest.raises(KeyProblem, match=r"keys folder .* symbolic link"):
        ks.identity_key()


@pytest.fixture(scope="module")
def central(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Central]:
    with running_central(tmp_path_factory.mktemp("central") / "home") as c:
        yield c


def test_tokens_last_seven_days_by_default(central: Central) -> None:
    out = central_cli(central.home, "token", "new", "--station", "st-ttl-01", *TEST_LOCATION).stdout
    until = re.search(r"valid until ([0-9-]+ [0-9:]+)Z:", out)
    assert until, out
    expires = dt.datetime.fromisoformat(until.group(1) + "+00:00")
    left = expires - dt.datetime.now(dt.UTC)
    assert dt.timedelta(days=6, hours=23) < left <= dt.timedelta(days=7), left


def _provision(
    home: Path, central: Central, *extra: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("STATION_HOME", "STATION_CONFIG")}
    cmd = [str(BIN / "station"), "--home", str(home), "provision", "--skip-devices", "--central"]
    cmd += [central.ingest_url, "--enroll-url", central.enroll_url, "--ca-fingerprint", central.fingerprint]
    return subprocess.run([*cmd, *extra], input=stdin, capture_output=True, text=True, timeout=120, env=env)


def _refused_at_tls(client: Client, central: Central) -> bool:
    """True when central's ingest listener refuses this certificate in TLS (no HTTP answer at all)."""
    ctx = client.context(central.home / "pki" / "ca.crt")
    with httpx.Client(verify=ctx, timeout=20) as http:
        try:
            http.get(central.ingest_url + "/v1/heartbeat")
        except httpx.TransportError:
            return True
    return False


def test_the_token_comes_from_a_file_or_stdin_and_reprovisioning_revokes_the_old_certificate(
    central: Central, tmp_path: Path
) -> None:
    home = tmp_path / "station"
    make_station(home, packets=0, station_id="st-tok-01")
    token_file = tmp_path / "token.txt"
    token_file.write_text(central.token("st-tok-01") + "\n")
    first = _provision(home, central, "--token-file", str(token_file))
    assert first.returncode == 0, first.stderr
    assert "deprecated" not in first.stderr
    old = x509.load_pem_x509_certificate((home / "pki" / "station.crt").read_bytes())
    old_identity = write_identity(
        tmp_path / "old", "old", KeyStore(StationHome(home)).identity_key(), old, "st-tok-01"
    )
    assert not _refused_at_tls(old_identity, central)  # the control: it works before

    # Provisioned again (stdin this time): the first certificate is revoked at once.
    again = _provision(home, central, "--renew", "--token-file", "-", stdin=central.token("st-tok-01") + "\n")
    assert again.returncode == 0, again.stderr
    new = x509.load_pem_x509_certificate((home / "pki" / "station.crt").read_bytes())
    assert new.serial_number != old.serial_number
    crl = x509.load_pem_x509_crl((central.home / "pki" / "crl.pem").read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(old.serial_number) is not None
    assert crl.get_revoked_certificate_by_serial_number(new.serial_number) is None
    assert station_cli(home, "sync", "once").returncode == 0  # the new one works
    assert _refused_at_tls(old_identity, central)  # ...and the old one is refused in the handshake now

    # --token still works for old scripts, with a warning that says why not to.
    home2 = tmp_path / "station2"
    make_station(home2, packets=0, station_id="st-tok-02")
    legacy = _provision(home2, central, "--token", central.token("st-tok-02"))
    assert legacy.returncode == 0, legacy.stderr
    assert "warning: --token is deprecated" in legacy.stderr and "--token-file" in legacy.stderr
    both = _provision(home2, central, "--renew", "--token", "x", "--token-file", str(token_file))
    assert both.returncode == 2 and "Give the token once" in both.stderr


def _stderr_of_a_short_run(home: CentralHome) -> str:
    """Start ``central serve``, stop it once it listens, and return all it wrote to stderr."""
    server = CentralProcess(home)
    try:
        server.proc.send_signal(signal.SIGTERM)
        server.proc.wait(timeout=15)
        assert server.proc.stderr is not None
        return server.proc.stderr.read()
    finally:
        server.stop()


def test_serve_warns_while_the_hpke_private_key_is_in_the_home(tmp_path: Path) -> None:
    home = make_home(tmp_path / "central")
    assert home.backoffice_key.exists()
    err = _stderr_of_a_short_run(home)
    assert "WARNING: the HPKE private key is still in" in err and "Move it offline" in err
    assert err.count("HPKE private key") == 2  # once on stderr, once in the log
    moved = tmp_path / "offline-hpke.key"
    home.backoffice_key.rename(moved)
    assert "HPKE private key" not in _stderr_of_a_short_run(home)


def test_ops_and_back_office_p12_bundles_need_a_password(central: Central, tmp_path: Path) -> None:
    central_bin = [str(BIN / "central"), "--home", str(central.home)]
    env = {k: v for k, v in os.environ.items() if k not in ("CENTRAL_HOME", "CENTRAL_P12_PASSWORD")}

    def run(
        *args: str, stdin: str = "", extra_env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*central_bin, *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            env={**env, **(extra_env or {})},
        )

    done = run(
        "ops-cert", "alice", "--out", str(tmp_path / "a"), "--p12-password-file", "-", stdin="s3cret-pass\n"
    )
    assert done.returncode == 0, done.stderr
    bundle = (tmp_path / "a" / "alice.p12").read_bytes()
    with pytest.raises(ValueError):
        pkcs12.load_key_and_certificates(bundle, None)
    key, cert, _ = pkcs12.load_key_and_certificates(bundle, b"s3cret-pass")
    assert key is not None and cert is not None
    # From the environment, for the back office's certificate too.
    done = run(
        "outcome",
        "cert",
        "registry",
        "--out",
        str(tmp_path / "b"),
        extra_env={"CENTRAL_P12_PASSWORD": "env-pass-123"},
    )
    assert done.returncode == 0, done.stderr
    assert pkcs12.load_key_and_certificates((tmp_path / "b" / "registry.p12").read_bytes(), b"env-pass-123")[
        0
    ]
    # No password and no terminal: key and certificate, but no unprotected bundle, and a note saying how.
    done = run("ops-cert", "bob", "--out", str(tmp_path / "c"))
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "c" / "bob.p12").exists() and (tmp_path / "c" / "bob.key").exists()
    assert "no .p12 written" in done.stderr and "--p12-password-file" in done.stderr
    short = run("ops-cert", "eve", "--out", str(tmp_path / "d"), "--p12-password-file", "-", stdin="short\n")
    assert short.returncode == 2 and "too short" in short.stderr
    assert not (tmp_path / "d").exists()
