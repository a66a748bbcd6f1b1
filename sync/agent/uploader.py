"""Upload one sealed packet exactly once: resumable chunks, finalise, verify the receipt, ack.

The protocol (``docs/sync-protocol.md``): ask central how many bytes of the packet it holds
(``GET``), append the rest in chunks each with its SHA-256 (``PUT ?offset=N``), then ``finalise``
with the hash of the whole envelope. Central verifies the packet and answers with a signed receipt.
The receipt is checked here (signature by the central key from provisioning, and every field equal
to this packet) and stored with the ack in one transaction; a packet whose receipt does not check
stays queued. Nothing is ever deleted here.

Resuming is the normal case, not an exception: after a cut, the next attempt starts at central's
offset. A 409 offset mismatch moves to central's offset. Every loop is bounded.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric import ed25519

from sync.agent.client import AgentError, CentralClient, OffsetMismatch, Rejected, Transient
from sync.common import wire
from sync.common.receipt import Receipt, ReceiptError, verify_receipt

log = logging.getLogger("sync.agent.upload")

MAX_RESYNCS = 8  # offset mismatches tolerated in one attempt before giving up for now
MAX_ROUNDS = 3  # status -> chunks -> finalise rounds in one attempt


class QueuedLike(Protocol):
    @property
    def packet_id(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def sha256(self) -> str: ...
    @property
    def state(self) -> str: ...


class UploadStore(Protocol):
    """The part of ``station.store.Store`` the uploader uses."""

    def envelope(self, packet_id: str) -> bytes: ...
    def mark_uploading(self, packet_id: str) -> None: ...
    def record_ack(self, packet_id: str, receipt: bytes, acked_at: float) -> None: ...
    def meta_set(self, key: str, value: str) -> None: ...
    def transaction(self) -> contextlib.AbstractContextManager[Any]: ...


class AckAudit(Protocol):
    def append(self, event: str, **fields: Any) -> Any: ...


class ReceiptInvalid(AgentError):
    """Central's receipt does not verify, or names another packet: the packet stays queued."""

    code = "sync.receipt_invalid"


class LocalDamage(AgentError):
    """The queued envelope does not match its recorded hash or size: never upload it."""

    code = "sync.local_damage"


@dataclass(frozen=True)
class Uploaded:
    packet_id: str
    receipt: Receipt
    bytes_sent: int
    resumed_from: int


