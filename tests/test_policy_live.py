"""The policy loop end to end: the REAL central on 127.0.0.1, real stations, the real agent (``station sync
once``) and the ``central`` / ``station`` CLIs.

``central policy set|show|history|diff`` (an impossible policy is refused); a policy, a roster change
and an outcome each reach the station after one sync; a disabled operator is refused; the back-office
API takes outcomes only with a ``urn:backoffice:`` certificate and fuzzed bodies get a 4xx; a packet
whose signed summary breaks its policy is stored, acknowledged and raises an ops alert.
"""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from packetformat.packet import PacketSummary, packet_digest, parse, seal
from station.auth import OperatorDirectory, OperatorFile, Role
from station.home import StationHome
from station.outcomes import to_reenroll
from station.policy import policy_in_force
from station.policy.roster import OperatorDisabled
from station.session import open_station
from station.wizard import tracking_number
from sync.central.database import open_storage
from sync.central.home import CentralHome
from tests.sync_live import (
    Central,
    central_cli,
    commit_packets,
    make_example,
    make_station,
    provision,
    running_central,
    station_cli,
)


@pytest.fixture(scope="module")
def central(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Central]:
    with running_central(tmp_path_factory.mktemp("central") / "home") as c:
        yield c


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_example(tmp_path_factory.mktemp("example"))


def policy_file(central: Central, tmp_path: Path, name: str, **fingers: object) -> Path:
    """The policy in force at central, with the fingers settings changed, as a file for ``set``."""
    doc = json.loads(central_cli(central.home, "policy", "show", "--json").stdout)
    doc.pop("version")
    doc["modalities"]["fingers"].update(fingers)
    path = tmp_path / name
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path


def test_policy_cli_set_show_history_diff(central: Central, tmp_path: Path) -> None:
    doc = json.loads(central_cli(central.home, "policy", "show", "--json").stdout)
    before, was = doc["version"], doc["modalities"]["fingers"]["threshold"]
    out = central_cli(
        central.home, "policy", "set", str(policy_file(central, tmp_path, "p.json", threshold=55))
    )
    version = before + 1
    assert f"policy version {version} set" in out.stdout
    shown = central_cli(central.home, "policy", "show").stdout
    assert f"policy version {version}" in shown and "fingers: threshold 55, 3 attempts" in shown
    assert "ages    0-2: face not_taken, fingers not_taken, iris not_taken" in shown
    diff = central_cli(central.home, "policy", "diff", str(before), str(version)).stdout
    assert f"~ modalities.fingers.threshold: {was} -> 55" in diff and "1 change(s)" in diff
    history = central_cli(central.home, "policy", "history").stdout.splitlines()
    assert history[-1].split()[0] == str(version)
    # a gap in the child bands would leave 3-year-olds with no way to enroll: refused, nothing stored
    doc = json.loads(central_cli(central.home, "policy", "show", "--json").stdout)
    doc.pop("version")
    doc["kinds"]["juvenile"]["bands"][1]["from_age"] = 4
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc), encoding="utf-8")
    refused = central_cli(central.home, "policy", "set", str(bad), check=False)
    assert refused.returncode == 1 and "error [policy.infeasible]" in refused.stderr
    assert "no age band holds age 3" in refused.stderr
    missing = central_cli(central.home, "policy", "diff", "0", "999", check=False)
    assert missing.returncode == 1 and "no policy version 999" in missing.stderr
    notjson = tmp_path / "x.json"
    notjson.write_text("{", encoding="utf-8")
    assert (
        "error [policy.not_json]"
        in central_cli(central.home, "policy", "set", str(notjson), check=False).stderr
    )
    assert central_cli(central.home, "policy", "history").stdout.splitlines()[-1].split()[0] == str(version)


