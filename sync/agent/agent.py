"""The sync agent's loop: upload the queue, heartbeat, renew, and wait well.

One pass uploads every pending packet oldest first (:class:`~sync.agent.uploader.Uploader`). After
a pass the agent waits: the poll interval when all went well, an exponential backoff with full
jitter after network trouble, a long pause (10 minutes by default) when central refuses this
station ("station not authorised: call a technician"), never a tight loop. A packet central refuses
for good (invalid, conflicting) or whose receipt does not verify is audited, kept, and parked for an
hour while the others go on. Heartbeats go every ``heartbeat_seconds``; the certificate is renewed
at two thirds of its life.

Every wait is a ``threading.Event`` wait, so :meth:`Agent.stop` (SIGTERM) ends the loop at once,
and the systemd watchdog is pinged while waiting. Clock and randomness are injected for tests.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from station.errors import StationError
from station.home import PkiLayout, StationConfig
from station.policy import load_policy_key, policy_in_force
from station.sdnotify import Notifier
from station.status import certificate_of, take_status
from sync.agent.backoff import Backoff
from sync.agent.client import (
    AgentError,
    CentralClient,
    CentralUntrusted,
    ClientIdentity,
    NotAuthorised,
    Rejected,
    Transient,
    http_client,
    tls_context,
)
from sync.agent.follow import Followed, follow_central
from sync.agent.heartbeat import CENTRAL_AUDIT_SEQ, build_heartbeat, signed_audit
from sync.agent.provision import ProvisionError
from sync.agent.renew import renew_certificate, renewal_due_at
from sync.agent.uploader import LocalDamage, ReceiptInvalid, Uploader
from sync.common import wire

log = logging.getLogger("sync.agent")

MAX_CLOCK_SKEW_S = 300.0
MAX_PASS_ROUNDS = 10_000  # bounded: each round acks or parks every packet it sees


class AgentStore(Protocol):
    """What the agent uses of ``station.store.Store``."""

    def pending(self, limit: int = 100) -> list[Any]: ...
    def envelope(self, packet_id: str) -> bytes: ...
    def mark_uploading(self, packet_id: str) -> None: ...
    def record_ack(self, packet_id: str, receipt: bytes, acked_at: float) -> None: ...
    def counts(self) -> dict[str, int]: ...
    def oldest_pending_created_at(self) -> float | None: ...
    def meta_get(self, key: str) -> str | None: ...
    def meta_set(self, key: str, value: str) -> None: ...
    def transaction(self) -> contextlib.AbstractContextManager[Any]: ...
    def select(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]: ...


class AgentAudit(Protocol):
    def append(self, event: str, **fields: Any) -> Any: ...
    def head(self) -> tuple[int, str]: ...


@dataclass
class AgentSettings:
    """Tunables, from ``station.toml`` (``chunk_size``, ``heartbeat_seconds``, table ``[sync]``)."""

    chunk_size: int = wire.DEFAULT_CHUNK_BYTES
    heartbeat_seconds: float = 300.0
    poll_seconds: float = 30.0
    backoff_base: float = 2.0
    backoff_cap: float = 300.0
    not_authorised_retry_seconds: float = 600.0
    rejected_retry_seconds: float = 3600.0
    timeout_seconds: float = 30.0
    parallel_uploads: int = 4  # packets in flight at once (oldest first); 1 = strictly one by one

    @classmethod
    def from_config(
        cls, chunk_size: int, heartbeat_seconds: float, sync_table: dict[str, Any]
    ) -> AgentSettings:
        s = cls(chunk_size=int(chunk_size), heartbeat_seconds=float(heartbeat_seconds))
        for name in (
            "poll_seconds",
            "backoff_base",
            "backoff_cap",
            "not_authorised_retry_seconds",
            "rejected_retry_seconds",
            "timeout_seconds",
        ):
            if name in sync_table:
                value = sync_table[name]
                if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                    raise ValueError(f"[sync] {name} must be a positive number of seconds")
                setattr(s, name, float(value))
        if "parallel_uploads" in sync_table:
            value = sync_table["parallel_uploads"]
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 16:
                raise ValueError("[sync] parallel_uploads must be a whole number from 1 to 16")
            s.parallel_uploads = value
        if s.chunk_size <= 0 or s.heartbeat_seconds <= 0:
            raise ValueError("chunk_size and heartbeat_seconds must be positive")
        return s


@dataclass(frozen=True)
class Credentials:
    """What provisioning left in ``pki/``: the pinned CA, our certificate, central's receipt key."""

    ca: x509.Certificate
    cert_path: Path
    receipt_key: ed25519.Ed25519PublicKey
    policy_key: ed25519.Ed25519PublicKey | None = None  # pinned at provisioning (older stations: none)

    @property
    def ca_pem(self) -> bytes:
        return self.ca.public_bytes(serialization.Encoding.PEM)

    def cert_pem(self) -> bytes:
        return self.cert_path.read_bytes()

    def cert(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem())

    @classmethod
    def load(cls, pki_dir: Path) -> Credentials:
        try:
            pki = PkiLayout(pki_dir)
            ca = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
            cert_path = pki.station_cert
            x509.load_pem_x509_certificate(cert_path.read_bytes())
            key = serialization.load_pem_public_key(pki.receipt_pub.read_bytes())
        except FileNotFoundError as exc:
            raise ProvisionError(
                f"this station is not provisioned ({Path(exc.filename or '').name} missing): run"
                " 'station provision' (a technician's job)",
                code="sync.not_provisioned",
            ) from exc
        except ValueError as exc:
            raise ProvisionError(
                "the station's certificates in pki/ are damaged: provision it again", code="sync.pki_damaged"
            ) from exc
        if not isinstance(key, ed25519.Ed25519PublicKey):
            raise ProvisionError("pki/receipt.pub is not an Ed25519 key", code="sync.pki_damaged")
        try:
            policy_key = load_policy_key(pki_dir)
        except (ValueError, StationError) as exc:
            raise ProvisionError(
                "pki/policy.pub is damaged: provision again", code="sync.pki_damaged"
            ) from exc
        return cls(ca=ca, cert_path=cert_path, receipt_key=key, policy_key=policy_key)


