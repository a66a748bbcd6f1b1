"""Back office: open one stored packet with the HPKE private key kept outside the ingest server.

The envelope is loaded from the blob store, its signature verified with the station certificate
recorded at ingest, then decrypted (``packetformat.packet.open_packet``). The summary printed lists
fields and image sizes, never image bytes; ``--out`` exports the document as JSON with every binary
value written to its own file.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from packetformat.packet import PacketError, open_packet, parse
from sync.central.database import open_storage
from sync.central.home import CentralError, CentralHome, write_atomic
from sync.central.storage import Storage


def open_stored(
    home: CentralHome, packet_id: str, private_key: bytes, *, station_id: str | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(metadata, document) of a stored packet; :class:`CentralError` with the reason otherwise.

    Packets are keyed by (station, packet id): when two stations used one id, ``station_id`` says
    which packet is meant.
    """
    storage = open_storage(home)
    try:
        return open_in(storage, packet_id, private_key, station_id=station_id)
    finally:
        storage.close()


def open_in(
    storage: Storage, packet_id: str, private_key: bytes, *, station_id: str | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """:func:`open_stored` on an open storage (a batch keeps one for every packet)."""
    found = [p for p in storage.find_packet(packet_id) if station_id is None or p.station_id == station_id]
    if not found:
        raise CentralError(
            f"packet {packet_id} is not stored here: check the id with 'central status'",
            code="backoffice.unknown_packet",
        )
    if len(found) > 1:
        holders = ", ".join(p.station_id for p in found)
        raise CentralError(
            f"packet id {packet_id} is held by several stations ({holders}): say which with --station",
            code="central.ambiguous_packet",
        )
    stored = found[0]
    try:
        envelope = storage.envelope(stored.sha256)
    except (OSError, ValueError) as exc:
        raise CentralError(
            f"the stored envelope of {packet_id} is missing or damaged ({exc}): restore blobs/ from backup",
            code="backoffice.envelope_damaged",
        ) from exc
    cert = x509.load_der_x509_certificate(stored.cert_der)
    key = cert.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise CentralError(
            "the recorded station certificate has no EC key: the packet cannot be verified",
            code="backoffice.bad_cert",
        )
    try:
        document = open_packet(envelope, private_key, key)
    except PacketError as exc:
        raise CentralError(
            f"cannot open packet {packet_id}: {exc}; the packet is kept as received, report it to the "
            "station's technician",
            code=f"central.open.{exc.code}",
        ) from exc
    header = parse(envelope).header
    meta = {
        "packet_id": stored.packet_id,
        "station_id": stored.station_id,
        "created_at": header.created_at,
        "received_at": stored.received_at,
        "sha256": stored.sha256,
        "size": stored.size,
        "suite": header.suite,
        "signed_by": f"serial {cert.serial_number:x}",
    }
    return meta, document


def image_hash_problems(value: Any, path: str = "") -> tuple[int, list[str]]:
    """Check every ``{..., <bytes>, "sha256": hex}`` map: (images checked, paths that mismatch)."""
    checked, bad = 0, []
    if isinstance(value, dict):
        digest = value.get("sha256")
        blobs = [v for v in value.values() if isinstance(v, bytes | bytearray)]
        if isinstance(digest, str) and len(blobs) == 1:
            checked += 1
            if hashlib.sha256(blobs[0]).hexdigest() != digest.lower():
                bad.append(path or "/")
        for k, v in value.items():
            c, b = image_hash_problems(v, f"{path}/{k}")
            checked, bad = checked + c, bad + b
    elif isinstance(value, list):
        for i, v in enumerate(value):
            c, b = image_hash_problems(v, f"{path}/{i}")
            checked, bad = checked + c, bad + b
    return checked, bad


def summarise(value: Any) -> Any:
    """The document with every binary value replaced by a short description (no image bytes)."""
    if isinstance(value, dict):
        return {str(k): summarise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [summarise(v) for v in value]
    if isinstance(value, bytes | bytearray):
        return f"<{len(value)} bytes, sha256 {hashlib.sha256(value).hexdigest()[:16]}…>"
    return value


_EXT = {b"\xff\xd8": ".jpg", b"\xff\xa0": ".wsq", b"\x89P": ".png"}


def export(document: dict[str, Any], meta: dict[str, Any], out: Path) -> list[Path]:
    """Write ``document.json`` (binaries referenced by file name) and one file per binary value."""
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def walk(value: Any, path: list[str]) -> Any:
        if isinstance(value, dict):
            return {str(k): walk(v, [*path, str(k)]) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, [*path, str(i)]) for i, v in enumerate(value)]
        if isinstance(value, bytes | bytearray):
            ext = _EXT.get(bytes(value[:2]), ".bin")
            name = "_".join(p.replace("/", "_") for p in path) + ext
            target = out / name
            write_atomic(target, bytes(value), mode=0o600)
            written.append(target)
            return {"file": name, "bytes": len(value)}
        return value

    tree = walk(document, [])
    doc_path = out / "document.json"
    write_atomic(
        doc_path,
        json.dumps({"packet": meta, "document": tree}, ensure_ascii=False, indent=2, default=str).encode(),
        mode=0o600,
    )
    written.insert(0, doc_path)
    return written
