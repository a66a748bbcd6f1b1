"""The station's keys: the database key and the identity key, wrapped by the host.

Two backends keep them:

* :class:`FileKeyBackend` (development default): one file per key, mode 0600 in a 0700 directory.
  A key file anyone else can read is refused; keys are written atomically and never overwritten.
* :class:`SystemdCredsBackend` (the appliance): each key sealed with ``systemd-creds`` to the host
  secret and, when the board has one, the TPM2 chip, so a copied disk is useless. Under systemd the
  services receive the decrypted keys in ``$CREDENTIALS_DIRECTORY`` (``LoadCredentialEncrypted=``);
  outside it (root, the CLI) they are decrypted with ``systemd-creds decrypt``.

:class:`KeyStore` is what the rest of the station uses. It never touches the database.
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
import subprocess
from abc import ABC, abstractmethod
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from station.errors import KeyProblem
from station.home import StationHome

DB_KEY = "db"
IDENTITY_KEY = "identity"
DB_KEY_BYTES = 32
MAX_KEY_BYTES = 64 * 1024  # a key or a sealed credential is a few hundred bytes
_NAME_OK = set("abcdefghijklmnopqrstuvwxyz0123456789-")


def _check_name(name: str) -> None:
    if not name or not set(name) <= _NAME_OK:
        raise ValueError(f"invalid key name {name!r}")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_new(path: Path, data: bytes) -> None:
    """Atomically create ``path`` (0600) with ``data``; refuse to replace an existing file."""
    if path.exists():
        raise KeyProblem(f"The key {path} already exists: refusing to overwrite it.", code="keys.exists")
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.link(tmp, path)  # fails if path appeared meanwhile: never overwrite
    except FileExistsError as exc:
        raise KeyProblem(
            f"The key {path} already exists: refusing to overwrite it.", code="keys.exists"
        ) from exc
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def _destroy_file(path: Path) -> bool:
    """Overwrite a key file with random bytes, sync, then unlink it."""
    if not path.exists():
        return False
    size = path.stat().st_size
    with open(path, "r+b") as fh:
        fh.write(secrets.token_bytes(max(size, 1)))
        fh.flush()
        os.fsync(fh.fileno())
    path.unlink()
    _fsync_dir(path.parent)
    return True


class KeyBackend(ABC):
    """Where and how key bytes are kept."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def ensure_directory(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.directory, 0o700)

    def _directory_owner(self) -> int:
        return self.directory.lstat().st_uid

    def check_directory(self) -> None:
        """The keys folder must be a real folder (not a link) that only its owner can enter."""
        try:
            st = self.directory.lstat()
        except FileNotFoundError:
            return  # each key then reports itself missing
        if not stat.S_ISDIR(st.st_mode):
            raise KeyProblem(
                f"The keys folder {self.directory} is a symbolic link or not a folder: refusing to use it."
                " Call a technician.",
                code="keys.symlink",
            )
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyProblem(
                f"The keys folder {self.directory} is open to other users (mode"
                f" {stat.S_IMODE(st.st_mode):04o}): refusing to use it. Run: chmod 700 {self.directory}",
                code="keys.permissions",
            )

    @abstractmethod
    def path(self, name: str) -> Path: ...

    @abstractmethod
    def put(self, name: str, data: bytes) -> None: ...

    @abstractmethod
    def get(self, name: str) -> bytes: ...

    def has(self, name: str) -> bool:
        return self.path(name).exists()

    def destroy(self, name: str) -> bool:
        _check_name(name)
        return _destroy_file(self.path(name))

    def names(self) -> list[str]:
        if not self.directory.is_dir():
            return []
        suffix = self.path("x").suffix
        return sorted(
            p.stem for p in self.directory.iterdir() if p.suffix == suffix and not p.name.startswith(".")
        )


class FileKeyBackend(KeyBackend):
    """Keys as 0600 files in a 0700 directory (the embedded default for development)."""

    def path(self, name: str) -> Path:
        _check_name(name)
        return self.directory / f"{name}.key"

    def put(self, name: str, data: bytes) -> None:
        self.ensure_directory()
        _write_new(self.path(name), data)

    def get(self, name: str) -> bytes:
        path = self.path(name)
        self.check_directory()
        try:
            st = path.lstat()
        except FileNotFoundError:
            raise KeyProblem(
                f"The key file {path} is missing: this station cannot open its data. Call a technician;"
                " do not re-initialise, or the queued packets are lost.",
                code="keys.missing",
            ) from None
        if stat.S_ISLNK(st.st_mode) or not stat.S_ISREG(st.st_mode):
            raise KeyProblem(
                f"The key file {path} is a symbolic link or not a regular file: refusing to use it."
                " A key is a plain file in the keys folder; call a technician.",
                code="keys.symlink",
            )
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyProblem(
                f"The key file {path} can be read by other users (mode {stat.S_IMODE(st.st_mode):04o}):"
                f" refusing to use it. Run: chmod 600 {path}",
                code="keys.permissions",
            )
        # Root (the technician's tools) may read the keys of the station user who owns the folder.
        if st.st_uid != os.geteuid() and not (os.geteuid() == 0 and st.st_uid == self._directory_owner()):
            raise KeyProblem(
                f"The key file {path} belongs to another user (uid {st.st_uid}): refusing to use it."
                " Run the station as the user that owns its keys.",
                code="keys.owner",
            )
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as fh:
            return fh.read(MAX_KEY_BYTES)


