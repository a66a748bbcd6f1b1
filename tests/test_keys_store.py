"""Key storage: permissions refused, missing and damaged keys named, no overwrite, crypto-erase."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from station.errors import KeyProblem
from station.home import StationHome
from station.keys import DB_KEY, FileKeyBackend, KeyStore, SystemdCredsBackend


@pytest.fixture
def ks(tmp_path: Path) -> KeyStore:
    return KeyStore(StationHome(tmp_path / "home"))


def test_create_and_read_back(ks: KeyStore) -> None:
    db = ks.create_db_key()
    assert len(db) == 32 and ks.db_key() == db
    ident = ks.create_identity_key()
    assert ks.identity_public_key().public_numbers() == ident.public_key().public_numbers()
    path = ks.backend.path(DB_KEY)
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert os.stat(path.parent).st_mode & 0o777 == 0o700


def test_group_or_world_readable_key_is_refused(ks: KeyStore) -> None:
    ks.create_db_key()
    path = ks.backend.path(DB_KEY)
    os.chmod(path, 0o640)
    with pytest.raises(KeyProblem, match=f"chmod 600 {path}"):
        ks.db_key()
    os.chmod(path, 0o604)
    with pytest.raises(KeyProblem):
        ks.db_key()


def test_missing_key_says_do_not_reinitialise(ks: KeyStore) -> None:
    with pytest.raises(KeyProblem, match="do not re-initialise") as err:
        ks.db_key()
    assert err.value.code == "keys.missing"


def test_wrong_size_key_is_damaged(ks: KeyStore) -> None:
    ks.put(DB_KEY, b"short")
    with pytest.raises(KeyProblem, match="damaged"):
        ks.db_key()


def test_damaged_identity_key(ks: KeyStore) -> None:
    ks.put("identity", b"\x30\x03garbage")
    with pytest.raises(KeyProblem, match="damaged"):
        ks.identity_key()


def test_never_overwrites(ks: KeyStore) -> None:
    first = ks.create_db_key()
    with pytest.raises(KeyProblem, match="refusing to overwrite"):
        ks.create_db_key()
    assert ks.db_key() == first


def test_destroy_all_overwrites_and_removes(ks: KeyStore) -> None:
    ks.create_db_key()
    ks.create_identity_key()
    path = ks.backend.path(DB_KEY)
    inode_before = os.stat(path).st_ino
    assert sorted(ks.destroy_all()) == ["db", "identity"]
    assert not path.exists() and not ks.has("identity")
    assert list(ks.backend.directory.iterdir()) == []
    assert inode_before  # the file was overwritten in place before unlinking (see _destroy_file)


def test_invalid_names_are_rejected(tmp_path: Path) -> None:
    backend = FileKeyBackend(tmp_path)
    for bad in ("", "../x", "A", "a/b"):
        with pytest.raises(ValueError):
            backend.path(bad)


def test_systemd_creds_command_binds_tpm2_when_present(tmp_path: Path) -> None:
    backend = SystemdCredsBackend(tmp_path)
    cmd = backend.encrypt_command("db", tpm2=True)
    assert cmd[:3] == ["systemd-creds", "encrypt", "--name=station-db-key"]
    assert "--with-key=host+tpm2" in cmd and cmd[-1] == str(tmp_path / "db.cred")
    assert "--with-key=host" in backend.encrypt_command("db", tpm2=False)


def test_credentials_directory_from_systemd_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "station-db-key").write_bytes(b"k" * 32)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    store = KeyStore(StationHome(tmp_path / "home"), backend="systemd-creds")
    assert store.has(DB_KEY)
    assert store.db_key() == b"k" * 32


def _systemd_creds_works() -> bool:
    return os.geteuid() == 0 and SystemdCredsBackend.available()


@pytest.mark.root
@pytest.mark.skipif(not _systemd_creds_works(), reason="systemd-creds needs root and a systemd install")
def test_systemd_creds_round_trip_and_tamper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    store = KeyStore(StationHome(tmp_path / "home"), backend="systemd-creds")
    try:
        key = store.create_db_key()
    except KeyProblem as exc:  # e.g. a container without a host credential secret
        pytest.skip(f"systemd-creds cannot seal here: {exc.message}")
    sealed = store.backend.path(DB_KEY).read_bytes()
    assert key not in sealed
    assert store.db_key() == key
    damaged = bytearray(sealed)
    damaged[len(damaged) // 2] ^= 1
    store.backend.path(DB_KEY).write_bytes(bytes(damaged))
    with pytest.raises(KeyProblem, match="cannot be unsealed"):
        store.db_key()
    assert store.destroy_all() == ["db"]
