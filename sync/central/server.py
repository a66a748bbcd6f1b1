"""The central ingest server (aiohttp) and its TLS contexts.

Two listeners share one event loop:

- **ingest** (``--port``, default 8443): TLS 1.3 only, a client certificate from the private CA is
  required and the CRL is checked on the leaf. The CRL file is watched: when it changes, a fresh
  ``SSLContext`` is built and swapped in for new handshakes from the server-name callback, and the
  application also refuses revoked serials on connections that were open before the revocation.
  Station routes need a ``urn:station:`` certificate; ``/dashboard`` and ``/metrics`` need
  ``urn:ops:``; the outcome route of the downstream identity system needs ``urn:backoffice:``.
- **enrollment** (``--enroll-port``, default ingest + 1): TLS 1.3, server-authenticated only, and
  nothing but ``POST /v1/enroll`` (the one-time token is the credential).

The server never loads the HPKE private key: it cannot open what it stores.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web, web_response
from aiohttp.http_exceptions import HttpProcessingError
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from packetformat.auditchain import head_signature_ok
from packetformat.packet import parse
from station.policy.rules import CaptureSummary
from sync.central.authority import Authority
from sync.central.dashboard import CSP, PAGE_SIZE, DashboardQuery, render_dashboard, render_station
from sync.central.database import Backend, is_storage_outage, open_backend
from sync.central.fleet import Thresholds
from sync.central.home import CentralError, CentralHome
from sync.central.listener import (
    ENROLL_BACKLOG,
    GuardedListener,
    ListenerLimits,
    RateLimiter,
    descriptor_budget,
)
from sync.central.metrics import Metrics
from sync.central.ops import fleet_view
from sync.central.policy import PolicyOffice, check_outcome
from sync.central.registry import retired_message
from sync.central.storage import (
    Alert,
    OffsetMismatch,
    SizeMismatch,
    Storage,
    StorageFull,
    StoredPacket,
    TooManyUploads,
)
from sync.central.verifier import VerifierPool, VerifyRefused
from sync.common.receipt import Receipt, sign_receipt, utc_now_iso
from sync.common.wire import (
    BACKOFFICE_OUTCOME_PATH,
    CBOR_CONTENT_TYPE,
    DEFAULT_INGEST_PORT,
    DEFAULT_MAX_PACKET_BYTES,
    E_BAD_CSR,
    E_BAD_HEARTBEAT,
    E_BAD_OUTCOME,
    E_BAD_PACKET_ID,
    E_BAD_REQUEST,
    E_BAD_TOKEN,
    E_BODY_TIMEOUT,
    E_BUSY,
    E_CHECKSUM_MISMATCH,
    E_CONFLICT,
    E_FORBIDDEN,
    E_INCOMPLETE,
    E_INVALID_PACKET,
    E_NO_POLICY,
    E_NOT_READY,
    E_OFFSET_MISMATCH,
    E_PACKET_TOO_COSTLY,
    E_RATE_LIMITED,
    E_STORAGE_FULL,
    E_STORAGE_UNAVAILABLE,
    E_TOO_LARGE,
    E_TOO_MANY_UPLOADS,
    E_UNKNOWN_PACKET,
    HEADER_CHUNK_SHA256,
    HEADER_PACKET_SIZE,
    MAX_JSON_BYTES,
    OUTCOMES_PATH,
    POLICY_PATH,
    Heartbeat,
    HeartbeatAnswer,
    b64d,
    b64e,
    enroll_port,
    error_body,
    valid_packet_id,
)
from sync.pki.ca import PKIError, cert_pem
from sync.pki.crl import load_crl
from sync.pki.issue import backoffice_name_of, ops_name_of, station_id_of

log = logging.getLogger("central.server")
# aiohttp answers malformed requests (bad request line, oversized headers) below the application,
# where no response signal runs, with the default ``Server: Python/3.x aiohttp/3.y``; the default
# is this module-level name (guarded by tests/test_central_hardening.py).
web_response.__dict__["SERVER_SOFTWARE"] = "central"


class _NoClientParseErrors(logging.Filter):
    """aiohttp logs a traceback for every malformed request; from strangers that is a log flood."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, HttpProcessingError)


logging.getLogger("aiohttp.server").addFilter(_NoClientParseErrors())
CRL_REFRESH_CHECK_S = 3600.0
MAINTENANCE_S = 5.0  # shared-revocation poll, partial-upload expiry, partitions ahead
_NO_STORE = {"Cache-Control": "no-store"}