def test_policy_roster_and_outcomes_reach_the_station_after_one_sync(
    central: Central, example: Path, tmp_path: Path
) -> None:
    home = tmp_path / "st"
    make_station(home, 0, station_id="live-policy")
    provision(central, home, "live-policy")
    assert (home / "pki" / "policy.pub").is_file()  # pinned at provisioning
    assert "the built-in default" in station_cli(home, "policy", "show").stdout
    ids = commit_packets(home, example, 2)
    directory = OperatorDirectory(OperatorFile.for_home(StationHome(home)))
    directory.add("sup-1", "2580", Role.SUPERVISOR, templates=[b"t"])
    directory.add("op-1", "7391", Role.OPERATOR, templates=[b"t"], created_by="sup-1")

    central_cli(central.home, "policy", "set", str(policy_file(central, tmp_path, "p.json", threshold=77)))
    central_cli(central.home, "operator", "disable", "op-1", "--station", "live-policy")
    listed = central_cli(central.home, "operator", "list", "--station", "live-policy").stdout
    assert "op-1" in listed and "disabled" in listed
    station_cli(home, "sync", "once")  # one sync: the packets go up, the heartbeat's answer brings the rest

    with open_station(StationHome(home)) as st:
        in_force = policy_in_force(st.store)
        assert in_force.source == "central" and in_force.policy.fingers.threshold == 77
        assert in_force.operator_disabled("op-1") and not in_force.operator_disabled("sup-1")
        events = [e.event for e in st.audit.entries()]
        assert "policy.installed" in events
    shown = station_cli(home, "policy", "show").stdout
    assert "in force since" in shown and "threshold 77" in shown

    # the kiosk's login asks the same policy: op-1 is refused after its PIN, sup-1 is not
    from kiosk_ui.services import KioskServices

    cfg = StationHome(home).load_config()
    services = KioskServices(StationHome(home), cfg, matcher=lambda a, b: a == b)
    try:
        with pytest.raises(OperatorDisabled) as refused:
            services.check_pin("op-1", "7391")
        assert "disabled this operator" in refused.value.message and refused.value.urdu
        services.check_pin("sup-1", "2580")
        assert services.policy().policy.fingers.threshold == 77
    finally:
        services.close()

    # outcomes: one by the CLI, one by the back office over mutual TLS; both after one more sync
    central_cli(central.home, "outcome", "set", ids[0], "re-enroll", "--reason", "finger_quality")
    bo = tmp_path / "bo"
    central_cli(central.home, "outcome", "cert", "registry", "--out", str(bo))
    with backoffice_client(central, bo) as http:
        r = http.post(f"/v1/backoffice/outcomes/{ids[1]}", json={"outcome": "accepted"})
        assert r.status_code == 200, r.text
        assert (
            http.post(f"/v1/backoffice/outcomes/{ids[1]}", json={"outcome": "re-enroll"}).status_code == 400
        )
    station_cli(home, "sync", "once")
    status = json.loads(station_cli(home, "status", "--json").stdout)
    assert status["outcomes"] == {"accepted": 1, "re-enroll": 1, "rejected": 0}
    assert status["policy_version"] == in_force.version
    with open_station(StationHome(home)) as st:  # reopened: a restart keeps them
        [item] = to_reenroll(st.store)
        assert item.packet_id == ids[0] and item.tracking == tracking_number(ids[0])
        assert item.reason == "finger_quality"
    text = station_cli(home, "status").stdout
    assert "outcomes      accepted 1  re-enroll 1  rejected 0" in text

    # a packet sealed now records the policy version in its signed header
    [new] = commit_packets(home, example, 1)
    with open_station(StationHome(home)) as st:
        summary = parse(st.store.envelope(new)).header.summary
    assert summary is not None and summary.policy_version == in_force.version
    assert (summary.kind, summary.age_band, summary.face) == ("new", "18+", 1)


def backoffice_client(central: Central, out: Path) -> httpx.Client:
    ctx = ssl.create_default_context(cafile=str(out / "ca.crt"))
    ctx.load_cert_chain(str(out / "registry.crt"), str(out / "registry.key"))
    return httpx.Client(base_url=central.ingest_url, verify=ctx, timeout=10)


