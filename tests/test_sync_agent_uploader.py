"""The uploader against the wire contract over httpx.MockTransport: resume, checksums, resync,
receipt checks, and error mapping (401/403/TLS -> not authorised)."""

from __future__ import annotations

import hashlib
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from sync.agent.client import CentralUntrusted, NotAuthorised, Rejected, Transient, classify_transport_error
from sync.agent.uploader import LocalDamage, ReceiptInvalid, Uploader
from sync.common import wire
from sync.common.receipt import verify_receipt
from tests.sync_agent_helpers import MemoryCentral, Station, make_station


@pytest.fixture
def station(tmp_path: Path) -> Iterator[Station]:
    st = make_station(tmp_path)
    try:
        yield st
    finally:
        st.store.close()


@pytest.fixture
def central(station: Station) -> MemoryCentral:
    return MemoryCentral(station.station_id, station.key.public_key())


def uploader(central: MemoryCentral, station: Station, chunk: int = 4096) -> Uploader:
    return Uploader(
        central.client(),
        station.store,
        station_id=station.station_id,
        receipt_key=central.receipt_key.public_key(),
        chunk_size=chunk,
        clock=lambda: 1234.5,
    )


def test_upload_in_chunks_with_checksums_and_ack(central: MemoryCentral, station: Station) -> None:
    (pid,) = station.seal(1, size=20_000)
    queued = station.store.pending()[0]
    up = uploader(central, station, chunk=4096)
    result = up.upload(queued)
    assert result.packet_id == pid and result.resumed_from == 0
    envelope = station.store.envelope(pid)
    assert central.stored[pid] == envelope
    puts = [r for r in central.requests if r[0] == "PUT"]
    assert len(puts) == -(-len(envelope) // 4096)
    assert all(n <= 4096 for _, _, n in puts)
    row = station.store.packet(pid)
    assert row.state == "acked" and row.acked_at == 1234.5
    stored_receipt = station.store.receipt(pid)
    assert stored_receipt is not None
    rec = verify_receipt(stored_receipt, central.receipt_key.public_key())
    assert rec.sha256 == hashlib.sha256(envelope).hexdigest() and rec.size == len(envelope)


def test_resume_from_server_offset(central: MemoryCentral, station: Station) -> None:
    (pid,) = station.seal(1, size=20_000)
    envelope = station.store.envelope(pid)
    central.partial[pid] = bytearray(envelope[:10_000])  # an earlier attempt was cut here
    result = uploader(central, station, chunk=4096).upload(station.store.pending()[0])
    assert result.resumed_from == 10_000
    assert result.bytes_sent == len(envelope) - 10_000
    assert central.stored[pid] == envelope
    first_put = next(r for r in central.requests if r[0] == "PUT")
    assert first_put[2] == 4096


def test_offset_mismatch_resyncs_to_server_offset(central: MemoryCentral, station: Station) -> None:
    (pid,) = station.seal(1, size=12_000)
    envelope = station.store.envelope(pid)
    seen = {"n": 0}

    def grab_ahead(request: httpx.Request) -> httpx.Response | None:
        # After the status call, another connection's chunk landed: central is ahead of us.
        if request.method == "PUT" and seen["n"] == 0:
            seen["n"] += 1
            central.partial[pid] = bytearray(envelope[:8192])
            return httpx.Response(409, json=wire.error_body(wire.E_OFFSET_MISMATCH, "x", offset=8192))
        return None

    central.faults.append(grab_ahead)
    result = uploader(central, station, chunk=4096).upload(station.store.pending()[0])
    assert central.stored[pid] == envelope
    assert result.bytes_sent == len(envelope) - 8192
    assert station.store.packet(pid).state == "acked"


def test_already_complete_takes_central_receipt(central: MemoryCentral, station: Station) -> None:
    (pid,) = station.seal(1)
    up = uploader(central, station)
    up.upload(station.store.pending()[0])
    first = station.store.receipt(pid)
    # The ack was lost (power cut before commit): simulate a second station process asking again.
    (pid2,) = station.seal(1, created_at=1_700_000_100)
    env2 = station.store.envelope(pid2)
    central.partial[pid2] = bytearray(env2)
    central.handle(
        httpx.Request(
            "POST",
            f"https://central.test{wire.finalise_path(pid2)}",
            json={"sha256": hashlib.sha256(env2).hexdigest(), "size": len(env2)},
        )
    )
    station.store.mark_uploading(pid2)  # the earlier process had started it before the power cut
    before = len([r for r in central.requests if r[0] == "PUT"])
    up.upload(station.store.pending()[0])
    assert len([r for r in central.requests if r[0] == "PUT"]) == before  # nothing sent again
    assert station.store.packet(pid2).state == "acked"
    assert station.store.receipt(pid2) == central.receipts[pid2]
    assert station.store.receipt(pid) == first
    assert central.store_count == {pid: 1, pid2: 1}


def test_bad_receipt_signature_not_acked(central: MemoryCentral, station: Station) -> None:
    (pid,) = station.seal(1)
    wrong = ed25519.Ed25519PrivateKey.generate().public_key()
    up = Uploader(central.client(), station.store, station_id=station.station_id, receipt_key=wrong)
    with pytest.raises(ReceiptInvalid):
        up.upload(station.store.pending()[0])
    assert station.store.packet(pid).state == "uploading"
    assert station.store.receipt(pid) is None


def test_receipt_for_other_packet_not_acked(central: MemoryCentral, station: Station) -> None:
    a, b = station.seal(2)
    up = uploader(central, station)
    up.upload(station.store.pending()[0])  # a acked, its receipt known

    def swap_receipt(request: httpx.Request) -> httpx.Response | None:
        if request.url.path == wire.finalise_path(b):
            return httpx.Response(200, json={"receipt_b64": wire.b64e(central.receipts[a])})
        return None

    central.faults.append(swap_receipt)
    with pytest.raises(ReceiptInvalid):
        up.upload(station.store.pending()[0])
    assert station.store.packet(b).state == "uploading"


def test_checksum_mismatch_is_rejected_and_not_acked(central: MemoryCentral, station: Station) -> None:
    (pid,) = station.seal(1)

    def corrupt(request: httpx.Request) -> httpx.Response | None:
        if request.method == "PUT":
            return httpx.Response(400, json=wire.error_body(wire.E_CHECKSUM_MISMATCH, "bad"))
        return None

    central.faults.append(corrupt)
    with pytest.raises(Rejected) as info:
        uploader(central, station).upload(station.store.pending()[0])
    assert info.value.error == wire.E_CHECKSUM_MISMATCH
    assert station.store.packet(pid).state == "uploading"


def test_local_damage_never_sent(central: MemoryCentral, station: Station) -> None:
    station.seal(1)
    queued = station.store.pending()[0]
    from dataclasses import replace

    damaged = replace(queued, sha256="0" * 64)
    with pytest.raises(LocalDamage):
        uploader(central, station).upload(damaged)
    assert central.requests == []


@pytest.mark.parametrize("status", [401, 403])
def test_401_403_not_authorised(central: MemoryCentral, station: Station, status: int) -> None:
    station.seal(1)
    central.faults.append(lambda r: httpx.Response(status, json=wire.error_body("forbidden", "no")))
    with pytest.raises(NotAuthorised) as info:
        uploader(central, station).upload(station.store.pending()[0])
    assert info.value.message == wire.NOT_AUTHORISED_MESSAGE


def test_server_error_and_network_are_transient(central: MemoryCentral, station: Station) -> None:
    station.seal(1)
    central.faults.append(lambda r: httpx.Response(503, text="busy"))
    with pytest.raises(Transient):
        uploader(central, station).upload(station.store.pending()[0])

    def refused(request: httpx.Request) -> httpx.Response | None:
        raise httpx.ConnectError("connection refused", request=request)

    central.faults[:] = [refused]
    with pytest.raises(Transient):
        uploader(central, station).upload(station.store.pending()[0])


def test_disconnect_mid_upload_is_transient(central: MemoryCentral, station: Station) -> None:
    station.seal(1, size=20_000)

    def cut(request: httpx.Request) -> httpx.Response | None:
        if request.method == "PUT":
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            )
        return None

    central.faults.append(cut)
    with pytest.raises(Transient):
        uploader(central, station).upload(station.store.pending()[0])