ClientFactory = Callable[[bytes, ClientIdentity], CentralClient]


def mtls_client_factory(central_url: str, timeout: float) -> ClientFactory:
    def make(ca_pem: bytes, identity: ClientIdentity) -> CentralClient:
        return CentralClient(http_client(central_url, tls_context(ca_pem, identity), timeout=timeout))

    return make


@dataclass
class PassResult:
    """What one pass over the queue did."""

    acked: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)  # packet id -> error code
    error: AgentError | None = None
    remaining: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None and not self.refused and self.remaining == 0


class Agent:
    """Uploads the queue, sends heartbeats and renews the certificate; see the module docstring."""

    def __init__(
        self,
        *,
        store: AgentStore,
        audit: AgentAudit,
        key: ec.EllipticCurvePrivateKey,
        station_id: str,
        credentials: Credentials,
        client_factory: ClientFactory,
        settings: AgentSettings | None = None,
        config: StationConfig | None = None,
        devices: Callable[[], Mapping[str, str]] = dict,
        disk_path: Path = Path("/"),
        clock: Callable[[], float] = time.time,
        rand: Callable[[], float] = random.random,
        notifier: Notifier | None = None,
        stop_event: threading.Event | None = None,
    ) -> None:
        self.store = store
        self.audit = audit
        self.key = key
        self.station_id = station_id
        self.creds = credentials
        self.client_factory = client_factory
        self.settings = settings or AgentSettings()
        self.config = config or StationConfig(station_id=station_id)  # what the status shows of it
        self.devices = devices
        self.disk_path = disk_path
        self.clock = clock
        self.notifier = notifier or Notifier({})
        self.stop_event = stop_event or threading.Event()
        self.backoff = Backoff(self.settings.backoff_base, self.settings.backoff_cap, rand)
        self.parked: dict[str, float] = {}
        self.status_text = "starting"
        self.turns = 0
        self._client: CentralClient | None = None
        self.clock_skew: float | None = None  # station minus central, from the last answer's Date
        self._next_heartbeat = 0.0
        self.followed: Followed | None = None  # what the last heartbeat's answer brought
        self.apply_central_settings()

    # -- plumbing -----------------------------------------------------------------------------------

    @property
    def client(self) -> CentralClient:
        if self._client is None:
            identity = ClientIdentity(self.creds.cert_pem(), self.key)
            self._client = self.client_factory(self.creds.ca_pem, identity)
        return self._client

    def reset_client(self) -> None:
        if self._client is not None:
            if self._client.clock_skew is not None:
                self.clock_skew = self._client.clock_skew
            self._client.close()
        self._client = None

    def close(self) -> None:
        self.reset_client()

    def stop(self) -> None:
        self.stop_event.set()

    def set_status(self, text: str) -> None:
        if text != self.status_text:
            log.info("status: %s", text)
        self.status_text = text
        self.notifier.status(text)

    def _progress(self, packet_id: str, done: int, total: int) -> None:
        """Each chunk: keep the systemd watchdog fed during a long upload."""
        self.notifier.watchdog()

    def uploader(self) -> Uploader:
        return Uploader(
            self.client,
            self.store,
            station_id=self.station_id,
            receipt_key=self.creds.receipt_key,
            chunk_size=self.settings.chunk_size,
            clock=self.clock,
            audit=self.audit,
            on_progress=self._progress,
        )

    # -- one pass -----------------------------------------------------------------------------------

    def sync_pass(self) -> PassResult:
        """Upload every eligible pending packet, oldest first, until the queue is empty or an error.

        Up to ``parallel_uploads`` packets are in flight at once over the same connection pool (the
        round trips of one packet overlap the next one's); they are started oldest first. A packet's
        own refusal parks that packet; any other error stops the pass after the in-flight ones end.
        """
        result = PassResult()
        seen: set[str] = set()
        window = max(1, self.settings.parallel_uploads)
        with ThreadPoolExecutor(max_workers=window, thread_name_prefix="upload") as pool:
            for _round in range(MAX_PASS_ROUNDS):
                now = self.clock()
                batch = [
                    q
                    for q in self.store.pending(100)
                    if q.packet_id not in seen and self.parked.get(q.packet_id, 0.0) <= now
                ]
                if not batch or self.stop_event.is_set():
                    break
                uploader = self.uploader()
                in_flight: dict[Future[Any], Any] = {}
                queue = list(batch)
                while (queue or in_flight) and result.error is None:
                    while queue and len(in_flight) < window and not self.stop_event.is_set():
                        queued = queue.pop(0)
                        seen.add(queued.packet_id)
                        in_flight[pool.submit(uploader.upload, queued)] = queued
                    if not in_flight:
                        break
                    done, _ = wait(in_flight, timeout=5.0, return_when=FIRST_COMPLETED)
                    self.notifier.watchdog()  # fed while uploads run
                    for future in done:
                        self._settle(in_flight.pop(future), future, result, now)
                for future, queued in list(in_flight.items()):  # after an error: let them end
                    self._settle(queued, future, result, now)
                if result.error is not None:
                    if isinstance(result.error, NotAuthorised | CentralUntrusted | Transient):
                        self.reset_client()  # a fresh connection next time (nothing is in flight now)
                    break
        result.remaining = len(self.store.pending(100_000))
        return result

    def _settle(self, queued: Any, future: Future[Any], result: PassResult, now: float) -> None:
        try:
            future.result()
        except (Rejected, ReceiptInvalid, LocalDamage) as exc:
            log.warning("packet %s refused: %s", queued.packet_id, exc.code)
            self.audit.append("sync.rejected", packet_id=queued.packet_id, code=exc.code)
            self.parked[queued.packet_id] = now + self.settings.rejected_retry_seconds
            result.refused[queued.packet_id] = exc.code
            return
        except AgentError as exc:
            if result.error is None:
                result.error = exc
            return
        self.parked.pop(queued.packet_id, None)
        result.acked.append(queued.packet_id)

    # -- heartbeat and renewal ----------------------------------------------------------------------

    def send_heartbeat(self) -> AgentError | None:
        try:
            status = take_status(
                self.store,
                self.audit,
                config=self.config,
                disk_path=self.disk_path,
                certificate=certificate_of(self.creds.cert()),
                devices=self.devices(),
                now=self.clock(),
            )
            beat = signed_audit(build_heartbeat(status), self.audit, self.store, self.key)
            answer = self.client.heartbeat(beat)
            self.store.meta_set(CENTRAL_AUDIT_SEQ, str(beat.audit_seq))
            if answer is not None:
                self.followed = follow_central(
                    self.client,
                    self.store,
                    self.audit,
                    station_id=self.station_id,
                    policy_key=self.creds.policy_key,
                    answer=answer,
                )
                self.apply_central_settings()
        except AgentError as exc:
            log.info("heartbeat not sent: %s", exc.code)
            if isinstance(exc, NotAuthorised | CentralUntrusted | Transient):
                self.reset_client()
            return exc
        return None

    def apply_central_settings(self) -> None:
        """Parallel uploads and the heartbeat interval from the policy in force, once central sent one."""
        try:
            in_force = policy_in_force(self.store)
        except StationError:
            return
        if in_force.source == "central":
            self.settings.parallel_uploads = in_force.policy.settings.parallel_uploads
            self.settings.heartbeat_seconds = float(in_force.policy.settings.heartbeat_seconds)

    def maybe_renew(self) -> AgentError | None:
        """Renew the certificate once two thirds of its life have passed."""
        cert = self.creds.cert()
        now = dt.datetime.fromtimestamp(self.clock(), dt.UTC)
        if now < renewal_due_at(cert):
            return None
        if now >= cert.not_valid_after_utc:
            self.set_status("certificate expired: a technician must run 'station provision --renew'")
            return NotAuthorised(
                "this station's certificate has expired: call a technician (station provision --renew)",
                code="sync.cert_expired",
            )
        try:
            new = renew_certificate(
                self.client,
                cert_path=self.creds.cert_path,
                ca=self.creds.ca,
                key=self.key,
                station_id=self.station_id,
            )
        except AgentError as exc:
            log.warning("certificate renewal failed: %s", exc.code)
            return exc
        self.audit.append("cert.renewed", not_after=new.not_valid_after_utc.isoformat())
        log.info("certificate renewed until %s", new.not_valid_after_utc.isoformat())
        self.reset_client()
        return None

    # -- the loops ----------------------------------------------------------------------------------

    def once(self) -> PassResult:
        """One pass and one heartbeat (``station sync once``)."""
        renew_error = self.maybe_renew()
        result = self.sync_pass()
        if result.error is None and renew_error is not None and isinstance(renew_error, NotAuthorised):
            result.error = renew_error
        self.record_outcome(result)
        self.send_heartbeat()
        return result

    def record_outcome(self, result: PassResult) -> None:
        """What the kiosk's status screen shows (it never dials out): reachable, and the last outcome."""
        reachable = not isinstance(result.error, NotAuthorised | CentralUntrusted | Transient)
        try:
            self.store.meta_set("central_reachable", "1" if reachable else "0")
            self.store.meta_set("sync_status", self._describe(result)[:200])
        except StationError as exc:  # the queue is busy or closing: the next pass writes it again
            log.warning("could not record the sync outcome: %s", exc.code)

    def clock_warning(self) -> str | None:
        """A message when the station's clock differs from central's by more than 5 minutes."""
        skew = self._client.clock_skew if self._client is not None else None
        skew = self.clock_skew if skew is None else skew
        if skew is None or abs(skew) <= MAX_CLOCK_SKEW_S:
            return None
        hours = abs(skew) / 3600
        way = "ahead of" if skew > 0 else "behind"
        return (
            f"the station's clock is {hours:.1f} h {way} central's: set the date and time"
            " (call a technician if it keeps drifting)"
        )

    def describe(self, result: PassResult) -> str:
        text = self._describe(result)
        warning = self.clock_warning()
        return f"{text}; {warning}" if warning else text

    def _describe(self, result: PassResult) -> str:
        if isinstance(result.error, NotAuthorised):
            return (
                result.error.message
                if result.error.code == "sync.cert_expired"
                else wire.NOT_AUTHORISED_MESSAGE
            )
        if result.error is not None:
            return result.error.message
        if result.refused:
            return f"{len(result.refused)} packet(s) refused by central; {result.remaining} pending"
        if result.remaining:
            return f"{result.remaining} packet(s) pending"
        return "all packets delivered"

    def next_delay(self, result: PassResult) -> float:
        err = result.error
        if isinstance(err, NotAuthorised | CentralUntrusted):
            self.backoff.reset()
            return self.settings.not_authorised_retry_seconds
        if err is not None:
            return self.backoff.next_delay()
        self.backoff.reset()
        return self.settings.poll_seconds

    def wait(self, seconds: float) -> bool:
        """Wait up to ``seconds`` (pinging the watchdog); True when asked to stop."""
        interval = self.notifier.ping_interval()
        deadline = time.monotonic() + max(0.0, seconds)
        # Bounded: each turn waits at least min(interval, remaining) or ends.
        for _ in range(1_000_000):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return self.stop_event.is_set()
            step = remaining if interval is None else min(interval, remaining)
            if self.stop_event.wait(step):
                return True
            self.notifier.watchdog()
        return self.stop_event.is_set()

    def run(self, max_turns: int | None = None) -> None:
        """The daemon loop (``station sync run``), until :meth:`stop` or ``max_turns`` sync passes.

        Two timers: the next sync pass (poll interval, backoff, or the long not-authorised pause) and
        the next heartbeat. The loop sleeps until the earlier one; a heartbeat never brings the sync
        pass forward, so a refused station knocks once every ``not_authorised_retry_seconds``.
        """
        self.notifier.ready("sync agent started")
        self.set_status("sync agent started")
        next_sync = next_beat = self.clock()
        refused = False
        try:
            while not self.stop_event.is_set():
                self.notifier.watchdog()
                now = self.clock()
                if now >= next_sync:
                    if max_turns is not None and self.turns >= max_turns:
                        break
                    self.turns += 1
                    renew_error = self.maybe_renew()
                    result = self.sync_pass()
                    if result.error is None and isinstance(renew_error, NotAuthorised):
                        result.error = renew_error
                    refused = isinstance(result.error, NotAuthorised | CentralUntrusted)
                    self.set_status(self.describe(result))
                    self.record_outcome(result)
                    next_sync = self.clock() + self.next_delay(result)
                if now >= next_beat:
                    if not refused:  # a refused station's heartbeat would be refused too
                        self.send_heartbeat()
                    next_beat = self.clock() + self.settings.heartbeat_seconds
                if self.wait(min(next_sync, next_beat) - self.clock()):
                    break
        finally:
            self.notifier.stopping()
            self.set_status("sync agent stopped")
            self.close()