def iso_utc(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def check_receipt(
    data: bytes,
    public_key: ed25519.Ed25519PublicKey,
    *,
    packet_id: str,
    station_id: str,
    sha256: str,
    size: int,
) -> Receipt:
    """Verify ``data`` and that it is the receipt of exactly this packet; :class:`ReceiptInvalid` if not."""
    try:
        receipt = verify_receipt(data, public_key)
    except ReceiptError as exc:
        raise ReceiptInvalid(f"central's receipt does not verify ({exc}): the packet stays queued") from exc
    expected = (packet_id, station_id, sha256, size)
    got = (receipt.packet_id, receipt.station_id, receipt.sha256, receipt.size)
    if got != expected:
        raise ReceiptInvalid("central's receipt is for another packet or content: the packet stays queued")
    return receipt


class Uploader:
    """Uploads packets from a store to central, one at a time."""

    def __init__(
        self,
        client: CentralClient,
        store: UploadStore,
        *,
        station_id: str,
        receipt_key: ed25519.Ed25519PublicKey,
        chunk_size: int = wire.DEFAULT_CHUNK_BYTES,
        clock: Callable[[], float] = time.time,
        on_progress: Callable[[str, int, int], None] | None = None,
        audit: AckAudit | None = None,
    ) -> None:
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        self.client = client
        self.store = store
        self.station_id = station_id
        self.receipt_key = receipt_key
        self.chunk_size = chunk_size
        self.clock = clock
        self.on_progress = on_progress
        self.audit = audit

    def _ack(self, packet_id: str, data: bytes, sha: str, size: int) -> Receipt:
        receipt = check_receipt(
            data, self.receipt_key, packet_id=packet_id, station_id=self.station_id, sha256=sha, size=size
        )
        now = self.clock()
        # One transaction: the ack with its receipt, the audit entry and the last-sync time.
        with self.store.transaction():
            self.store.record_ack(packet_id, data, now)
            self.store.meta_set("last_sync_at", iso_utc(now))
            if self.audit is not None:
                self.audit.append("sync.ack", packet_id=packet_id)
        return receipt

    def upload(self, queued: QueuedLike) -> Uploaded:
        """Deliver one packet and record its ack; raises a :class:`AgentError` when it could not."""
        pid = queued.packet_id
        envelope = self.store.envelope(pid)
        size = len(envelope)
        sha = hashlib.sha256(envelope).hexdigest()
        if size != queued.size or sha != queued.sha256:
            raise LocalDamage(
                "a queued packet does not match its recorded hash: it was not sent; call a technician"
            )
        # A packet still "sealed" has never had a byte sent (it is marked uploading before the first
        # byte goes out), so its first round starts at offset 0 without asking: one round trip less
        # per packet on a slow link. A packet already "uploading" asks central what it holds, and so
        # does the first request of a new connection (its answer tells a TLS refusal from a cut link).
        never_sent = queued.state == "sealed"
        skip_status = never_sent and self.client.responses > 0
        if never_sent:
            self.store.mark_uploading(pid)

        sent = 0
        resumed_from = -1
        for _round in range(MAX_ROUNDS):
            if skip_status and _round == 0:
                status = wire.UploadStatus(offset=0, complete=False, receipt_b64=None)
            else:
                status = self.client.status(pid)
            if status.complete and status.receipt_b64:
                # Delivered before (the ack was lost, e.g. a power cut): take central's receipt.
                try:
                    data = wire.b64d(status.receipt_b64)
                except ValueError as exc:
                    raise ReceiptInvalid("central's stored receipt is not base64") from exc
                receipt = self._ack(pid, data, sha, size)
                log.info("packet %s already at central: acked (receipt %s)", pid, receipt.received_at)
                return Uploaded(pid, receipt, sent, status.offset)
            offset = status.offset
            if resumed_from < 0:
                resumed_from = offset
            if offset > size:
                raise Rejected(409, wire.E_CONFLICT, "central holds more bytes than this packet has")
            offset, n = self._send_from(pid, envelope, offset)
            sent += n
            try:
                data = self.client.finalise(pid, sha, size)
            except Rejected as exc:
                if exc.error in (wire.E_INCOMPLETE, wire.E_OFFSET_MISMATCH):
                    log.info("packet %s: central says incomplete; resyncing", pid)
                    continue
                raise
            receipt = self._ack(pid, data, sha, size)
            log.info("packet %s acked (%d bytes sent, resumed at %d)", pid, sent, max(resumed_from, 0))
            return Uploaded(pid, receipt, sent, max(resumed_from, 0))
        raise Transient(
            "central kept reporting the packet incomplete: retrying later", code="sync.incomplete"
        )

    def _send_from(self, pid: str, envelope: bytes, offset: int) -> tuple[int, int]:
        """Send chunks from ``offset`` until central holds everything; (final offset, bytes sent)."""
        size = len(envelope)
        sent = 0
        resyncs = 0
        # Bounded: each turn either advances by a chunk or spends one of MAX_RESYNCS.
        max_turns = size // self.chunk_size + 2 + MAX_RESYNCS
        for _turn in range(max_turns):
            if offset >= size:
                return offset, sent
            chunk = envelope[offset : offset + self.chunk_size]
            try:
                new = self.client.put_chunk(pid, offset, chunk, size)
            except OffsetMismatch as exc:
                resyncs += 1
                if resyncs > MAX_RESYNCS:
                    raise Transient(
                        "central's offset keeps moving: retrying later", code="sync.resync"
                    ) from exc
                log.info("packet %s: offset mismatch, central holds %d", pid, exc.offset)
                if exc.offset > size:
                    raise Rejected(409, wire.E_CONFLICT, "central holds more bytes than this packet") from exc
                offset = exc.offset
                continue
            sent += len(chunk)
            if new <= offset:
                resyncs += 1
                if resyncs > MAX_RESYNCS:
                    raise Transient(
                        "central does not take the chunks: retrying later", code="sync.no_progress"
                    )
            offset = new
            if self.on_progress is not None:
                self.on_progress(pid, offset, size)
        if offset >= size:
            return offset, sent
        raise Transient("upload made no progress: retrying later", code="sync.no_progress")
