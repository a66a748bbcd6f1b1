"""The agent's HTTPS client for central: mutual TLS 1.3 with the CA pinned, and the wire calls.

:func:`tls_context` builds an ``ssl.SSLContext`` that trusts only the central CA from provisioning,
speaks TLS 1.3 only and presents the station certificate. The identity key may exist only in memory
(systemd-creds hands it to the service): it is written to an anonymous memory file (``memfd``) just
long enough for OpenSSL to read it, and never reaches the disk.

:class:`CentralClient` wraps an ``httpx.Client`` (tests pass one with ``httpx.MockTransport``) and
maps every failure onto a small tree: :class:`NotAuthorised` (the certificate was refused, or the
server answered 401/403), :class:`Transient` (network, timeouts, 5xx: try again later),
:class:`OffsetMismatch` (central has another offset: resync), :class:`Rejected` (central refused the
request for good; the packet needs a person).
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import logging
import os
import ssl
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from sync.common import wire
from sync.errors import SyncError

log = logging.getLogger("sync.agent.client")

MAX_SIGNED_ANSWER = 4 * 1024 * 1024  # a policy bundle or an outcome list

# OpenSSL alert reasons that mean "the server refused our certificate".
_REFUSAL_MARKERS = (
    "CERTIFICATE_REQUIRED",
    "CERTIFICATE_REVOKED",
    "CERTIFICATE_EXPIRED",
    "CERTIFICATE_UNKNOWN",
    "UNKNOWN_CA",
    "BAD_CERTIFICATE",
    "UNSUPPORTED_CERTIFICATE",
    "ACCESS_DENIED",
    "HANDSHAKE_FAILURE",
    "DECRYPT_ERROR",
)


class AgentError(SyncError):
    """Base of the agent's errors; ``code`` is safe to log, ``message`` says what to do."""

    code = "sync.agent"


class NotAuthorised(AgentError):
    """Central refused this station's certificate (revoked, expired, unknown) or answered 401/403."""

    code = "sync.not_authorised"


class CentralUntrusted(AgentError):
    """Central's certificate does not verify against the pinned CA (or the clock is wrong)."""

    code = "sync.central_untrusted"


class Transient(AgentError):
    """Network trouble, a timeout or a server error: retry later with backoff."""

    code = "sync.transient"


class OffsetMismatch(AgentError):
    """Central holds another offset for this packet than the one we sent."""

    code = "sync.offset_mismatch"

    def __init__(self, offset: int) -> None:
        super().__init__(f"central holds {offset} bytes of this packet", code=self.code)
        self.offset = offset


class Rejected(AgentError):
    """Central refused the request for good (invalid packet, conflict, too large)."""

    code = "sync.rejected"

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(f"central refused ({status} {error}): {message}", code=f"sync.rejected.{error}")
        self.status = status
        self.error = error


