"""PKI: CA init files and modes, tokens (single use, expiry, station bound), CSR rules, CRLs."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from packetformat.packet import recipient_suite_of
from sync.central.authority import Authority, init_home, read_hpke_private_key
from sync.central.home import CentralError, CentralHome
from sync.pki.ca import PKIError, fingerprint, load_ca, load_cert, normalise_fingerprint
from sync.pki.crl import build_crl, load_crl, needs_refresh
from sync.pki.issue import CSRError, load_csr, station_id_of
from sync.pki.tokens import TokenStore, parse_duration
from tests.central_support import REPO, TEST_LOCATION, csr_for


@pytest.fixture
def home(tmp_path: Path) -> CentralHome:
    h = CentralHome(tmp_path / "central")
    init_home(h)
    return h


def test_init_files_modes_and_refuses_to_overwrite(home: CentralHome) -> None:
    for secret in (home.ca_key, home.server_key, home.receipt_key, home.backoffice_key):
        assert secret.stat().st_mode & 0o777 == 0o600, secret
    ca = load_ca(home.ca_key, home.ca_cert)
    assert isinstance(ca.key.curve, ec.SECP256R1)
    assert ca.cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    server = load_cert(home.server_cert)
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    assert {str(ip) for ip in san.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "::1"}
    assert recipient_suite_of(Authority(home).hpke_public()[0]) == "x25519"
    assert len(read_hpke_private_key(home.backoffice_key)) == 32
    assert load_crl(home.crl) is not None
    with pytest.raises(CentralError, match="already exists"):
        init_home(home)


def test_hybrid_suite(tmp_path: Path) -> None:
    h = CentralHome(tmp_path / "pq")
    init_home(h, suite="mlkem768-x25519")
    public, suite = Authority(h).hpke_public()
    assert suite == "mlkem768-x25519" and recipient_suite_of(public) == suite


def test_cli_init_fingerprint_and_token_last_line(tmp_path: Path) -> None:
    def central(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "sync.central", "--home", str(tmp_path / "c"), *args],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO,
        )

    init = central("ca", "init", "--name", "Test CA")
    assert init.returncode == 0, init.stderr
    assert "Move it offline" in init.stderr
    fp = central("ca", "fingerprint")
    expected = fingerprint(load_cert(tmp_path / "c" / "pki" / "ca.crt"))
    assert fp.stdout.strip() == f"SHA256:{expected}"
    assert init.stdout.strip().splitlines()[-1] == fp.stdout.strip()
    assert normalise_fingerprint(fp.stdout) == expected
    tok = central("token", "new", "--station", "uc-1", *TEST_LOCATION, "--ttl", "2h")
    assert tok.returncode == 0
    token = tok.stdout.strip().splitlines()[-1]
    assert " " not in token and len(token) >= 20
    assert Authority(CentralHome(tmp_path / "c")).tokens.redeem(token, "uc-1")
    assert central("token", "new", "--station", "../etc", *TEST_LOCATION, "--ttl", "2h").returncode != 0
    assert central("token", "new", "--station", "uc-1", "--ttl", "soon").returncode != 0
    unknown = central("token", "new", "--station", "uc-2", "--ttl", "2h")  # not registered, no location
    assert unknown.returncode == 1 and "--district" in unknown.stderr
    again = central("ca", "init")
    assert again.returncode == 1 and "refusing to overwrite" in again.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "sync.central", "--home", str(tmp_path / "none"), "status"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert missing.returncode == 1 and "ca init" in missing.stderr


def test_tokens_single_use_expiry_station_bound(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "pki.db")
    t = store.new("uc-1", 60)
    assert not store.redeem(t, "uc-2")
    assert store.redeem(t, "uc-1")
    assert not store.redeem(t, "uc-1")
    old = store.new("uc-1", 60, now=time.time() - 61)
    assert not store.redeem(old, "uc-1")
    assert not store.redeem("made-up", "uc-1")
    raw = (tmp_path / "pki.db").read_bytes()
    assert t.encode() not in raw  # stored hashed only


def test_token_redeemed_once_under_concurrency(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "pki.db")
    token = store.new("uc-1", 60)
    wins: list[bool] = []
    lock = threading.Lock()

    def go() -> None:
        ok = TokenStore(tmp_path / "pki.db").redeem(token, "uc-1")
        with lock:
            wins.append(ok)

    threads = [threading.Thread(target=go) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=30)
    assert sorted(wins) == [False] * 7 + [True]


def test_durations() -> None:
    assert parse_duration("24h") == 86400 and parse_duration("15m") == 900 and parse_duration("7d") == 604800
    assert parse_duration("90") == 90
    for bad in ("", "h", "-1h", "0", "3w"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_csr_rules(home: CentralHome) -> None:
    auth = Authority(home)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = auth.issue_from_csr(csr_for(key, "uc-1"), "uc-1", days=5)
    assert station_id_of(cert) == "uc-1"
    assert cert.not_valid_after_utc - cert.not_valid_before_utc < dt.timedelta(days=5, minutes=10)
    with pytest.raises(CSRError, match="exactly urn:station:uc-1"):
        auth.issue_from_csr(csr_for(key, "uc-1", san="urn:station:uc-2"), "uc-1")
    with pytest.raises(CSRError, match="not valid"):
        auth.issue_from_csr(csr_for(key, "../x", san="urn:station:../x"), "../x")
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "uc-1")]))
        .sign(rsa_key, hashes.SHA256())
    )
    from cryptography.hazmat.primitives import serialization

    with pytest.raises(CSRError, match="P-256"):
        auth.issue_from_csr(rsa_csr.public_bytes(serialization.Encoding.PEM).decode(), "uc-1")
    with pytest.raises(CSRError, match="not a PEM"):
        load_csr("garbage")
    p384 = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(PKIError):
        auth.issue_from_csr(csr_for(p384, "uc-1"), "uc-1")


def test_revoke_publishes_crl_with_forward_moving_last_update(home: CentralHome) -> None:
    auth = Authority(home)
    key = ec.generate_private_key(ec.SECP256R1())
    c1 = auth.issue_from_csr(csr_for(key, "uc-1"), "uc-1")
    c2 = auth.issue_from_csr(csr_for(key, "uc-1"), "uc-1")
    first = load_crl(home.crl)
    assert first is not None
    assert auth.revoke("uc-1") == 2
    crl = load_crl(home.crl)
    assert crl is not None and crl.last_update_utc > first.last_update_utc
    assert {r.serial_number for r in crl} == {c1.serial_number, c2.serial_number}
    assert crl.is_signature_valid(auth.ca.key.public_key())  # type: ignore[arg-type]
    assert auth.revoke("uc-1") == 0
    # two CRLs within the same second still order
    again = x509.load_pem_x509_crl(build_crl(auth.ca, [], previous=crl))
    assert again.last_update_utc > crl.last_update_utc
    number = again.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    assert number > crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


def test_crl_refresh_before_next_update(home: CentralHome) -> None:
    crl = load_crl(home.crl)
    assert crl is not None and crl.next_update_utc is not None
    assert not needs_refresh(crl)
    assert needs_refresh(crl, now=crl.last_update_utc + (crl.next_update_utc - crl.last_update_utc) * 0.6)
    assert needs_refresh(None)
