"""The agent's loop over the wire contract (httpx.MockTransport): passes, parking, heartbeats,
backoff with full jitter, the slow not-authorised retry, renewal at 2/3 of life, sd_notify, stop."""

from __future__ import annotations

import datetime as dt
import random
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from station.audit import AuditLog
from station.sdnotify import Notifier
from sync.agent.agent import Agent, AgentSettings, Credentials
from sync.agent.backoff import Backoff
from sync.agent.client import CentralClient, ClientIdentity
from sync.agent.provision import write_atomic
from sync.agent.uploader import iso_utc
from sync.common import wire
from sync.pki.ca import CA, cert_pem, create_ca
from sync.pki.issue import issue_station_cert, load_csr
from tests.sync_agent_helpers import MemoryCentral, Station, make_station

NOW = float(int(time.time()) // 60 * 60)  # near real time: the memory central issues with it


class FakeTime:
    def __init__(self, start: float = NOW) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


class RecordingAgent(Agent):
    """The real agent; only its waits are recorded and advance the fake clock instead of blocking."""

    def __init__(self, *args: object, clock: FakeTime, max_waits: int, **kwargs: object) -> None:
        super().__init__(*args, clock=clock, **kwargs)  # type: ignore[arg-type]
        self.fake = clock
        self.waits: list[float] = []
        self.max_waits = max_waits

    def wait(self, seconds: float) -> bool:
        self.waits.append(seconds)
        self.fake.now += max(0.0, seconds)
        return len(self.waits) >= self.max_waits


@pytest.fixture
def station(tmp_path: Path) -> Iterator[Station]:
    st = make_station(tmp_path)
    try:
        yield st
    finally:
        st.store.close()


def station_cert(ca: CA, key: ec.EllipticCurvePrivateKey, sid: str, start: dt.datetime, days: float) -> bytes:
    from sync.agent.provision import build_csr

    csr = load_csr(build_csr(key, sid))
    cert = issue_station_cert(ca, csr, sid, not_before=start, not_after=start + dt.timedelta(days=days))
    return cert_pem(cert)


def setup(
    tmp_path: Path, station: Station, *, cert_age_days: float = 1, cert_days: float = 30
) -> tuple[MemoryCentral, Credentials, CA]:
    ca = create_ca("test CA")
    central = MemoryCentral(station.station_id, station.key.public_key(), ca=ca)
    pki = tmp_path / "pki"
    start = dt.datetime.fromtimestamp(NOW, dt.UTC) - dt.timedelta(days=cert_age_days)
    write_atomic(pki / "ca.crt", cert_pem(ca.cert))
    write_atomic(pki / "station.crt", station_cert(ca, station.key, station.station_id, start, cert_days))
    from cryptography.hazmat.primitives import serialization

    write_atomic(
        pki / "receipt.pub",
        central.receipt_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    )
    return central, Credentials.load(pki), ca


def make_agent(
    station: Station,
    central: MemoryCentral,
    creds: Credentials,
    *,
    settings: AgentSettings | None = None,
    clock: FakeTime | None = None,
    max_waits: int = 1,
    rand: random.Random | None = None,
    notifier: Notifier | None = None,
) -> RecordingAgent:
    def factory(ca_pem: bytes, identity: ClientIdentity) -> CentralClient:
        assert identity.key is station.key and b"BEGIN CERTIFICATE" in identity.cert_pem
        return central.client()

    return RecordingAgent(
        store=station.store,
        audit=AuditLog(station.store, clock=clock or FakeTime()),
        key=station.key,
        station_id=station.station_id,
        credentials=creds,
        client_factory=factory,
        settings=settings or AgentSettings(chunk_size=2048, heartbeat_seconds=300, poll_seconds=30),
        devices=lambda: {"scanner": "simulated", "camera": "missing"},
        disk_path=Path("/"),
        clock=clock or FakeTime(),
        max_waits=max_waits,
        rand=(rand or random.Random(7)).random,
        notifier=notifier,
    )


def audit_events(station: Station) -> list[tuple[str, dict[str, object]]]:
    return [(e.event, e.fields) for e in AuditLog(station.store).entries()]


# -- backoff ---------------------------------------------------------------------------------------


def test_backoff_full_jitter_bounds() -> None:
    rng = random.Random(42)
    b = Backoff(base=2.0, cap=300.0, rand=rng.random)
    delays = [b.next_delay() for _ in range(40)]
    for n, d in enumerate(delays):
        assert 0.0 <= d <= min(300.0, 2.0 * 2**n)
    assert max(delays[10:]) <= 300.0
    # Full jitter: the waits really spread over the whole range, not just near the ceiling.
    late = delays[10:]
    assert min(late) < 100.0 < max(late)
    top = Backoff(base=1.0, cap=60.0, rand=lambda: 1.0)
    assert [top.next_delay() for _ in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]
    top.reset()
    assert top.next_delay() == 1.0
    assert Backoff(base=1, cap=10, attempt=10_000).ceiling() == 10
    with pytest.raises(ValueError):
        Backoff(base=0, cap=1)


# -- passes -----------------------------------------------------------------------------------------


def test_once_acks_everything_audits_and_heartbeats(tmp_path: Path, station: Station) -> None:
    central, creds, _ = setup(tmp_path, station)
    ids = station.seal(3, size=5000)
    agent = make_agent(station, central, creds, settings=AgentSettings(parallel_uploads=1))
    result = agent.once()
    assert result.ok and result.acked == ids  # oldest first (one at a time: strictly in order)
    assert set(central.stored) == set(ids)
    assert station.store.counts()["acked"] == 3
    assert station.store.meta_get("last_sync_at") == iso_utc(NOW)
    acks = [f["packet_id"] for ev, f in audit_events(station) if ev == "sync.ack"]
    assert acks == ids
    (beat,) = central.heartbeats
    parsed = wire.Heartbeat.from_json(beat)
    assert parsed.station_id == station.station_id
    assert parsed.counts == {"sealed": 0, "uploading": 0, "acked": 3, "purged": 0}
    assert parsed.oldest_pending_age_s is None and parsed.last_sync_at == iso_utc(NOW)
    assert parsed.devices == {"scanner": "simulated", "camera": "missing"}
    assert parsed.audit_seq == 3 and len(parsed.audit_head) == 64
    assert parsed.cert_not_after == iso_utc(NOW + 29 * 86400)
    assert parsed.disk_free_bytes > 0


def test_refused_packet_is_kept_parked_and_others_go_on(tmp_path: Path, station: Station) -> None:
    central, creds, _ = setup(tmp_path, station)
    good1 = station.seal(1, created_at=1_700_000_000)[0]
    # A packet signed by another key: central refuses it for good (422).
    other_key = ec.generate_private_key(ec.SECP256R1())
    bad = Station(station.store, other_key, station.station_id, station.hpke_public).seal(
        1, created_at=1_700_000_001
    )[0]
    good2 = station.seal(1, created_at=1_700_000_002)[0]
    clock = FakeTime()
    agent = make_agent(station, central, creds, clock=clock)
    result = agent.sync_pass()
    assert sorted(result.acked) == sorted([good1, good2])  # in flight together: any order
    assert result.refused == {bad: "sync.rejected.invalid_packet"}
    assert not result.ok and result.remaining == 1
    assert station.store.packet(bad).state == "uploading"  # kept, never deleted
    assert ("sync.rejected", {"packet_id": bad, "code": "sync.rejected.invalid_packet"}) in audit_events(
        station
    )
    before = len(central.requests)
    again = agent.sync_pass()
    assert again.refused == {} and len(central.requests) == before  # parked: not retried at once
    clock.now += agent.settings.rejected_retry_seconds + 1
    assert agent.sync_pass().refused == {bad: "sync.rejected.invalid_packet"}


def test_not_authorised_waits_long_and_never_spins(tmp_path: Path, station: Station) -> None:
    central, creds, _ = setup(tmp_path, station)
    station.seal(2)
    central.faults.append(lambda r: httpx.Response(403, json=wire.error_body("forbidden", "revoked")))
    settings = AgentSettings(
        heartbeat_seconds=60, poll_seconds=30, not_authorised_retry_seconds=600, parallel_uploads=1
    )
    agent = make_agent(station, central, creds, settings=settings, max_waits=25)
    agent.run()
    assert agent.status_text == "sync agent stopped"
    # 25 waits over 10 heartbeat periods each; the sync pass is attempted once per 600 s only.
    gets = [r for r in central.requests if r[0] == "GET"]
    elapsed = sum(agent.waits)
    assert elapsed >= 600 * 2
    assert len(gets) <= elapsed / 600 + 1
    assert central.heartbeats == []  # a refused station does not hammer the heartbeat either
    assert station.store.counts()["uploading"] == 1 and station.store.counts()["acked"] == 0


def test_parallel_window_acks_everything_once(tmp_path: Path, station: Station) -> None:
    central, creds, _ = setup(tmp_path, station)
    ids = station.seal(9, size=5000)
    agent = make_agent(station, central, creds, settings=AgentSettings(parallel_uploads=4))
    result = agent.once()
    assert result.ok and sorted(result.acked) == sorted(ids) and len(result.acked) == 9
    assert set(central.stored) == set(ids)
    acks = [f["packet_id"] for ev, f in audit_events(station) if ev == "sync.ack"]
    assert sorted(acks) == sorted(ids)  # each ack audited once, from worker threads


def test_parallel_window_when_refused_still_never_spins(tmp_path: Path, station: Station) -> None:
    central, creds, _ = setup(tmp_path, station)
    station.seal(6)
    central.faults.append(lambda r: httpx.Response(403, json=wire.error_body("forbidden", "revoked")))
    settings = AgentSettings(
        heartbeat_seconds=60, poll_seconds=30, not_authorised_retry_seconds=600, parallel_uploads=4
    )
    agent = make_agent(station, central, creds, settings=settings, max_waits=25)
    agent.run()
    gets = [r for r in central.requests if r[0] == "GET"]
    elapsed = sum(agent.waits)
    assert len(gets) <= (elapsed / 600 + 1) * 4  # at most one window per slow retry
    assert station.store.counts()["acked"] == 0 and station.store.counts()["uploading"] <= 4


def test_transient_errors_back_off_with_jitter_then_recover(tmp_path: Path, station: Station) -> None:
    central, creds, _ = setup(tmp_path, station)
    (pid,) = station.seal(1)
    fails = {"n": 0}

    def flaky(request: httpx.Request) -> httpx.Response | None:
        if fails["n"] < 6 and request.method == "GET":
            fails["n"] += 1
            raise httpx.ConnectError("connection refused", request=request)
        return None

    central.faults.append(flaky)
    settings = AgentSettings(heartbeat_seconds=10_000, poll_seconds=30, backoff_base=2, backoff_cap=20)
    agent = make_agent(station, central, creds, settings=settings, max_waits=8)
    agent.run()
    retry_waits = agent.waits[:6]
    for n, w in enumerate(retry_waits):
        assert 0 <= w <= min(20, 2 * 2**n) + 1e-9
    assert station.store.packet(pid).state == "acked"
    assert agent.waits[6] == pytest.approx(30)  # back to the poll interval after success
    assert agent.backoff.attempt == 0


def test_renewal_at_two_thirds_of_life(tmp_path: Path, station: Station) -> None:
    central, creds, _ = setup(tmp_path, station, cert_age_days=19, cert_days=30)
    agent = make_agent(station, central, creds)
    assert agent.maybe_renew() is None and central.renewals == 0  # 19/30 < 2/3
    agent.fake.now += 2 * 86400  # 21/30 > 2/3
    old = creds.cert()
    assert agent.maybe_renew() is None
    assert central.renewals == 1
    new = creds.cert()
    assert new.serial_number != old.serial_number
    assert new.not_valid_after_utc > old.not_valid_after_utc
    assert any(ev == "cert.renewed" for ev, _ in audit_events(station))


def test_expired_certificate_is_reported_not_renewed(tmp_path: Path, station: Station) -> None:
    central, creds, _ = setup(tmp_path, station, cert_age_days=31, cert_days=30)
    agent = make_agent(station, central, creds)
    err = agent.maybe_renew()
    assert err is not None and err.code == "sync.cert_expired"
    assert central.renewals == 0
    assert "provision --renew" in agent.status_text


def test_renewed_certificate_for_other_key_is_refused(tmp_path: Path, station: Station) -> None:
    central, creds, ca = setup(tmp_path, station, cert_age_days=25, cert_days=30)
    before = creds.cert_path.read_bytes()

    def wrong_cert(request: httpx.Request) -> httpx.Response | None:
        if request.url.path == wire.RENEW_PATH:
            from sync.agent.provision import build_csr

            other = ec.generate_private_key(ec.SECP256R1())
            cert = issue_station_cert(ca, load_csr(build_csr(other, station.station_id)), station.station_id)
            return httpx.Response(200, json={"certificate_pem": cert_pem(cert).decode()})
        return None

    central.faults.append(wrong_cert)
    agent = make_agent(station, central, creds)
    err = agent.maybe_renew()
    assert err is not None and err.code == "provision.bad_cert"
    assert creds.cert_path.read_bytes() == before


# -- run loop: sd_notify and stop ------------------------------------------------------------------


def test_run_notifies_systemd_and_stops_on_event(tmp_path: Path, station: Station) -> None:
    central, creds, _ = setup(tmp_path, station)
    station.seal(2)
    sock_path = tmp_path / "notify.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(sock_path))
    server.settimeout(10)
    notifier = Notifier({"NOTIFY_SOCKET": str(sock_path), "WATCHDOG_USEC": "100000"})
    settings = AgentSettings(heartbeat_seconds=3600, poll_seconds=3600)
    stop = threading.Event()

    def factory(ca_pem: bytes, identity: ClientIdentity) -> CentralClient:
        return central.client()

    agent = Agent(
        store=station.store,
        audit=AuditLog(station.store),
        key=station.key,
        station_id=station.station_id,
        credentials=creds,
        client_factory=factory,
        settings=settings,
        clock=FakeTime(),
        notifier=notifier,
        stop_event=stop,
    )
    thread = threading.Thread(target=agent.run, daemon=True)
    thread.start()
    messages: list[str] = []
    try:
        # Bounded: read until two watchdog pings arrived during the long (3600 s) wait.
        for _ in range(200):
            messages.append(server.recv(4096).decode())
            if sum(m == "WATCHDOG=1" for m in messages) >= 2:
                break
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()
    for _ in range(10):
        try:
            server.settimeout(0.5)
            messages.append(server.recv(4096).decode())
        except TimeoutError:
            break
    server.close()
    assert messages[0].startswith("READY=1")
    assert "STATUS=all packets delivered" in messages
    assert "STOPPING=1" in messages
    assert station.store.counts()["acked"] == 2
    assert len(central.heartbeats) == 1


def test_settings_from_config() -> None:
    s = AgentSettings.from_config(1024, 120, {"poll_seconds": 5, "backoff_cap": 60})
    assert (s.chunk_size, s.heartbeat_seconds, s.poll_seconds, s.backoff_cap) == (1024, 120, 5, 60)
    with pytest.raises(ValueError):
        AgentSettings.from_config(1024, 120, {"poll_seconds": -1})
    with pytest.raises(ValueError):
        AgentSettings.from_config(0, 120, {})


def test_credentials_missing_says_provision(tmp_path: Path) -> None:
    from sync.agent.provision import ProvisionError

    with pytest.raises(ProvisionError) as info:
        Credentials.load(tmp_path / "pki")
    assert "station provision" in info.value.message


def test_certificate_helper_is_valid_x509(tmp_path: Path, station: Station) -> None:
    _, creds, ca = setup(tmp_path, station)
    cert = creds.cert()
    assert isinstance(cert, x509.Certificate)
    cert.verify_directly_issued_by(ca.cert)


def test_clock_off_by_a_day_is_reported(tmp_path: Path, station: Station) -> None:
    import email.utils

    central, creds, _ = setup(tmp_path, station)
    station.seal(1)
    day_behind = email.utils.formatdate(NOW - 86400, usegmt=True)  # central's clock, a day before ours

    def with_date(request: httpx.Request) -> httpx.Response | None:
        central.faults.clear()
        answer = central.handle(request)
        central.faults.append(with_date)
        answer.headers["Date"] = day_behind
        return answer

    central.faults.append(with_date)

    def factory(ca_pem: bytes, identity: ClientIdentity) -> CentralClient:
        client = central.client()
        client.clock = lambda: NOW
        return client

    agent = make_agent(station, central, creds)
    agent.client_factory = factory
    result = agent.once()
    assert result.ok  # the upload itself works: receipts do not depend on the station clock
    warning = agent.clock_warning()
    assert warning is not None and "24.0 h ahead of central's" in warning and "date and time" in warning
    assert warning in agent.describe(result)
