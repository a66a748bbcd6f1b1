"""Wire constants and small helpers shared by the sync agent and the central server.

See ``docs/sync-protocol.md`` for the prose contract. Everything a path, header, port offset or
size limit is named here once, so the two sides cannot drift apart.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

API_PREFIX = "/v1"
ENROLL_PATH = "/v1/enroll"
RENEW_PATH = "/v1/renew"
HEARTBEAT_PATH = "/v1/heartbeat"
PACKET_PATH = "/v1/packets/{packet_id}"
FINALISE_PATH = "/v1/packets/{packet_id}/finalise"
POLICY_PATH = "/v1/policy"
OUTCOMES_PATH = "/v1/outcomes"
BACKOFFICE_OUTCOME_PATH = "/v1/backoffice/outcomes/{packet_id}"
DASHBOARD_PATH = "/dashboard"
METRICS_PATH = "/metrics"

HEADER_CHUNK_SHA256 = "X-Chunk-SHA256"
HEADER_PACKET_SIZE = "X-Packet-Size"

DEFAULT_INGEST_PORT = 8443
ENROLL_PORT_OFFSET = 1  # the enrollment listener is the ingest port + 1
DEFAULT_MAX_PACKET_BYTES = 8 * 1024 * 1024
DEFAULT_CHUNK_BYTES = 256 * 1024
MAX_JSON_BYTES = 64 * 1024
DEFAULT_CERT_DAYS = 30
RENEW_AT_FRACTION = 2 / 3

STATION_URI_PREFIX = "urn:station:"
OPS_URI_PREFIX = "urn:ops:"
BACKOFFICE_URI_PREFIX = "urn:backoffice:"
STATION_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
OPS_NAME_RE = STATION_ID_RE

NOT_AUTHORISED_MESSAGE = "station not authorised: call a technician"

# Error codes in {"error": code, "message": text}
E_BAD_TOKEN = "bad_token"
E_BAD_CSR = "bad_csr"
E_BAD_REQUEST = "bad_request"
E_BAD_PACKET_ID = "bad_packet_id"
E_OFFSET_MISMATCH = "offset_mismatch"
E_CHECKSUM_MISMATCH = "checksum_mismatch"
E_TOO_LARGE = "too_large"
E_CONFLICT = "conflict"
E_INVALID_PACKET = "invalid_packet"
E_INCOMPLETE = "incomplete"
E_FORBIDDEN = "forbidden"
E_BAD_HEARTBEAT = "bad_heartbeat"
E_TOO_MANY_UPLOADS = "too_many_uploads"  # 429: the station's cap of unfinished uploads is reached
E_STORAGE_FULL = "storage_full"  # 507: central is out of space; retry later
E_NOT_READY = "not_ready"  # 503 from /v1/ready: database unreachable or schema not current
E_NO_POLICY = "no_policy"
E_UNKNOWN_PACKET = "unknown_packet"
E_BAD_OUTCOME = "bad_outcome"
CBOR_CONTENT_TYPE = "application/cbor"

PACKET_STATES = ("sealed", "uploading", "acked", "purged")


def packet_path(packet_id: str) -> str:
    return PACKET_PATH.format(packet_id=packet_id)


def finalise_path(packet_id: str) -> str:
    return FINALISE_PATH.format(packet_id=packet_id)


def station_uri(station_id: str) -> str:
    return STATION_URI_PREFIX + station_id


def ops_uri(name: str) -> str:
    return OPS_URI_PREFIX + name


def valid_station_id(station_id: str) -> bool:
    return bool(STATION_ID_RE.match(station_id))


def valid_packet_id(packet_id: str) -> bool:
    """A canonical UUID string (the packet format itself insists on v7)."""
    try:
        return str(uuid.UUID(packet_id)) == packet_id
    except (ValueError, AttributeError, TypeError):
        return False


def enroll_port(ingest_port: int) -> int:
    return ingest_port + ENROLL_PORT_OFFSET


def b64e(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64d(text: str) -> bytes:
    """Strict standard base64; ``ValueError`` on anything else."""
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise ValueError("not valid base64") from exc


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": code, "message": message, **extra}


@dataclass(frozen=True)
class UploadStatus:
    """Answer of ``GET /v1/packets/{id}``."""

    offset: int
    complete: bool
    receipt_b64: str | None

    def to_json(self) -> dict[str, Any]:
        return {"offset": self.offset, "complete": self.complete, "receipt_b64": self.receipt_b64}

    @classmethod
    def from_json(cls, data: Any) -> UploadStatus:
        if not isinstance(data, dict):
            raise ValueError("upload status must be an object")
        offset, complete, receipt = data.get("offset"), data.get("complete"), data.get("receipt_b64")
        if type(offset) is not int or offset < 0 or type(complete) is not bool:
            raise ValueError("upload status: bad offset or complete")
        if receipt is not None and not isinstance(receipt, str):
            raise ValueError("upload status: bad receipt_b64")
        return cls(offset, complete, receipt)


@dataclass(frozen=True)
class HeartbeatAnswer:
    """Body of central's 200 answer to a heartbeat: what the station should hold (``ops_uri`` aside).

    ``policy_version`` and ``roster_version`` are of the bundle ``GET /v1/policy`` serves this station;
    ``outcomes_seq`` is the highest outcome sequence number for its packets (``GET /v1/outcomes``).
    """

    policy_version: int
    roster_version: int
    outcomes_seq: int

    def to_json(self) -> dict[str, Any]:
        return {
            "policy_version": self.policy_version,
            "roster_version": self.roster_version,
            "outcomes_seq": self.outcomes_seq,
        }

    @classmethod
    def from_json(cls, data: Any) -> HeartbeatAnswer:
        """Strict; ``ValueError`` naming the first bad field (unknown fields are ignored)."""
        if not isinstance(data, dict):
            raise ValueError("heartbeat answer must be an object")
        values = []
        for name in ("policy_version", "roster_version", "outcomes_seq"):
            value = data.get(name)
            if type(value) is not int or not 0 <= value < 2**53:
                raise ValueError(f"heartbeat answer field {name} missing or not a count")
            values.append(value)
        return cls(*values)


@dataclass(frozen=True)
class Heartbeat:
    """Body of ``POST /v1/heartbeat``."""

    station_id: str
    sent_at: str
    counts: dict[str, int]
    oldest_pending_age_s: float | None
    last_sync_at: str | None
    disk_free_bytes: int
    devices: dict[str, str] = field(default_factory=dict)
    version: str = ""
    cert_not_after: str = ""
    audit_head: str = ""
    audit_seq: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "station_id": self.station_id,
            "sent_at": self.sent_at,
            "counts": dict(self.counts),
            "oldest_pending_age_s": self.oldest_pending_age_s,
            "last_sync_at": self.last_sync_at,
            "disk_free_bytes": self.disk_free_bytes,
            "devices": dict(self.devices),
            "version": self.version,
            "cert_not_after": self.cert_not_after,
            "audit_head": self.audit_head,
            "audit_seq": self.audit_seq,
        }

    @classmethod
    def from_json(cls, data: Any) -> Heartbeat:
        """Strict parse; ``ValueError`` naming the first bad field."""
        if not isinstance(data, dict):
            raise ValueError("heartbeat must be an object")

        def get(name: str, kinds: tuple[type, ...], optional: bool = False) -> Any:
            value = data.get(name)
            if value is None and optional:
                return None
            if isinstance(value, bool) or not isinstance(value, kinds):
                raise ValueError(f"heartbeat field {name} missing or of the wrong type")
            return value

        counts = get("counts", (dict,))
        clean_counts: dict[str, int] = {}
        for state in PACKET_STATES:
            n = counts.get(state, 0)
            if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                raise ValueError(f"heartbeat count {state} is not a non-negative integer")
            clean_counts[state] = n
        devices = get("devices", (dict,), optional=True) or {}
        clean_devices = {str(k)[:32]: str(v)[:32] for k, v in list(devices.items())[:16]}
        age = get("oldest_pending_age_s", (int, float), optional=True)
        return cls(
            station_id=get("station_id", (str,)),
            sent_at=get("sent_at", (str,)),
            counts=clean_counts,
            oldest_pending_age_s=None if age is None else float(age),
            last_sync_at=get("last_sync_at", (str,), optional=True),
            disk_free_bytes=get("disk_free_bytes", (int,)),
            devices=clean_devices,
            version=str(get("version", (str,), optional=True) or "")[:64],
            cert_not_after=str(get("cert_not_after", (str,), optional=True) or ""),
            audit_head=str(get("audit_head", (str,), optional=True) or "")[:128],
            audit_seq=int(get("audit_seq", (int,), optional=True) or 0),
        )