def test_backoffice_route_needs_its_certificate_and_survives_fuzzing(
    central: Central, tmp_path: Path
) -> None:
    ops = tmp_path / "ops"
    central_cli(central.home, "ops-cert", "watcher", "--out", str(ops))
    ctx = ssl.create_default_context(cafile=str(ops / "ca.crt"))
    ctx.load_cert_chain(str(ops / "watcher.crt"), str(ops / "watcher.key"))
    with httpx.Client(base_url=central.ingest_url, verify=ctx, timeout=10) as http:
        r = http.post(
            "/v1/backoffice/outcomes/0193a000-0000-7000-8000-000000000000", json={"outcome": "accepted"}
        )
        assert r.status_code == 403 and r.json()["error"] == "forbidden"
    bo = tmp_path / "bo"
    central_cli(central.home, "outcome", "cert", "registry", "--out", str(bo))
    with backoffice_client(central, bo) as http:
        unknown = http.post(
            "/v1/backoffice/outcomes/0193a000-0000-7000-8000-000000000000", json={"outcome": "accepted"}
        )
        assert unknown.status_code == 404 and unknown.json()["error"] == "unknown_packet"
        assert (
            http.post("/v1/backoffice/outcomes/not-a-uuid", json={"outcome": "accepted"}).status_code == 400
        )
        assert http.get("/v1/policy").status_code == 403  # station routes stay station-only
        assert http.get("/v1/outcomes?after=0").status_code == 403

        json_values = st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=30),
            lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=10), c, max_size=4),
            max_leaves=8,
        )

        @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
        @given(st.one_of(json_values, st.binary(max_size=200)))
        def fuzz(body: object) -> None:
            pid = "0193a000-0000-7000-8000-000000000000"
            if isinstance(body, bytes):
                r = http.post(f"/v1/backoffice/outcomes/{pid}", content=body)
            else:
                r = http.post(f"/v1/backoffice/outcomes/{pid}", json=body)
            assert r.status_code in (400, 404), (body, r.status_code, r.text)
            assert r.json()["error"] in ("bad_outcome", "unknown_packet", "bad_request")

        fuzz()


def test_station_routes_fuzzed_and_violating_packet_alerts(
    central: Central, example: Path, tmp_path: Path
) -> None:
    home = tmp_path / "st"
    make_station(home, 0, station_id="live-alert")
    provision(central, home, "live-alert")
    with open_station(StationHome(home)) as st:
        public, suite = st.central_public_key()
        # A 12-year-old's juvenile packet without fingers, its summary signed by the station itself.
        forged = PacketSummary(0, "juvenile", "10-17", 1, 0, 0, 0, 0)
        sealed = seal(
            {"forged": True},
            station_id="live-alert",
            identity_key=st.keys.identity_key(),
            recipient_public_key=public,
            suite=suite,
            summary=forged,
        )
        st.store.add_packet(sealed.packet_id, sealed.envelope, packet_digest(sealed.envelope), time.time())
    out = station_cli(home, "sync", "once").stdout
    assert "acked 1 now" in out  # the receipt is still given
    storage = open_storage(CentralHome(central.home))
    try:
        alerts = [a for a in storage.alerts() if a.station_id == "live-alert"]
    finally:
        storage.close()
    assert [a.kind for a in alerts] == ["policy_violation"]
    assert "finger" in alerts[0].detail and sealed.packet_id in alerts[0].detail

    # the station's own routes with junk: a 4xx with a code, never a 500
    from sync.agent.client import ClientIdentity, tls_context

    cert = (home / "pki" / "station.crt").read_bytes()
    with open_station(StationHome(home)) as st:
        identity = ClientIdentity(cert, st.keys.identity_key())
    ca = (home / "pki" / "ca.crt").read_bytes()
    with httpx.Client(base_url=central.ingest_url, verify=tls_context(ca, identity), timeout=10) as http:
        assert http.get("/v1/outcomes", params={"after": "0"}).status_code == 200
        for after in ("-1", "x", "1" * 40, "", "1e3", "٣"):
            r = http.get("/v1/outcomes", params={"after": after})
            assert r.status_code == 400 and r.json()["error"] == "bad_request", after
        r = http.get("/v1/policy")
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/cbor")
