"""Wire constants and small helpers shared by the sync agent and the central server.

See ``docs/sync-protocol.md`` for the prose contract. Everything a path, header, port offset or
size limit is named here once, so the two sides cannot drift apart.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from packetformat.auditchain import parse_segment

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
E_PACKET_TOO_COSTLY = "packet_too_costly"  # checking it blew the time or memory budget (422)
E_BUSY = "busy"  # every packet checker busy (503, Retry-After)
E_RATE_LIMITED = "rate_limited"  # too many attempts from one address (429, Retry-After)
E_BODY_TIMEOUT = "body_timeout"  # the request body did not arrive in time (408)
E_TOO_MANY_UPLOADS = "too_many_uploads"  # 429: the station's cap of unfinished uploads is reached
E_STORAGE_FULL = "storage_full"  # 507: central is out of space; retry later
E_STORAGE_UNAVAILABLE = "storage_unavailable"  # 503: central's database is unreachable; retry later
E_NOT_READY = "not_ready"  # 503 from /v1/ready: database unreachable or schema not current
E_NO_POLICY = "no_policy"
E_UNKNOWN_PACKET = "unknown_packet"
E_BAD_OUTCOME = "bad_outcome"
CBOR_CONTENT_TYPE = "application/cbor"

PACKET_STATES = ("sealed", "uploading", "acked", "purged")

# Heartbeat field limits (a value outside them is refused with 400 bad_heartbeat).
MAX_COUNT = 2**31 - 1
MAX_BYTES = 2**63 - 1
MAX_SEQ = 2**63 - 1
MAX_AGE_S = 100 * 365 * 86400.0
MAX_DEVICES = 16
MAX_DEVICE_TEXT = 32
MAX_VERSION_TEXT = 64
MAX_TIME_TEXT = 40
_TIME_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9:.]{5,18}(Z|[+-][0-9]{2}:?[0-9]{2})?")
_HEX_RE = re.compile(r"[0-9a-fA-F]+")
_B64_RE = re.compile(r"[A-Za-z0-9+/]+={0,2}")


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
    # The head signed with the station's identity key, and the chain entries since the head central
    # last accepted (packetformat.auditchain); empty from agents older than both.
    audit_sig: str = ""
    audit_segment: tuple[tuple[int, str, str, str, str, str], ...] = ()

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
            **({"audit_sig": self.audit_sig} if self.audit_sig else {}),
            **({"audit_segment": [list(e) for e in self.audit_segment]} if self.audit_segment else {}),
        }

    @classmethod
    def from_json(cls, data: Any) -> Heartbeat:
        """Strict parse; ``ValueError`` naming the first bad field.

        Every field has its type, range and length (:data:`HEARTBEAT_LIMITS`); nothing is clipped
        or coerced silently: a value out of range is refused, so what is stored is always sane.
        """
        if not isinstance(data, dict):
            raise ValueError("heartbeat must be an object")

        def get(name: str, kinds: tuple[type, ...], optional: bool = False) -> Any:
            value = data.get(name)
            if value is None and optional:
                return None
            if isinstance(value, bool) or not isinstance(value, kinds):
                raise ValueError(f"heartbeat field {name} missing or of the wrong type")
            return value

        def integer(name: str, value: Any, maximum: int) -> int:
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
                raise ValueError(f"heartbeat field {name} is not an integer from 0 to {maximum}")
            return value

        def text(name: str, value: Any, max_len: int, pattern: re.Pattern[str] | None = None) -> str:
            if not isinstance(value, str) or len(value) > max_len or not value.isprintable():
                raise ValueError(
                    f"heartbeat field {name} is not printable text of at most {max_len} characters"
                )
            if pattern is not None and value and not pattern.fullmatch(value):
                raise ValueError(f"heartbeat field {name} is not in the expected form")
            return value

        station_id = get("station_id", (str,))
        if not valid_station_id(station_id):
            raise ValueError("heartbeat field station_id is not a valid station id")
        counts = get("counts", (dict,))
        if len(counts) > len(PACKET_STATES) or not set(counts) <= set(PACKET_STATES):
            raise ValueError(f"heartbeat counts may only name {', '.join(PACKET_STATES)}")
        clean_counts = {
            state: integer(f"counts.{state}", counts.get(state, 0), MAX_COUNT) for state in PACKET_STATES
        }
        devices = get("devices", (dict,), optional=True) or {}
        if len(devices) > MAX_DEVICES:
            raise ValueError(f"heartbeat lists more than {MAX_DEVICES} devices")
        clean_devices = {
            text("devices key", k, MAX_DEVICE_TEXT): text("devices value", v, MAX_DEVICE_TEXT)
            for k, v in devices.items()
        }
        age = get("oldest_pending_age_s", (int, float), optional=True)
        if age is not None and not (math.isfinite(age) and 0 <= age <= MAX_AGE_S):
            raise ValueError(f"heartbeat field oldest_pending_age_s is not from 0 to {MAX_AGE_S:g} seconds")
        last_sync = get("last_sync_at", (str,), optional=True)
        return cls(
            station_id=station_id,
            sent_at=text("sent_at", get("sent_at", (str,)), MAX_TIME_TEXT, _TIME_RE),
            counts=clean_counts,
            oldest_pending_age_s=None if age is None else float(age),
            last_sync_at=None
            if last_sync is None
            else text("last_sync_at", last_sync, MAX_TIME_TEXT, _TIME_RE),
            disk_free_bytes=integer("disk_free_bytes", get("disk_free_bytes", (int,)), MAX_BYTES),
            devices=clean_devices,
            version=text("version", get("version", (str,), optional=True) or "", MAX_VERSION_TEXT),
            cert_not_after=text(
                "cert_not_after", get("cert_not_after", (str,), optional=True) or "", MAX_TIME_TEXT, _TIME_RE
            ),
            audit_head=text("audit_head", get("audit_head", (str,), optional=True) or "", 128, _HEX_RE),
            audit_seq=integer("audit_seq", get("audit_seq", (int,), optional=True) or 0, MAX_SEQ),
            audit_sig=text("audit_sig", get("audit_sig", (str,), optional=True) or "", 200, _B64_RE),
            audit_segment=tuple(parse_segment(get("audit_segment", (list,), optional=True) or [])),
        )