class SystemdCredsBackend(KeyBackend):
    """Keys sealed with systemd-creds (TPM2-bound when the machine has a TPM2 chip)."""

    @staticmethod
    def credential_name(name: str) -> str:
        return f"station-{name}-key"

    @classmethod
    def available(cls) -> bool:
        if shutil.which("systemd-creds") is None:
            return False
        proc = subprocess.run(["systemd-creds", "--version"], capture_output=True, check=False)
        return proc.returncode == 0

    @staticmethod
    def has_tpm2() -> bool:
        proc = subprocess.run(["systemd-creds", "has-tpm2", "--quiet"], capture_output=True, check=False)
        return proc.returncode == 0

    def encrypt_command(self, name: str, *, tpm2: bool) -> list[str]:
        return [
            "systemd-creds",
            "encrypt",
            f"--name={self.credential_name(name)}",
            f"--with-key={'host+tpm2' if tpm2 else 'host'}",
            "-",
            str(self.path(name)),
        ]

    def path(self, name: str) -> Path:
        _check_name(name)
        return self.directory / f"{name}.cred"

    def put(self, name: str, data: bytes) -> None:
        self.ensure_directory()
        if self.path(name).exists():
            raise KeyProblem(
                f"The key {self.path(name)} already exists: refusing to overwrite it.", code="keys.exists"
            )
        proc = subprocess.run(
            self.encrypt_command(name, tpm2=self.has_tpm2()), input=data, capture_output=True, check=False
        )
        if proc.returncode != 0:
            self.path(name).unlink(missing_ok=True)
            why = proc.stderr.decode(errors="replace").strip()
            raise KeyProblem(f"systemd-creds could not seal the key '{name}': {why}", code="keys.seal")
        os.chmod(self.path(name), 0o600)
        _fsync_dir(self.directory)

    def has(self, name: str) -> bool:
        return self._from_service(name) is not None or self.path(name).exists()

    def _from_service(self, name: str) -> Path | None:
        creds = os.environ.get("CREDENTIALS_DIRECTORY")
        if creds:
            candidate = Path(creds) / self.credential_name(name)
            if candidate.is_file():
                return candidate
        return None

    def get(self, name: str) -> bytes:
        given = self._from_service(name)
        if given is not None:
            return given.read_bytes()
        path = self.path(name)
        self.check_directory()
        if path.is_symlink():
            raise KeyProblem(
                f"The sealed key {path} is a symbolic link: refusing to use it. Call a technician.",
                code="keys.symlink",
            )
        if not path.exists():
            raise KeyProblem(
                f"The sealed key {path} is missing: this station cannot open its data. Call a technician;"
                " do not re-initialise, or the queued packets are lost.",
                code="keys.missing",
            )
        proc = subprocess.run(
            ["systemd-creds", "decrypt", f"--name={self.credential_name(name)}", str(path), "-"],
            capture_output=True,
            check=False,
        )
        if proc.returncode != 0:
            raise KeyProblem(
                f"The sealed key {path} cannot be unsealed on this machine (moved disk, changed TPM or"
                " damaged file). Call a technician.",
                code="keys.unseal",
            )
        return proc.stdout


def make_backend(home: StationHome, backend: str) -> KeyBackend:
    if backend == "file":
        return FileKeyBackend(home.keys_dir)
    if backend == "systemd-creds":
        return SystemdCredsBackend(home.keys_dir)
    raise KeyProblem(f"Unknown key backend '{backend}': use 'file' or 'systemd-creds'.", code="keys.backend")


class KeyStore:
    """The station's keys, whatever backend keeps them."""

    def __init__(self, home: StationHome, backend: str = "file") -> None:
        self.home = home
        self.backend = make_backend(home, backend)

    def put(self, name: str, data: bytes) -> None:
        self.backend.put(name, data)

    def get(self, name: str) -> bytes:
        return self.backend.get(name)

    def has(self, name: str) -> bool:
        return self.backend.has(name)

    def destroy(self, name: str) -> bool:
        return self.backend.destroy(name)

    def destroy_all(self) -> list[str]:
        """Crypto-erase: overwrite and remove every key; returns the names destroyed."""
        destroyed = [name for name in self.backend.names() if self.backend.destroy(name)]
        return destroyed

    def create_db_key(self) -> bytes:
        key = secrets.token_bytes(DB_KEY_BYTES)
        self.put(DB_KEY, key)
        return key

    def db_key(self) -> bytes:
        key = self.get(DB_KEY)
        if len(key) != DB_KEY_BYTES:
            raise KeyProblem(
                f"The database key has {len(key)} bytes instead of {DB_KEY_BYTES}: it is damaged."
                " Call a technician.",
                code="keys.damaged",
            )
        return key

    def create_identity_key(self) -> ec.EllipticCurvePrivateKey:
        key = ec.generate_private_key(ec.SECP256R1())
        der = key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        self.put(IDENTITY_KEY, der)
        return key

    def identity_key(self) -> ec.EllipticCurvePrivateKey:
        raw = self.get(IDENTITY_KEY)
        try:
            key = serialization.load_der_private_key(raw, password=None)
        except ValueError as exc:
            raise KeyProblem("The identity key is damaged. Call a technician.", code="keys.damaged") from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
            raise KeyProblem("The identity key is not an ECDSA P-256 key.", code="keys.damaged")
        return key

    def identity_public_key(self) -> ec.EllipticCurvePublicKey:
        return self.identity_key().public_key()
