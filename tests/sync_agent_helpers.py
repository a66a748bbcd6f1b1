"""Helpers for the sync agent's unit tests: a central that speaks the wire contract over
``httpx.MockTransport`` (in memory, real receipts, real packet verification) and a real store.

This is not a mock of the agent's logic: it implements the server side of ``docs/sync-protocol.md``
(offsets, chunk checksums, 409 on offset mismatch, finalise with ``packetformat.packet.verify`` and a
signed receipt, same packet -> same receipt) so the uploader is tested against the protocol. Faults
are injected per request by the tests (``faults``). The integration tests use the real central.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from packetformat.packet import PacketError, generate_recipient_keypair, seal, verify
from station.store import Store
from sync.agent.client import CentralClient
from sync.common import wire
from sync.common.receipt import Receipt, sign_receipt, utc_now_iso
from sync.pki.ca import CA, cert_pem
from sync.pki.issue import issue_station_cert, load_csr

Fault = Callable[[httpx.Request], httpx.Response | None]


@dataclass
class MemoryCentral:
    """Server side of the wire contract, in memory, for one station key."""

    station_id: str
    station_key: ec.EllipticCurvePublicKey
    receipt_key: ed25519.Ed25519PrivateKey = field(default_factory=ed25519.Ed25519PrivateKey.generate)
    max_bytes: int = wire.DEFAULT_MAX_PACKET_BYTES
    partial: dict[str, bytearray] = field(default_factory=dict)
    stored: dict[str, bytes] = field(default_factory=dict)
    receipts: dict[str, bytes] = field(default_factory=dict)
    requests: list[tuple[str, str, int]] = field(default_factory=list)  # method, path, body length
    faults: list[Fault] = field(default_factory=list)
    heartbeats: list[dict[str, Any]] = field(default_factory=list)
    store_count: dict[str, int] = field(default_factory=dict)
    ca: CA | None = None
    renew_days: float = 30
    renewals: int = 0

    def _json(self, status: int, body: Any) -> httpx.Response:
        return httpx.Response(status, json=body)

    def _err(self, status: int, code: str, **extra: Any) -> httpx.Response:
        return self._json(status, wire.error_body(code, code.replace("_", " "), **extra))

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append((request.method, request.url.path, len(request.content)))
        for fault in list(self.faults):
            answer = fault(request)
            if answer is not None:
                return answer
        path = request.url.path
        if path == wire.RENEW_PATH and request.method == "POST" and self.ca is not None:
            csr = load_csr(json.loads(request.content)["csr_pem"])
            cert = issue_station_cert(self.ca, csr, self.station_id, days=self.renew_days)
            self.renewals += 1
            return self._json(200, {"certificate_pem": cert_pem(cert).decode()})
        if path == wire.HEARTBEAT_PATH and request.method == "POST":
            self.heartbeats.append(json.loads(request.content))
            return httpx.Response(204)
        parts = path.split("/")
        if len(parts) < 4 or parts[1:3] != ["v1", "packets"]:
            return self._err(404, "not_found")
        pid = parts[3]
        if not wire.valid_packet_id(pid):
            return self._err(400, wire.E_BAD_PACKET_ID)
        if len(parts) == 4 and request.method == "GET":
            if pid in self.stored:
                return self._json(
                    200,
                    {
                        "offset": len(self.stored[pid]),
                        "complete": True,
                        "receipt_b64": wire.b64e(self.receipts[pid]),
                    },
                )
            return self._json(
                200, {"offset": len(self.partial.get(pid, b"")), "complete": False, "receipt_b64": None}
            )
        if len(parts) == 4 and request.method == "PUT":
            offset = int(request.url.params["offset"])
            total = int(request.headers[wire.HEADER_PACKET_SIZE])
            body = request.content
            if hashlib.sha256(body).hexdigest() != request.headers[wire.HEADER_CHUNK_SHA256]:
                return self._err(400, wire.E_CHECKSUM_MISMATCH)
            if total > self.max_bytes or offset + len(body) > self.max_bytes:
                return self._err(413, wire.E_TOO_LARGE)
            buf = self.partial.setdefault(pid, bytearray())
            if offset != len(buf):
                return self._err(409, wire.E_OFFSET_MISMATCH, offset=len(buf))
            buf.extend(body)
            return self._json(200, {"offset": len(buf)})
        if len(parts) == 5 and parts[4] == "finalise" and request.method == "POST":
            req = json.loads(request.content)
            data = bytes(self.partial.get(pid, b"")) if pid not in self.stored else self.stored[pid]
            if len(data) != req["size"]:
                return self._err(400, wire.E_INCOMPLETE)
            if hashlib.sha256(data).hexdigest() != req["sha256"]:
                return self._err(409, wire.E_CONFLICT)
            if pid in self.stored:
                return self._json(200, {"receipt_b64": wire.b64e(self.receipts[pid])})
            try:
                env = verify(data, self.station_key)
            except PacketError:
                return self._err(422, wire.E_INVALID_PACKET)
            if env.header.packet_id != pid or env.header.station_id != self.station_id:
                return self._err(422, wire.E_INVALID_PACKET)
            receipt = Receipt(pid, self.station_id, req["sha256"], len(data), utc_now_iso(), "central-test")
            self.stored[pid] = data
            self.store_count[pid] = self.store_count.get(pid, 0) + 1
            self.receipts[pid] = sign_receipt(receipt, self.receipt_key)
            self.partial.pop(pid, None)
            return self._json(200, {"receipt_b64": wire.b64e(self.receipts[pid])})
        return self._err(404, "not_found")

    def client(self) -> CentralClient:
        return CentralClient(
            httpx.Client(base_url="https://central.test", transport=httpx.MockTransport(self.handle))
        )


@dataclass
class Station:
    store: Store
    key: ec.EllipticCurvePrivateKey
    station_id: str
    hpke_public: bytes

    def seal(self, n: int = 1, *, size: int = 1000, created_at: int = 1_700_000_000) -> list[str]:
        ids: list[str] = []
        for i in range(n):
            doc = {"note": "test", "blob": secrets.token_bytes(size)}
            sp = seal(
                doc,
                station_id=self.station_id,
                identity_key=self.key,
                recipient_public_key=self.hpke_public,
                created_at=created_at + i,
            )
            self.store.add_packet(
                sp.packet_id, sp.envelope, hashlib.sha256(sp.envelope).hexdigest(), sp.created_at
            )
            ids.append(sp.packet_id)
        return ids


def make_station(tmp: Path, station_id: str = "st-001") -> Station:
    store = Store.open(tmp / "queue.db", secrets.token_bytes(32), create=True)
    key = ec.generate_private_key(ec.SECP256R1())
    _priv, pub = generate_recipient_keypair("x25519")
    return Station(store, key, station_id, pub)