def _is_disconnect(exc: BaseException) -> bool:
    """Did the server close the connection (no alert, no timeout, no refusal to connect)?"""
    for item in _chain(exc):
        if isinstance(item, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
            return True
        if isinstance(item, ConnectionResetError | BrokenPipeError | ssl.SSLEOFError):
            return True
        if isinstance(item, httpx.ConnectError | httpx.TimeoutException):
            return False
    return False


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        yield cur
        cur = cur.__cause__ or cur.__context__


def classify_transport_error(exc: BaseException) -> AgentError:
    """Map an httpx/ssl/socket error to :class:`NotAuthorised`, :class:`CentralUntrusted` or
    :class:`Transient`."""
    for item in _chain(exc):
        if isinstance(item, ssl.SSLCertVerificationError):
            text = str(item.verify_message or item)
            if "not yet valid" in text or "expired" in text:
                return CentralUntrusted(
                    "central's certificate is not valid at this station's time: check the station's date"
                    " and time, then call a technician if it is right",
                    code="sync.clock_or_cert",
                )
            return CentralUntrusted(
                "central's certificate does not match the pinned central CA: call a technician",
            )
        if isinstance(item, ssl.SSLError):
            reason = f"{getattr(item, 'reason', '') or ''} {item}".upper()
            if any(marker in reason for marker in _REFUSAL_MARKERS):
                return NotAuthorised(wire.NOT_AUTHORISED_MESSAGE)
    return Transient(f"network problem talking to central ({type(exc).__name__})", code="sync.network")


@dataclass(frozen=True)
class ClientIdentity:
    """What the agent presents: the station certificate (PEM) and its private key."""

    cert_pem: bytes
    key: ec.EllipticCurvePrivateKey


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@contextlib.contextmanager
def _secret_path(data: bytes) -> Iterator[str]:
    """A path OpenSSL can read ``data`` from, gone when the block ends: a memfd, else a 0600 temp file."""
    if hasattr(os, "memfd_create"):
        try:
            fd = os.memfd_create("station-identity", os.MFD_CLOEXEC)
        except OSError:
            fd = -1
        if fd >= 0:
            try:
                os.write(fd, data)
                yield f"/proc/self/fd/{fd}"
            finally:
                os.close(fd)
            return
    with tempfile.TemporaryDirectory(prefix="station-tls-") as tmp:
        os.chmod(tmp, 0o700)
        path = Path(tmp) / "identity.pem"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            yield str(path)
        finally:
            path.unlink(missing_ok=True)


def tls_context(ca_pem: bytes, identity: ClientIdentity | None = None) -> ssl.SSLContext:
    """TLS 1.3 only, central CA pinned (nothing else trusted), hostname checked, client cert loaded."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.check_hostname = True
    ctx.load_verify_locations(cadata=ca_pem.decode("ascii"))
    if identity is not None:
        with _secret_path(identity.cert_pem + b"\n" + _key_pem(identity.key)) as path:
            ctx.load_cert_chain(path)
    return ctx


def http_client(
    base_url: str, ctx: ssl.SSLContext, *, timeout: float = 30.0, transport: httpx.BaseTransport | None = None
) -> httpx.Client:
    """An ``httpx.Client`` for central with ``ctx``; HTTP/1.1, no proxies from the environment."""
    return httpx.Client(
        base_url=base_url.rstrip("/"),
        verify=ctx,
        timeout=httpx.Timeout(timeout, connect=min(timeout, 15.0)),
        trust_env=False,
        transport=transport,
        headers={"User-Agent": "station-sync-agent"},
    )


def _error_of(resp: httpx.Response) -> tuple[str, str, dict[str, Any]]:
    try:
        body = resp.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        return str(body.get("error", "http_error")), str(body.get("message", ""))[:300], body
    return "http_error", f"HTTP {resp.status_code}", {}


class CentralClient:
    """The sync wire calls on top of an ``httpx.Client`` (base URL = central's ingest URL)."""

    def __init__(self, http: httpx.Client, *, clock: Callable[[], float] = time.time) -> None:
        self.http = http
        self.clock = clock
        self.responses = 0  # answers received on this client (see _request)
        self.clock_skew: float | None = None  # station clock minus central's Date header, seconds

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> CentralClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            return self.http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise classify_transport_error(exc) from exc
        except (ssl.SSLError, OSError) as exc:
            raise classify_transport_error(exc) from exc

    def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            resp = self._send(method, url, **kwargs)
        except Transient as exc:
            # With TLS 1.3 a refused client certificate (revoked, expired, unknown CA) shows as a
            # disconnect on the first read, with no alert. A disconnect before this client ever got an
            # answer is tried once more on a new connection; the same again means "not authorised".
            if self.responses or not _is_disconnect(exc):
                raise
            log.info("disconnected before any answer: confirming on a new connection")
            try:
                resp = self._send(method, url, **kwargs)
            except Transient as again:
                if _is_disconnect(again):
                    raise NotAuthorised(
                        wire.NOT_AUTHORISED_MESSAGE, code="sync.not_authorised.tls"
                    ) from again
                raise
        self.responses += 1
        self._note_clock(resp)
        if resp.status_code in (401, 403):
            raise NotAuthorised(wire.NOT_AUTHORISED_MESSAGE, code=f"sync.not_authorised.{resp.status_code}")
        if resp.status_code >= 500 or resp.status_code in (408, 429):  # 408: body too slow, send again
            raise Transient(f"central answered HTTP {resp.status_code}: retrying later", code="sync.server")
        return resp

    def _note_clock(self, resp: httpx.Response) -> None:
        date = resp.headers.get("Date")
        if not date:
            return
        try:
            server = email.utils.parsedate_to_datetime(date)
        except (TypeError, ValueError):
            return
        if server.tzinfo is None:
            return
        self.clock_skew = self.clock() - server.timestamp()

    def _json(self, resp: httpx.Response) -> Any:
        try:
            return resp.json()
        except ValueError as exc:
            raise Transient("central sent an answer that is not JSON", code="sync.bad_answer") from exc

    def _refuse(self, resp: httpx.Response) -> AgentError:
        error, message, body = _error_of(resp)
        if resp.status_code == 409 and error == wire.E_OFFSET_MISMATCH:
            offset = body.get("offset")
            if type(offset) is int and offset >= 0:
                return OffsetMismatch(offset)
        return Rejected(resp.status_code, error, message)

    def status(self, packet_id: str) -> wire.UploadStatus:
        resp = self._request("GET", wire.packet_path(packet_id))
        if resp.status_code != 200:
            raise self._refuse(resp)
        try:
            return wire.UploadStatus.from_json(self._json(resp))
        except ValueError as exc:
            raise Transient("central sent a malformed upload status", code="sync.bad_answer") from exc

    def put_chunk(self, packet_id: str, offset: int, chunk: bytes, total: int) -> int:
        """Append ``chunk`` at ``offset``; the new offset central holds."""
        resp = self._request(
            "PUT",
            wire.packet_path(packet_id),
            params={"offset": str(offset)},
            content=chunk,
            headers={
                wire.HEADER_CHUNK_SHA256: hashlib.sha256(chunk).hexdigest(),
                wire.HEADER_PACKET_SIZE: str(total),
                "Content-Type": "application/octet-stream",
            },
        )
        if resp.status_code != 200:
            raise self._refuse(resp)
        body = self._json(resp)
        new = body.get("offset") if isinstance(body, dict) else None
        if type(new) is not int or new < 0 or new > total:
            raise Transient("central sent a malformed offset", code="sync.bad_answer")
        return new

    def finalise(self, packet_id: str, sha256: str, size: int) -> bytes:
        """Ask central to verify and store the packet; the receipt bytes (not yet verified)."""
        resp = self._request("POST", wire.finalise_path(packet_id), json={"sha256": sha256, "size": size})
        if resp.status_code != 200:
            raise self._refuse(resp)
        body = self._json(resp)
        receipt = body.get("receipt_b64") if isinstance(body, dict) else None
        if not isinstance(receipt, str):
            raise Transient("central's answer has no receipt", code="sync.bad_answer")
        try:
            return wire.b64d(receipt)
        except ValueError as exc:
            raise Transient("central's receipt is not base64", code="sync.bad_answer") from exc

    def heartbeat(self, beat: wire.Heartbeat) -> wire.HeartbeatAnswer | None:
        """Send a heartbeat; central's answer (the versions to hold), None from a central without one."""
        resp = self._request("POST", wire.HEARTBEAT_PATH, json=beat.to_json())
        if resp.status_code not in (200, 204):
            raise self._refuse(resp)
        if resp.status_code == 204 or not resp.content:
            return None
        try:
            return wire.HeartbeatAnswer.from_json(self._json(resp))
        except ValueError as exc:
            raise Transient("central sent a malformed heartbeat answer", code="sync.bad_answer") from exc

    def _signed(self, path: str, params: dict[str, str] | None = None) -> bytes | None:
        resp = self._request("GET", path, params=params)
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            raise self._refuse(resp)
        if len(resp.content) > MAX_SIGNED_ANSWER:
            raise Transient("central's signed answer is too large", code="sync.bad_answer")
        return bytes(resp.content)

    def policy_bundle(self) -> bytes | None:
        """This station's signed policy bundle (not yet verified); None while central has set none."""
        return self._signed(wire.POLICY_PATH)

    def outcomes(self, after: int) -> bytes:
        """The signed list of this station's outcomes after sequence ``after`` (not yet verified)."""
        body = self._signed(wire.OUTCOMES_PATH, {"after": str(int(after))})
        if body is None:
            raise Transient("central has no outcome route (an older central)", code="sync.no_outcomes")
        return body

    def renew(self, csr_pem: bytes) -> bytes:
        """Send a CSR for this station; the new certificate (PEM)."""
        resp = self._request("POST", wire.RENEW_PATH, json={"csr_pem": csr_pem.decode("ascii")})
        if resp.status_code != 200:
            raise self._refuse(resp)
        body = self._json(resp)
        cert = body.get("certificate_pem") if isinstance(body, dict) else None
        if not isinstance(cert, str):
            raise Transient("central's renewal answer has no certificate", code="sync.bad_answer")
        return cert.encode("ascii")
