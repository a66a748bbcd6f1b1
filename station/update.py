"""Signed update bundles: the only way new software reaches a station.

A bundle is one file::

    b"ESUPDATE" | u8 format | u32 header length | header (canonical CBOR)
                | u16 signature length | Ed25519 signature | payload (the .deb)

The vendor signs ``magic | format | header`` with its Ed25519 key; the header names the package,
its version and architecture, and the SHA-256 and size of the payload. A station trusts the public
keys in ``/usr/share/enrollment-station/vendor-keys`` and ``/etc/station/vendor-keys`` (or the
directories in ``$STATION_VENDOR_KEYS``). It installs a bundle only when the signature verifies
with one of them, the payload matches the header, the payload's own control data match the
header, and the version is newer than the installed one (no downgrades, no replays).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from packetformat.cbor import CborError, Limits, Reader, canonical_key_order
from station import __version__
from station.errors import StationError

MAGIC = b"ESUPDATE"
FORMAT = 1
PACKAGE = "enrollment-station"
MAX_HEADER = 4096
MAX_PAYLOAD = 2 * 1024**3
DEFAULT_KEY_DIRS = (Path("/usr/share/enrollment-station/vendor-keys"), Path("/etc/station/vendor-keys"))
_PREFIX = struct.Struct(">8sBI")
_SIGLEN = struct.Struct(">H")
_HEADER_FIELDS: dict[str, type] = {
    "package": str,
    "version": str,
    "architecture": str,
    "payload_name": str,
    "payload_sha256": str,
    "payload_size": int,
    "created": int,
}
_HEADER_ORDER = canonical_key_order(list(_HEADER_FIELDS))


class UpdateRefused(StationError):
    """A bundle that must not be installed; nothing was changed."""

    code = "update.refused"


@dataclass(frozen=True)
class BundleHeader:
    package: str
    version: str
    architecture: str
    payload_name: str
    payload_sha256: str
    payload_size: int
    created: int

    def to_cbor(self) -> bytes:
        return cbor2.dumps(
            {
                "package": self.package,
                "version": self.version,
                "architecture": self.architecture,
                "payload_name": self.payload_name,
                "payload_sha256": self.payload_sha256,
                "payload_size": self.payload_size,
                "created": self.created,
            },
            canonical=True,
        )

    @classmethod
    def from_cbor(cls, data: bytes) -> BundleHeader:
        """Strict, bounded, fixed-shape read (``packetformat.cbor.Reader``): seven fields, canonical."""
        try:
            r = Reader(data, Limits(max_bytes=MAX_HEADER, max_depth=1, max_items=15))
            r.map(len(_HEADER_ORDER), "update header")
            values: dict[str, str | int] = {}
            for key in _HEADER_ORDER:
                r.key(key)
                values[key] = r.uint(key) if _HEADER_FIELDS[key] is int else r.text(key, MAX_HEADER)
            r.finish()
        except CborError as exc:
            if exc.code == "cbor.shape":
                raise UpdateRefused(
                    "The update's header has unexpected fields: get a fresh copy of the bundle."
                ) from None
            raise UpdateRefused("The update's header is damaged: get a fresh copy of the bundle.") from None
        header = cls(
            package=str(values["package"]),
            version=str(values["version"]),
            architecture=str(values["architecture"]),
            payload_name=str(values["payload_name"]),
            payload_sha256=str(values["payload_sha256"]),
            payload_size=int(values["payload_size"]),
            created=int(values["created"]),
        )
        if header.to_cbor() != data:
            raise UpdateRefused(
                "The update's header is not in canonical form: it was not made by the vendor."
            )
        return header


@dataclass(frozen=True)
class VerifiedBundle:
    header: BundleHeader
    payload_offset: int
    key_id: str


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def trusted_keys(dirs: Sequence[Path] | None = None) -> list[Ed25519PublicKey]:
    """The vendor public keys this station trusts (PEM files ending in ``.pub``)."""
    if dirs is None:
        env = os.environ.get("STATION_VENDOR_KEYS")
        dirs = [Path(p) for p in env.split(os.pathsep) if p] if env else list(DEFAULT_KEY_DIRS)
    keys: list[Ed25519PublicKey] = []
    for d in dirs:
        if not d.is_dir():
            continue
        for path in sorted(d.glob("*.pub")):
            try:
                key = serialization.load_pem_public_key(path.read_bytes())
            except ValueError as exc:
                raise StationError(
                    f"Vendor key {path} is not a PEM public key: remove or replace it.", code="update.bad_key"
                ) from exc
            if not isinstance(key, Ed25519PublicKey):
                raise StationError(
                    f"Vendor key {path} is not an Ed25519 key: remove or replace it.", code="update.bad_key"
                )
            keys.append(key)
    return keys


def generate_vendor_key(out_dir: Path) -> tuple[Path, Path]:
    """Write ``vendor.key`` (0600, PEM PKCS#8) and ``vendor.pub``; refuse to overwrite."""
    out_dir.mkdir(parents=True, exist_ok=True)
    priv_path, pub_path = out_dir / "vendor.key", out_dir / "vendor.pub"
    if priv_path.exists() or pub_path.exists():
        raise StationError(
            f"A vendor key already exists in {out_dir}: refusing to overwrite it.", code="update.key_exists"
        )
    key = Ed25519PrivateKey.generate()
    fd = os.open(priv_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    pub_path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return priv_path, pub_path


def load_vendor_private_key(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise StationError(
            f"{path} is not an Ed25519 private key: give the vendor signing key.", code="update.bad_key"
        )
    return key


def deb_field(deb: Path, name: str) -> str:
    """One control field of a .deb, read with dpkg-deb (the format's own tool)."""
    proc = subprocess.run(["dpkg-deb", "-f", str(deb), name], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise UpdateRefused(f"The update's payload is not a Debian package ({proc.stderr.strip()}).")
    return proc.stdout.strip()


def sha256_file(path: Path, offset: int = 0) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        fh.seek(offset)
        while chunk := fh.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def build_bundle(deb: Path, key: Ed25519PrivateKey, out: Path, *, created: int | None = None) -> BundleHeader:
    """Vendor side: sign ``deb`` into the bundle ``out``."""
    digest, size = sha256_file(deb)
    header = BundleHeader(
        package=deb_field(deb, "Package"),
        version=deb_field(deb, "Version"),
        architecture=deb_field(deb, "Architecture"),
        payload_name=deb.name,
        payload_sha256=digest,
        payload_size=size,
        created=int(time.time()) if created is None else created,
    )
    body = header.to_cbor()
    signed = _PREFIX.pack(MAGIC, FORMAT, len(body)) + body
    signature = key.sign(signed)
    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "wb") as fh, open(deb, "rb") as src:
        fh.write(signed + _SIGLEN.pack(len(signature)) + signature)
        shutil.copyfileobj(src, fh, 1 << 20)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, out)
    return header


def compare_versions(a: str, b: str) -> int:
    """Debian version order of ``a`` and ``b`` (-1, 0, 1), by ``dpkg --compare-versions``."""
    for op, result in (("lt", -1), ("eq", 0)):
        proc = subprocess.run(["dpkg", "--compare-versions", a, op, b], capture_output=True, check=False)
        if proc.returncode == 0:
            return result
    return 1


def installed_version() -> str:
    """The installed package's version from dpkg, else this code's own version (development)."""
    if shutil.which("dpkg-query"):
        proc = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", PACKAGE], capture_output=True, text=True, check=False
        )
        if proc.returncode == 0 and proc.stdout.strip():
            return proc.stdout.strip()
    return __version__


def verify_bundle(
    path: Path, keys: Sequence[Ed25519PublicKey] | None = None, *, current: str | None = None
) -> VerifiedBundle:
    """Check everything about a bundle without installing it; raise ``UpdateRefused`` on any doubt."""
    keys = trusted_keys() if keys is None else keys
    if not keys:
        raise UpdateRefused("No vendor key is installed, so no update can be trusted: reinstall the package.")
    try:
        total = path.stat().st_size
        with open(path, "rb") as fh:
            prefix = fh.read(_PREFIX.size)
            if len(prefix) < _PREFIX.size:
                raise UpdateRefused("This file is too short to be an update bundle.")
            magic, fmt, hlen = _PREFIX.unpack(prefix)
            if magic != MAGIC:
                raise UpdateRefused("This file is not an Enrollment Station update bundle (.esu).")
            if fmt != FORMAT:
                raise UpdateRefused(f"Update bundle format {fmt} is not supported by this station.")
            if hlen > MAX_HEADER:
                raise UpdateRefused("The update's header is too large: the file is damaged or forged.")
            body = fh.read(hlen)
            sl = fh.read(_SIGLEN.size)
            if len(body) != hlen or len(sl) != _SIGLEN.size:
                raise UpdateRefused("The update bundle is truncated: copy it again.")
            (siglen,) = _SIGLEN.unpack(sl)
            signature = fh.read(siglen)
            if siglen != 64 or len(signature) != 64:
                raise UpdateRefused("The update bundle is unsigned or its signature is damaged.")
    except OSError as exc:
        raise UpdateRefused(f"Cannot read the update bundle: {exc.strerror}.") from exc
    signed = prefix + body
    signer = None
    for key in keys:
        try:
            key.verify(signature, signed)
        except InvalidSignature:
            continue
        signer = key
        break
    if signer is None:
        raise UpdateRefused("The update is not signed by a trusted vendor key: do not install it.")
    header = BundleHeader.from_cbor(body)
    offset = len(signed) + _SIGLEN.size + siglen
    if header.package != PACKAGE:
        raise UpdateRefused(f"The update is for '{header.package}', not {PACKAGE}.")
    if header.payload_size > MAX_PAYLOAD or total - offset != header.payload_size:
        raise UpdateRefused("The update's payload size does not match its signed header: copy it again.")
    digest, _ = sha256_file(path, offset)
    if digest != header.payload_sha256:
        raise UpdateRefused("The update's payload does not match its signature: copy it again.")
    current = installed_version() if current is None else current
    if compare_versions(header.version, current) <= 0:
        raise UpdateRefused(
            f"The update is version {header.version}, not newer than the installed {current}:"
            " older or repeated updates are refused."
        )
    return VerifiedBundle(header=header, payload_offset=offset, key_id=key_id(signer))


def extract_payload(path: Path, verified: VerifiedBundle, out_dir: Path) -> Path:
    """Copy the verified payload to a private file and check it again there (no swap after check)."""
    out = out_dir / Path(verified.header.payload_name).name
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as dst, open(path, "rb") as src:
        src.seek(verified.payload_offset)
        shutil.copyfileobj(src, dst, 1 << 20)
    digest, size = sha256_file(out)
    if digest != verified.header.payload_sha256 or size != verified.header.payload_size:
        raise UpdateRefused("The update changed while it was being installed: try again.")
    for name, expected in (
        ("Package", verified.header.package),
        ("Version", verified.header.version),
        ("Architecture", verified.header.architecture),
    ):
        if deb_field(out, name) != expected:
            raise UpdateRefused(f"The update's package {name} does not match its signed header.")
    return out


def apply_bundle(
    path: Path,
    keys: Sequence[Ed25519PublicKey] | None = None,
    *,
    installer: Sequence[str] = ("dpkg", "-i"),
    current: str | None = None,
) -> BundleHeader:
    """Verify, then install with ``installer`` (``dpkg -i``); nothing runs unless every check passes."""
    verified = verify_bundle(path, keys, current=current)
    with tempfile.TemporaryDirectory(prefix="station-update-") as tmp:
        os.chmod(tmp, 0o700)
        deb = extract_payload(path, verified, Path(tmp))
        proc = subprocess.run([*installer, str(deb)], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise StationError(
                "The update was verified but installing it failed: "
                + " / ".join(tail)
                + ". The station keeps running the installed version; call support.",
                code="update.failed",
            )
    return verified.header