def test_disconnect_before_any_answer_is_confirmed_then_not_authorised(
    central: MemoryCentral, station: Station
) -> None:
    station.seal(1)
    calls = {"n": 0}

    def tls_refusal(request: httpx.Request) -> httpx.Response | None:
        calls["n"] += 1
        raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request)

    central.faults.append(tls_refusal)
    with pytest.raises(NotAuthorised) as info:
        uploader(central, station).upload(station.store.pending()[0])
    assert info.value.code == "sync.not_authorised.tls" and calls["n"] == 2  # confirmed once, no more


def test_single_disconnect_before_any_answer_is_retried(central: MemoryCentral, station: Station) -> None:
    (pid,) = station.seal(1)
    calls = {"n": 0}

    def once(request: httpx.Request) -> httpx.Response | None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise httpx.ReadError("connection reset by peer", request=request)
        return None

    central.faults.append(once)
    uploader(central, station).upload(station.store.pending()[0])
    assert station.store.packet(pid).state == "acked"


def test_tls_alerts_map_to_not_authorised() -> None:
    for reason in (
        "TLSV13_ALERT_CERTIFICATE_REQUIRED",
        "SSLV3_ALERT_CERTIFICATE_REVOKED",
        "TLSV1_ALERT_UNKNOWN_CA",
    ):
        err = ssl.SSLError(1, f"[SSL: {reason.upper()}] {reason.lower()} (_ssl.c:2580)")
        wrapped = httpx.ReadError("read failed")
        wrapped.__cause__ = err
        assert isinstance(classify_transport_error(wrapped), NotAuthorised)
    verify = ssl.SSLCertVerificationError(1, "certificate verify failed")
    verify.verify_message = "certificate is not yet valid"
    assert classify_transport_error(httpx.ConnectError("x", request=None)).code == "sync.network"  # type: ignore[arg-type]
    wrapped = httpx.ConnectError("verify")
    wrapped.__cause__ = verify
    out = classify_transport_error(wrapped)
    assert isinstance(out, CentralUntrusted) and "date and time" in out.message
