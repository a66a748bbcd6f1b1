"""``station provision`` against the real central on 127.0.0.1: CA pinned by fingerprint, one-time
token, files installed; refusals leave nothing behind."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

from sync.agent.provision import ProvisionError, enroll_url_for, normalise_fingerprint
from tests.sync_live import Central, central_cli, make_station, provision_cli, running_central, station_cli


@pytest.fixture(scope="module")
def central(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Central]:
    with running_central(tmp_path_factory.mktemp("central") / "home") as c:
        yield c


def test_provision_installs_everything_and_token_works_once(central: Central, tmp_path: Path) -> None:
    home = tmp_path / "station"
    make_station(home, packets=0)
    token = central.token("demo-station")
    fp = central.fingerprint.removeprefix("SHA256:")
    colons = ":".join(fp[i : i + 2] for i in range(0, 64, 2)).upper()  # accepted with colons too
    out = station_cli(
        home,
        "provision",
        "--skip-devices",
        "--central",
        central.ingest_url,
        "--enroll-url",
        central.enroll_url,
        "--enroll-url",
        central.enroll_url,
        "--token-file",
        "-",
        "--ca-fingerprint",
        colons,
        stdin=token + "\n",
    )
    assert "Provisioned station demo-station" in out.stdout
    pki = home / "pki"
    ca = x509.load_pem_x509_certificate((pki / "ca.crt").read_bytes())
    assert ca.fingerprint(ca.signature_hash_algorithm).hex() == fp  # type: ignore[arg-type]
    cert = x509.load_pem_x509_certificate((pki / "station.crt").read_bytes())
    cert.verify_directly_issued_by(ca)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == ["urn:station:demo-station"]
    assert (pki / "central-hpke.suite").read_text().strip() == "x25519"
    assert (central.home / "keys" / "hpke.pub").exists()
    assert b"PUBLIC KEY" in (pki / "receipt.pub").read_bytes()
    toml = (home / "station.toml").read_text()
    assert central.ingest_url in toml and "demo-station" in toml
    events = station_cli(home, "audit", "tail", check=False).stdout
    assert "provisioned" in events

    # The same token again (here with --renew so the key rule is not what refuses it).
    again = provision_cli(home, central, token, fp, "--renew", check=False)
    assert again.returncode == 1
    assert "token refused: ask central ops for a new token" in again.stderr
    # Without --renew an already provisioned station refuses before sending anything.
    other = provision_cli(home, central, "x", fp, check=False)
    assert other.returncode == 1 and "--renew" in other.stderr


def test_wrong_fingerprint_refused_nothing_written(central: Central, tmp_path: Path) -> None:
    home = tmp_path / "station"
    make_station(home, packets=0)
    token = central.token("demo-station")
    before = (home / "station.toml").read_text()
    wrong = "ab" * 32
    out = provision_cli(home, central, token, wrong, check=False)
    assert out.returncode == 1
    assert (
        "this is not your central office (CA fingerprint mismatch): check the URL and fingerprint"
        in out.stderr
    )
    assert not (home / "pki" / "station.crt").exists() and not (home / "pki" / "ca.crt").exists()
    assert (home / "station.toml").read_text() == before
    # The token was never sent to anyone, so it still works.
    ok = provision_cli(home, central, token, central.fingerprint)
    assert "Provisioned" in ok.stdout


def test_unknown_token_and_unreachable_central(central: Central, tmp_path: Path) -> None:
    home = tmp_path / "station"
    make_station(home, packets=0)
    bad = provision_cli(home, central, "not-a-token", central.fingerprint, check=False)
    assert bad.returncode == 1 and "token refused" in bad.stderr
    import socket

    with socket.socket() as s:  # bound but not listening: connections to it are refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        down = provision_cli(
            home,
            central,
            "t",
            central.fingerprint,
            check=False,
            enroll_url=f"https://127.0.0.1:{port}",
            central_url="https://127.0.0.1:8443",
        )
    assert down.returncode == 1 and "cannot reach central" in down.stderr


def test_fingerprint_forms_and_enroll_url() -> None:
    fp = "1e" * 32
    assert normalise_fingerprint("SHA256:" + fp.upper()) == fp
    assert normalise_fingerprint(":".join([fp[i : i + 2] for i in range(0, 64, 2)])) == fp
    with pytest.raises(ProvisionError):
        normalise_fingerprint("abc")
    assert enroll_url_for("https://127.0.0.1:8443") == "https://127.0.0.1:8444"
    assert enroll_url_for("https://[::1]:9000/") == "https://[::1]:9001"
    assert enroll_url_for("https://central.example") == "https://central.example:8444"
    with pytest.raises(ProvisionError):
        enroll_url_for("http://127.0.0.1:8443")


def test_central_fingerprint_cli_matches(central: Central) -> None:
    out = central_cli(central.home, "ca", "fingerprint").stdout
    assert central.fingerprint in out


def test_bare_machine_becomes_a_station(central: Central, tmp_path: Path) -> None:
    home = tmp_path / "bare"
    token = central.token("bare-01")
    provision_cli(home, central, token, central.fingerprint, "--station-id", "bare-01")
    assert (home / "queue.db").exists() and (home / "pki" / "station.crt").exists()
    out = station_cli(home, "sync", "once")
    assert "queue: 0 pending, 0 acked" in out.stdout
    assert "provisioned" in station_cli(home, "audit", "tail").stdout