def _base_context(home: CentralHome) -> ssl.SSLContext:
    """TLS 1.3 only, and no session resumption: no tickets (TLS 1.3 resumes only through tickets,
    ``num_tickets = 0`` sends none; ``OP_NO_TICKET`` also turns off the stateless kind), so every
    connection does a full handshake and its client certificate is checked against the CRL and
    its validity then, never carried over from an earlier session."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    ctx.options |= ssl.OP_NO_TICKET
    ctx.num_tickets = 0
    ctx.load_cert_chain(home.server_cert, home.server_key)
    return ctx


def ingest_context(home: CentralHome) -> ssl.SSLContext:
    """TLS 1.3, client certificate required against the CA, CRL checked on the leaf."""
    ctx = _base_context(home)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cafile=str(home.ca_cert))
    ctx.load_verify_locations(cafile=str(home.crl))
    ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    return ctx


def enroll_context(home: CentralHome) -> ssl.SSLContext:
    return _base_context(home)


def _crl_stamp(path: Path) -> tuple[int, int, int]:
    try:
        st = path.stat()
    except FileNotFoundError:
        return (0, 0, 0)
    return (st.st_ino, st.st_mtime_ns, st.st_size)


class CrlWatcher:
    """Keeps the ingest context current with the CRL file, for new connections and in the app."""

    def __init__(self, home: CentralHome) -> None:
        self.home = home
        self.stamp = _crl_stamp(home.crl)
        self.current = ingest_context(home)
        self.revoked: frozenset[int] = self._read_revoked()
        self.listener = ingest_context(home)
        self.listener.sni_callback = self._sni

    def _read_revoked(self) -> frozenset[int]:
        crl = load_crl(self.home.crl)
        return frozenset(r.serial_number for r in crl) if crl is not None else frozenset()

    def check(self) -> bool:
        """Reload if the CRL file changed; True when it did."""
        stamp = _crl_stamp(self.home.crl)
        if stamp == self.stamp:
            return False
        try:
            fresh = ingest_context(self.home)
        except (ssl.SSLError, OSError) as exc:  # a half-written file cannot happen (atomic rename)
            log.error("crl.reload_failed %s", type(exc).__name__)
            return False
        self.current, self.stamp, self.revoked = fresh, stamp, self._read_revoked()
        log.info("crl.reloaded revoked=%d", len(self.revoked))
        return True

    def _sni(self, sock: ssl.SSLObject, server_name: str | None, ctx: ssl.SSLContext) -> int | None:
        self.check()
        sock.context = self.current
        return None


@dataclass
class Peer:
    cert: x509.Certificate
    der: bytes
    station_id: str | None
    ops_name: str | None
    backoffice_name: str | None = None


class Central:
    """Request handlers bound to one home, storage and authority."""

    def __init__(
        self,
        home: CentralHome,
        *,
        backend: Backend | None = None,
        max_packet_bytes: int = DEFAULT_MAX_PACKET_BYTES,
        verifier: VerifierPool | None = None,
        limits: ServerLimits | None = None,
    ) -> None:
        self.home = home
        self.limits = limits or ServerLimits()
        self.verifier = verifier or VerifierPool()
        self._verifying: dict[str, asyncio.Lock] = {}
        self.enroll_rate = RateLimiter(self.limits.enroll_rate, self.limits.enroll_burst)
        self.backend = backend or open_backend(home)
        self.authority = Authority(home, tokens=self.backend.tokens, registry=self.backend.registry)
        self.storage: Storage = self.backend.storage
        self.max_packet_bytes = max_packet_bytes
        self.receipt_key = self.authority.receipt_key()
        self.central_id = home.central_id
        self.crl = CrlWatcher(home)
        self.thresholds = Thresholds.from_config(home.config())
        self.policy = PolicyOffice(home, self.storage)
        _ = self.policy.key  # made now (an old home gets one), not on the first station's request
        self.metrics = Metrics()
        self.metrics.attach(self.storage, lambda: self.thresholds)
        self._peer_cache: dict[bytes, Peer] = {}

    # -- helpers ------------------------------------------------------------------------------
    def _reject(self, status: int, code: str, message: str, **extra: Any) -> web.Response:
        self.metrics.rejections.labels(reason=code).inc()
        return web.json_response(error_body(code, message, **extra), status=status)

    def peer(self, request: web.Request) -> Peer | None:
        transport = request.transport
        sslobj = transport.get_extra_info("ssl_object") if transport is not None else None
        if sslobj is None:
            return None
        der = sslobj.getpeercert(binary_form=True)
        if not der:
            return None
        cached = self._peer_cache.get(der)
        if cached is None:
            cert = x509.load_der_x509_certificate(der)
            cached = Peer(cert, der, station_id_of(cert), ops_name_of(cert), backoffice_name_of(cert))
            if len(self._peer_cache) > 4096:
                self._peer_cache.clear()
            self._peer_cache[der] = cached
        self.crl.check()
        if cached.cert.serial_number in self.crl.revoked:
            return None
        return cached

    def station(self, request: web.Request) -> Peer | web.Response:
        peer = self.peer(request)
        if peer is None or peer.station_id is None:
            return self._reject(403, E_FORBIDDEN, "a valid station certificate is required")
        return peer

    def ops(self, request: web.Request) -> Peer | web.Response:
        peer = self.peer(request)
        if peer is None or peer.ops_name is None:
            return self._reject(403, E_FORBIDDEN, "an ops certificate (urn:ops:NAME) is required")
        return peer

    async def _json(self, request: web.Request) -> dict[str, Any] | None:
        if request.content_length is not None and request.content_length > MAX_JSON_BYTES:
            return None
        raw = await _read_bounded(request, MAX_JSON_BYTES, self.limits.body_timeout_s)
        return None if raw is None else json_body(raw)

    # -- enrollment listener -------------------------------------------------------------------
    async def enroll(self, request: web.Request) -> web.Response:
        """One request per connection; the per-address rate is checked before the body is read."""
        address = request.remote or "?"
        wait = self.enroll_rate.retry_after(address)
        if wait is not None:
            log.warning("enroll.rate_limited")
            response = self._reject(
                429, E_RATE_LIMITED, f"too many enrollment attempts from this address: retry in {wait:.0f} s"
            )
            response.headers["Retry-After"] = str(max(1, int(wait + 0.999)))
            response.force_close()
            return response
        response = await self._enroll(request)
        response.force_close()
        return response

    async def _enroll(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        if body is None or not all(isinstance(body.get(k), str) for k in ("token", "station_id", "csr_pem")):
            return self._reject(400, E_BAD_REQUEST, "expected JSON {token, station_id, csr_pem}")
        if await asyncio.to_thread(self.storage.station_state, body["station_id"]) == "retired":
            log.warning("enroll.retired")
            return self._reject(403, E_FORBIDDEN, retired_message(body["station_id"]))
        try:
            result = await asyncio.to_thread(
                self.authority.enroll, body["token"], body["station_id"], body["csr_pem"]
            )
        except PermissionError:
            log.warning("enroll.bad_token")
            return self._reject(401, E_BAD_TOKEN, "enrollment token unknown, already used or expired")
        except PKIError as exc:
            log.warning("enroll.bad_csr")
            return self._reject(400, E_BAD_CSR, str(exc))
        issued = x509.load_pem_x509_certificate(result.certificate_pem.encode())
        await asyncio.to_thread(
            self.storage.record_certificate,
            body["station_id"],
            issued.not_valid_after_utc.timestamp(),
            time.time(),
        )
        log.info("enroll.issued station=%s", body["station_id"])
        return web.json_response(result.__dict__)

    # -- ingest listener -----------------------------------------------------------------------
    async def renew(self, request: web.Request) -> web.Response:
        peer = self.station(request)
        if isinstance(peer, web.Response):
            return peer
        body = await self._json(request)
        if body is None or not isinstance(body.get("csr_pem"), str):
            return self._reject(400, E_BAD_REQUEST, "expected JSON {csr_pem}")
        try:
            cert = await asyncio.to_thread(self.authority.renew, peer.cert, body["csr_pem"])
        except PermissionError:
            return self._reject(403, E_FORBIDDEN, "the presented certificate is revoked")
        except PKIError as exc:
            return self._reject(400, E_BAD_CSR, str(exc))
        assert peer.station_id is not None
        await asyncio.to_thread(
            self.storage.record_certificate,
            peer.station_id,
            cert.not_valid_after_utc.timestamp(),
            time.time(),
        )
        log.info("cert.renewed station=%s", peer.station_id)
        return web.json_response({"certificate_pem": cert_pem(cert).decode()})

    def _packet_id(self, request: web.Request) -> str | None:
        pid = request.match_info["packet_id"]
        return pid if valid_packet_id(pid) else None

    async def packet_status(self, request: web.Request) -> web.Response:
        peer = self.station(request)
        if isinstance(peer, web.Response):
            return peer
        pid = self._packet_id(request)
        if pid is None:
            return self._reject(400, E_BAD_PACKET_ID, "the packet id is not a UUID")
        assert peer.station_id is not None
        stored = await asyncio.to_thread(self.storage.stored, peer.station_id, pid)
        if stored is not None:
            return web.json_response(
                {"offset": stored.size, "complete": True, "receipt_b64": b64e(stored.receipt)}
            )
        offset = await asyncio.to_thread(self.storage.upload_offset, peer.station_id, pid)
        return web.json_response({"offset": offset, "complete": False, "receipt_b64": None})

    async def put_chunk(self, request: web.Request) -> web.Response:
        peer = self.station(request)
        if isinstance(peer, web.Response):
            return peer
        assert peer.station_id is not None
        pid = self._packet_id(request)
        if pid is None:
            return self._reject(400, E_BAD_PACKET_ID, "the packet id is not a UUID")
        try:
            offset = int(request.query.get("offset", ""))
            size = int(request.headers.get(HEADER_PACKET_SIZE, ""))
        except ValueError:
            return self._reject(400, E_BAD_REQUEST, f"offset and {HEADER_PACKET_SIZE} must be integers")
        digest = request.headers.get(HEADER_CHUNK_SHA256, "").strip().lower()
        if offset < 0 or size <= 0 or len(digest) != 64:
            return self._reject(400, E_BAD_REQUEST, f"bad offset, size or {HEADER_CHUNK_SHA256}")
        if size > self.max_packet_bytes:
            return self._reject(413, E_TOO_LARGE, f"packets are limited to {self.max_packet_bytes} bytes")
        room = size - offset
        if room <= 0 or (request.content_length is not None and request.content_length > room):
            return self._reject(413, E_TOO_LARGE, "the chunk runs past the declared packet size")
        data = await _read_bounded(request, room, self.limits.body_timeout_s)
        if data is None:
            return self._reject(413, E_TOO_LARGE, "the chunk runs past the declared packet size")
        if await asyncio.to_thread(_sha256_hex, data) != digest:
            return self._reject(
                400, E_CHECKSUM_MISMATCH, "the chunk does not match its SHA-256: send it again"
            )
        try:
            new = await asyncio.to_thread(self.storage.append_chunk, peer.station_id, pid, offset, data, size)
        except OffsetMismatch as exc:
            return self._reject(409, E_OFFSET_MISMATCH, "resume from the stored offset", offset=exc.current)
        except SizeMismatch as exc:
            return self._reject(400, E_BAD_REQUEST, str(exc))
        except TooManyUploads as exc:
            log.warning("upload.too_many station=%s", peer.station_id)
            return self._reject(
                429, E_TOO_MANY_UPLOADS, f"{exc}: finish those first, or wait for them to expire"
            )
        self.metrics.bytes.inc(len(data))
        return web.json_response({"offset": new})

    async def finalise(self, request: web.Request) -> web.Response:
        peer = self.station(request)
        if isinstance(peer, web.Response):
            return peer
        assert peer.station_id is not None
        station_id = peer.station_id
        pid = self._packet_id(request)
        if pid is None:
            return self._reject(400, E_BAD_PACKET_ID, "the packet id is not a UUID")
        body = await self._json(request)
        if body is None or not isinstance(body.get("sha256"), str) or type(body.get("size")) is not int:
            return self._reject(400, E_BAD_REQUEST, "expected JSON {sha256, size}")
        sha, size = body["sha256"].lower(), int(body["size"])
        stored = await asyncio.to_thread(self.storage.stored, station_id, pid)
        if stored is not None:
            return await self._finalise_known(stored, station_id, pid, sha)
        envelope = await asyncio.to_thread(self.storage.partial, station_id, pid)
        if len(envelope) < size:
            # Another node (or request) may have stored it since, and removed the partial upload.
            stored = await asyncio.to_thread(self.storage.stored, station_id, pid)
            if stored is not None:
                return await self._finalise_known(stored, station_id, pid, sha)
            return self._reject(
                400, E_INCOMPLETE, f"only {len(envelope)} of {size} bytes received", offset=len(envelope)
            )
        problem = await self._check_envelope(envelope, peer, pid, sha, size)
        if isinstance(problem, web.Response):
            return problem
        if problem is not None:
            await asyncio.to_thread(self.storage.discard_partial, station_id, pid)
            log.warning("packet.rejected station=%s reason=%s", station_id, problem[0])
            code = E_PACKET_TOO_COSTLY if problem[0] == "too_costly" else E_INVALID_PACKET
            return self._reject(422, code, problem[1])
        received = utc_now_iso()
        receipt = sign_receipt(
            Receipt(pid, station_id, sha, size, received, self.central_id), self.receipt_key
        )
        row = StoredPacket(pid, station_id, sha, size, received, receipt, peer.der)
        final = await asyncio.to_thread(self.storage.commit_packet, row, envelope, verified=True)
        if final is not row:
            return await self._finalise_known(final, station_id, pid, sha)
        await asyncio.to_thread(self._after_store, station_id, pid)
        await asyncio.to_thread(self._check_policy, station_id, pid, envelope)
        self.metrics.packets.inc()
        log.info("packet.stored station=%s packet=%s size=%d", station_id, pid, size)
        return web.json_response({"receipt_b64": b64e(receipt)})

    def _check_policy(self, station_id: str, pid: str, envelope: bytes) -> None:
        """An ops alert when the packet's signed capture summary does not satisfy its policy version.

        The receipt is given regardless (the packet is stored): the alert is the signal. A version-1
        packet (from a station not yet updated) carries no summary and is not checked.
        """
        summary = parse(envelope, max_size=self.max_packet_bytes).header.summary
        if summary is None:
            return
        problems = self.policy.check_packet(
            CaptureSummary(
                policy_version=summary.policy_version,
                kind=summary.kind,
                age_band=summary.age_band,
                face=bool(summary.face),
                fingers_captured=summary.fingers_captured,
                finger_exceptions=summary.finger_exceptions,
                iris=summary.iris,
                signoffs=summary.signoffs,
            )
        )
        if problems:
            detail = f"packet {pid} (policy {summary.policy_version}): " + "; ".join(problems)[:300]
            self.storage.add_alert(station_id, "policy_violation", detail, time.time())
            log.error("packet.policy_violation station=%s packet=%s", station_id, pid)

    def _after_store(self, station_id: str, pid: str) -> None:
        """Touch the station; alert on it if another station already holds this packet id.

        Packets are keyed by (station, packet id), so the other station's packet is untouched; the
        alert names the later one, the one that reused an id it did not mint.
        """
        now = time.time()
        self.storage.touch(station_id, now)
        holders = [p.station_id for p in self.storage.find_packet(pid) if p.station_id != station_id]
        if holders:
            self.storage.add_alert(
                station_id,
                "packet_id_reused",
                f"packet id {pid} is already held by station {holders[0]}",
                now,
            )
            log.error("packet.id_reused station=%s", station_id)

    async def _finalise_known(
        self, stored: StoredPacket, station_id: str, pid: str, sha: str
    ) -> web.Response:
        await asyncio.to_thread(self.storage.discard_partial, station_id, pid)
        if stored.sha256 == sha:
            self.metrics.duplicates.inc()
            return web.json_response({"receipt_b64": b64e(stored.receipt)})
        detail = (
            f"packet {pid} uploaded again with other content (stored {stored.sha256[:12]}, new {sha[:12]})"
        )
        await asyncio.to_thread(self.storage.add_alert, station_id, "conflict", detail, time.time())
        self.metrics.conflicts.inc()
        log.error("packet.conflict station=%s packet=%s", station_id, pid)
        return self._reject(409, E_CONFLICT, "a different packet with this id is already stored")

    async def _check_envelope(
        self, envelope: bytes, peer: Peer, pid: str, sha: str, size: int
    ) -> tuple[str, str] | web.Response | None:
        """Size, hash, strict parse and signature, in a verifier worker (never on this loop).

        One check at a time per station: a station cannot occupy every worker with its own packets.
        """
        assert peer.station_id is not None
        der = peer.cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        lock = self._verifying.setdefault(peer.station_id, asyncio.Lock())
        try:
            async with lock:
                verified = await self.verifier.verify(
                    envelope, der, sha256=sha, size=size, max_size=self.max_packet_bytes
                )
        except VerifyRefused as exc:
            if exc.code == "verify.invalid":
                return ("signature", str(exc))
            if exc.code == "verify.busy":
                response = self._reject(503, E_BUSY, str(exc))
                response.headers["Retry-After"] = "30"
                return response
            log.warning("packet.too_costly station=%s", peer.station_id)
            return ("too_costly", f"the packet was refused: {exc}")
        finally:
            if not lock.locked() and self._verifying.get(peer.station_id) is lock:
                del self._verifying[peer.station_id]
        if verified.station_id != peer.station_id:
            return ("station_id", "the packet names another station than the certificate")
        if verified.packet_id != pid:
            return ("packet_id", "the packet id inside the packet differs from the URL")
        return None

    async def heartbeat(self, request: web.Request) -> web.Response:
        peer = self.station(request)
        if isinstance(peer, web.Response):
            return peer
        body = await self._json(request)
        try:
            hb = Heartbeat.from_json(body)
        except ValueError as exc:
            return self._reject(400, E_BAD_HEARTBEAT, str(exc))
        if hb.station_id != peer.station_id:
            return self._reject(400, E_BAD_HEARTBEAT, "the heartbeat names another station")
        if hb.audit_sig:
            try:
                signature = b64d(hb.audit_sig)
            except ValueError:
                signature = b""
            public = peer.cert.public_key()
            if not head_signature_ok(public, hb.station_id, hb.audit_seq, hb.audit_head, signature):
                return self._reject(400, E_BAD_HEARTBEAT, "the audit head's signature does not verify")
        alerts, answer = await asyncio.to_thread(self._record_heartbeat, hb)  # one hop off the loop
        for alert in alerts:
            log.error("station.alert station=%s kind=%s", alert.station_id, alert.kind)
        self.metrics.heartbeats.inc()
        return web.json_response(answer.to_json())

    def _record_heartbeat(self, hb: Heartbeat) -> tuple[list[Alert], HeartbeatAnswer]:
        alerts = self.storage.record_heartbeat(hb, time.time())
        return alerts, HeartbeatAnswer(*self.storage.heartbeat_answer(hb.station_id))

    # -- policy and outcomes -------------------------------------------------------------------
    async def policy_bundle(self, request: web.Request) -> web.Response:
        """The station's signed policy bundle (policy + its roster), CBOR."""
        peer = self.station(request)
        if isinstance(peer, web.Response):
            return peer
        assert peer.station_id is not None
        bundle = await asyncio.to_thread(self.policy.bundle_for, peer.station_id)
        if bundle is None:
            return self._reject(404, E_NO_POLICY, "central has set no policy yet: the built-in one applies")
        return web.Response(
            body=bundle, content_type=CBOR_CONTENT_TYPE, headers={"Cache-Control": "no-store"}
        )

    async def station_outcomes(self, request: web.Request) -> web.Response:
        """The outcomes of the station's packets after ``?after=SEQ``, signed, CBOR."""
        peer = self.station(request)
        if isinstance(peer, web.Response):
            return peer
        assert peer.station_id is not None
        raw = request.query.get("after", "0")
        if not raw.isascii() or not raw.isdigit() or len(raw) > 15:
            return self._reject(400, E_BAD_REQUEST, "after must be a whole number")
        body = await asyncio.to_thread(self.policy.outcomes_for, peer.station_id, int(raw))
        return web.Response(body=body, content_type=CBOR_CONTENT_TYPE, headers=_NO_STORE)

    async def backoffice_outcome(self, request: web.Request) -> web.Response:
        """The downstream identity system records what became of a packet (``urn:backoffice:`` only)."""
        peer = self.peer(request)
        if peer is None or peer.backoffice_name is None:
            return self._reject(
                403, E_FORBIDDEN, "a back-office certificate (urn:backoffice:NAME) is required"
            )
        pid = self._packet_id(request)
        if pid is None:
            return self._reject(400, E_BAD_PACKET_ID, "the packet id is not a UUID")
        body = await self._json(request)
        if body is None or set(body) - {"outcome", "reason", "note"} or "outcome" not in body:
            return self._reject(400, E_BAD_OUTCOME, "expected JSON {outcome, reason, note}")
        try:
            outcome = check_outcome(body.get("outcome"), body.get("reason", ""), body.get("note", ""))
        except ValueError as exc:
            return self._reject(400, E_BAD_OUTCOME, str(exc))
        found = await asyncio.to_thread(self.storage.find_packet, pid)
        if len(found) != 1:
            return self._reject(404, E_UNKNOWN_PACKET, "no packet with this id is stored (or several are)")
        row = await asyncio.to_thread(
            self.policy.set_outcome,
            pid,
            outcome,
            by=f"backoffice:{peer.backoffice_name}",
            station_id=found[0].station_id,
        )
        log.info("outcome.set packet=%s outcome=%s by=%s", pid, row.outcome, peer.backoffice_name)
        return web.json_response({"packet_id": pid, "seq": row.seq, "outcome": row.outcome})

    async def dashboard(self, request: web.Request) -> web.Response:
        peer = self.ops(request)
        if isinstance(peer, web.Response):
            return peer
        query = DashboardQuery.parse(dict(request.query))
        now = time.time()

        def build() -> str:
            flt = query.filter()
            view = fleet_view(
                self.storage,
                self.thresholds,
                flt,
                offset=(query.page - 1) * PAGE_SIZE,
                limit=PAGE_SIZE,
                now=now,
            )
            rollup = self.storage.district_rollup(self.thresholds, now, 1000)
            days = self.storage.ingest_per_day(now, 14)
            return render_dashboard(view, rollup, days, query, self.central_id, now=now)

        page = await asyncio.to_thread(build)
        return self._html(page)

    def _html(self, page: str, status: int = 200) -> web.Response:
        return web.Response(
            text=page,
            status=status,
            content_type="text/html",
            headers={
                "Cache-Control": "no-store",
                "Content-Security-Policy": CSP,
                "X-Content-Type-Options": "nosniff",
            },
        )

    async def dashboard_station(self, request: web.Request) -> web.Response:
        peer = self.ops(request)
        if isinstance(peer, web.Response):
            return peer
        sid = request.match_info["station_id"]
        now = time.time()
        status = await asyncio.to_thread(self.storage.station_status, self.thresholds, sid, now)
        if status is None:
            return self._html("<!doctype html><title>not found</title><p>No such station.</p>", 404)
        log_rows = await asyncio.to_thread(self.storage.station_alert_log, sid, 50)
        return self._html(render_station(status, log_rows, now=now))

    async def ops_fleet(self, request: web.Request) -> web.Response:
        """``GET /ops/v1/fleet?q=&district=&alert=&state=&page=``: the dashboard's data as JSON."""
        peer = self.ops(request)
        if isinstance(peer, web.Response):
            return peer
        query = DashboardQuery.parse(dict(request.query))
        now = time.time()

        def build() -> dict[str, Any]:
            view = fleet_view(
                self.storage,
                self.thresholds,
                query.filter(),
                offset=(query.page - 1) * PAGE_SIZE,
                limit=PAGE_SIZE,
                now=now,
            )
            out = view.to_json()
            out["districts"] = [r.to_json() for r in self.storage.district_rollup(self.thresholds, now, 1000)]
            out["ingest_per_day"] = [
                {"day": d, "packets": n} for d, n in self.storage.ingest_per_day(now, 14)
            ]
            out["page_size"] = PAGE_SIZE
            return out

        return web.json_response(await asyncio.to_thread(build), headers={"Cache-Control": "no-store"})

    async def ops_station(self, request: web.Request) -> web.Response:
        peer = self.ops(request)
        if isinstance(peer, web.Response):
            return peer
        sid = request.match_info["station_id"]
        status = await asyncio.to_thread(self.storage.station_status, self.thresholds, sid, time.time())
        if status is None:
            return web.json_response(error_body("not_found", "no such station"), status=404)
        return web.json_response(status.to_json(), headers={"Cache-Control": "no-store"})

    async def metrics_view(self, request: web.Request) -> web.Response:
        peer = self.ops(request)
        if isinstance(peer, web.Response):
            return peer
        body = await asyncio.to_thread(self.metrics.render)
        return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})

    async def ready(self, request: web.Request) -> web.Response:
        """For a load balancer: 200 when the database answers and its schema is this code's."""
        if self.peer(request) is None:
            return self._reject(403, E_FORBIDDEN, "a valid certificate from this CA is required")
        try:
            info = await asyncio.wait_for(asyncio.to_thread(self.storage.ready), timeout=10)
        except Exception as exc:
            log.error("ready.failed %s", type(exc).__name__)
            return self._reject(503, E_NOT_READY, f"the database is not usable: {type(exc).__name__}")
        return web.json_response({"ready": True, "central_id": self.central_id, "pid": os.getpid(), **info})

    async def maintenance(self) -> None:
        """Every few seconds: shared revocations into this node's CRL, upload expiry, partitions."""
        while True:
            try:
                if await asyncio.to_thread(self.authority.sync_crl):
                    log.info("crl.synced")
                    self.crl.check()
                await asyncio.to_thread(self.storage.maintain, time.time())
            except Exception:  # keep serving; the next round retries
                log.exception("maintenance.failed")
            await asyncio.sleep(MAINTENANCE_S)

    @web.middleware
    async def _timed(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Request latency per route (the route's pattern, so the label set stays small)."""
        start = time.perf_counter()
        try:
            return await handler(request)
        finally:
            resource = request.match_info.route.resource
            route = resource.canonical if resource is not None else "other"
            self.metrics.latency.labels(route=f"{request.method} {route}").observe(
                time.perf_counter() - start
            )

    # -- apps ----------------------------------------------------------------------------------
    def ingest_app(self) -> web.Application:
        app = web.Application(
            client_max_size=self.max_packet_bytes + 1024, middlewares=[_errors_as_json, self._timed]
        )
        app.on_response_prepare.append(_plain_server_header)
        app.router.add_post("/v1/renew", self.renew)
        app.router.add_post("/v1/heartbeat", self.heartbeat)
        app.router.add_get("/v1/ready", self.ready)
        app.router.add_get("/v1/packets/{packet_id}", self.packet_status)
        app.router.add_put("/v1/packets/{packet_id}", self.put_chunk)
        app.router.add_post("/v1/packets/{packet_id}/finalise", self.finalise)
        app.router.add_get(POLICY_PATH, self.policy_bundle)
        app.router.add_get(OUTCOMES_PATH, self.station_outcomes)
        app.router.add_post(BACKOFFICE_OUTCOME_PATH, self.backoffice_outcome)
        app.router.add_get("/dashboard", self.dashboard)
        app.router.add_get("/dashboard/station/{station_id}", self.dashboard_station)
        app.router.add_get("/ops/v1/fleet", self.ops_fleet)
        app.router.add_get("/ops/v1/stations/{station_id}", self.ops_station)
        app.router.add_get("/metrics", self.metrics_view)
        return app

    def enroll_app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_JSON_BYTES, middlewares=[_errors_as_json])
        app.on_response_prepare.append(_plain_server_header)
        app.router.add_post("/v1/enroll", self.enroll)
        return app

    async def crl_refresher(self) -> None:
        """Republish the CRL well before its next update, forever (cancelled at shutdown)."""
        while True:
            try:
                if await asyncio.to_thread(self.authority.refresh_crl_if_due):
                    log.info("crl.refreshed")
            except Exception:  # keep serving; the next round retries
                log.exception("crl.refresh_failed")
            await asyncio.sleep(CRL_REFRESH_CHECK_S)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_READ_BLOCK = 64 * 1024


class BodyTimeout(CentralError):
    """The client did not send its whole request body within the body read timeout."""

    code = "central.body_timeout"

    def __init__(self) -> None:
        super().__init__("the request body did not arrive in time: send it again")


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def json_body(raw: bytes) -> dict[str, Any] | None:
    """A request body as a JSON object, or None for anything else (the handler answers 400)."""
    try:  # at most 64 KiB: bounded work; nesting ends in RecursionError, huge ints in ValueError
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


async def _read_bounded(request: web.Request, limit: int, timeout_s: float) -> bytes | None:
    """The whole request body, or None as soon as it exceeds ``limit`` bytes.

    ``StreamReader.read(n)`` returns what has arrived, not ``n`` bytes: read until end of body. The
    whole body must arrive within ``timeout_s`` (:class:`BodyTimeout`, answered 408).
    """
    buf = bytearray()
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                part = await request.content.read(min(_READ_BLOCK, limit + 1 - len(buf)))
                if not part:
                    return bytes(buf)
                buf += part
                if len(buf) > limit:
                    return None
    except TimeoutError:
        raise BodyTimeout() from None


async def _plain_server_header(request: web.Request, response: web.StreamResponse) -> None:
    """No software or version in ``Server`` (aiohttp would name itself and Python)."""
    response.headers["Server"] = "central"


@web.middleware
async def _errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except BodyTimeout:
        log.warning("request.body_timeout path=%s", request.path)
        response = web.json_response(
            error_body(E_BODY_TIMEOUT, "the request body did not arrive in time: send it again"), status=408
        )
        response.force_close()
        return response
    except StorageFull:
        log.error("storage.full path=%s", request.path)
        return web.json_response(
            error_body(E_STORAGE_FULL, "central is out of storage space: keep the data and retry later"),
            status=507,
        )
    except web.HTTPException as exc:
        if exc.status >= 400:
            code = E_TOO_LARGE if exc.status == 413 else f"http_{exc.status}"
            return web.json_response(error_body(code, exc.reason), status=exc.status)
        raise
    except Exception as exc:
        if not is_storage_outage(exc):
            raise
        log.error("storage.unavailable path=%s %s", request.path, type(exc).__name__)
        return web.json_response(
            error_body(E_STORAGE_UNAVAILABLE, "central cannot reach its database: retry later"), status=503
        )


@dataclass(frozen=True)
class ServerLimits:
    """Timeouts, caps and budgets of both listeners (defaults suit a station fleet on slow links).

    ``header_timeout_s`` is aiohttp's ``keepalive_timeout``: it is armed when a connection starts
    and again after each response, and closes a connection that has not finished its request
    headers by then (an idle keep-alive connection too). Connection caps of 0 mean "from the
    descriptor budget" (:func:`sync.central.listener.descriptor_budget`).
    """

    header_timeout_s: float = 15.0
    enroll_header_timeout_s: float = 10.0
    body_timeout_s: float = 120.0
    handshake_timeout_s: float = 15.0
    ingest_max_connections: int = 0
    enroll_max_connections: int = 0
    enroll_max_per_address: int = 16
    enroll_connect_rate: float = 5.0  # new TLS connections per second per address
    enroll_connect_burst: float = 20.0
    enroll_rate: float = 0.5  # enrollment requests per second per address ...
    enroll_burst: float = 10.0  # ... after a burst of this many
    verify_workers: int = 2
    verify_time_budget_s: float = 10.0
    verify_memory_budget: int = 256 * 1024 * 1024


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = DEFAULT_INGEST_PORT
    enroll_port: int | None = None
    max_packet_bytes: int = DEFAULT_MAX_PACKET_BYTES
    limits: ServerLimits = field(default_factory=ServerLimits)


def _http_limits(keepalive_timeout: float) -> dict[str, Any]:
    """aiohttp request-handler settings: header timeout, and small request lines and headers."""
    return {
        "keepalive_timeout": keepalive_timeout,
        "max_line_size": 4096,
        "max_field_size": 8190,
        "max_headers": 64,
        "lingering_time": 2.0,
    }


async def serve(
    home: CentralHome,
    options: ServeOptions,
    *,
    ready: Callable[[str, int, int], None] | None = None,
    stop: asyncio.Event | None = None,
    sockets: tuple[socket.socket, socket.socket] | None = None,
) -> None:
    """Run both listeners until ``stop`` is set (or forever). ``ready(host, port, enroll_port)``.

    ``sockets`` are (ingest, enrollment) listening sockets bound by a parent process
    (``--workers N``): each worker process serves on the same sockets.
    """
    limits = options.limits
    ingest_cap, enroll_cap = descriptor_budget()
    verifier = VerifierPool(
        workers=limits.verify_workers,
        time_budget_s=limits.verify_time_budget_s,
        memory_budget=limits.verify_memory_budget,
    )
    central = Central(home, max_packet_bytes=options.max_packet_bytes, verifier=verifier, limits=limits)
    central.authority.refresh_crl_if_due()
    central.authority.sync_crl()  # another node may have revoked while this one was down
    central.crl.check()
    ingest_runner = web.AppRunner(
        central.ingest_app(), access_log=None, handle_signals=False, **_http_limits(limits.header_timeout_s)
    )
    enroll_runner = web.AppRunner(
        central.enroll_app(),
        access_log=None,
        handle_signals=False,
        **_http_limits(limits.enroll_header_timeout_s),
    )
    await ingest_runner.setup()
    await enroll_runner.setup()
    assert ingest_runner.server is not None and enroll_runner.server is not None
    ingest = GuardedListener(
        "ingest",
        ingest_runner.server,
        central.crl.listener,
        ListenerLimits(
            max_connections=limits.ingest_max_connections or ingest_cap,
            handshake_timeout_s=limits.handshake_timeout_s,
        ),
    )
    enroll = GuardedListener(
        "enrollment",
        enroll_runner.server,
        enroll_context(home),
        ListenerLimits(
            max_connections=limits.enroll_max_connections or enroll_cap,
            backlog=ENROLL_BACKLOG,
            handshake_timeout_s=limits.handshake_timeout_s,
            max_per_address=limits.enroll_max_per_address,
            connect_rate=limits.enroll_connect_rate,
            connect_burst=limits.enroll_connect_burst,
        ),
    )
    tasks: list[asyncio.Task[None]] = []
    try:
        if sockets is not None:
            port = await ingest.start(options.host, 0, sock=sockets[0])
            eport = await enroll.start(options.host, 0, sock=sockets[1])
        else:
            port = await ingest.start(options.host, options.port)
            if options.enroll_port is not None:
                eport = options.enroll_port
            else:  # an ephemeral ingest port gets an ephemeral enrollment port (port + 1 may be taken)
                eport = enroll_port(port) if options.port else 0
            eport = await enroll.start(options.host, eport)
        log.info(
            "listeners ingest=%d enrollment=%d max_connections=%d/%d",
            port,
            eport,
            ingest.limits.max_connections,
            enroll.limits.max_connections,
        )
        tasks.append(asyncio.create_task(central.crl_refresher()))
        tasks.append(asyncio.create_task(central.maintenance()))
        await asyncio.to_thread(verifier.warm)
        if ready is not None:
            ready(options.host, port, eport)
        await (stop.wait() if stop is not None else asyncio.Event().wait())
    finally:
        for task in tasks:
            task.cancel()
        await ingest.close()
        await enroll.close()
        await ingest_runner.cleanup()
        await enroll_runner.cleanup()
        await asyncio.to_thread(verifier.close)
        central.backend.close()
        central.authority.close()


def url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
