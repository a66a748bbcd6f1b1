"""The policy loop's central half, on both storage backends, and the signed documents' station half.

Policy versions only go up and a document that makes an enrollment impossible is refused; rosters and
outcomes keep rising sequence numbers; a bundle that is tampered, replayed, older, of another station or
signed by another key is refused by the station and nothing changes; every signed document and the
outcome list survive fuzzing with a PolicyError and nothing else.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import uuid
from pathlib import Path

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from packetformat.packet import uuid7
from station.audit import AuditLog
from station.home import StationHome
from station.outcomes import counts, install_outcomes, lookup, normalise_tracking, to_reenroll
from station.policy import BUILTIN, PolicyError, install_bundle, policy_in_force
from station.policy.bundle import Bundle, sign_bundle
from station.policy.parse import policy_from_document
from station.policy.signed import OUTCOMES, POLICY_BUNDLE, open_document, sign_document
from station.session import init_station
from station.wizard import tracking_number
from sync.central.home import CentralError, CentralHome
from sync.central.policy import PolicyOffice, check_outcome
from sync.central.storage import OutcomeRow, PolicyRow, Storage, VersionNotNewer
from sync.common.wire import HeartbeatAnswer


def _doc(version: int | None = None, threshold: int = 40) -> dict[str, object]:
    doc = BUILTIN.to_document()
    doc.pop("version")
    doc["modalities"]["fingers"]["threshold"] = threshold  # type: ignore[index]
    if version is not None:
        doc["version"] = version
    return doc


# -- storage, both backends ------------------------------------------------------------------------
def test_policy_versions_only_go_up(storage: Storage) -> None:
    assert storage.policy_latest() is None and storage.policy_rows() == []
    storage.policy_add(PolicyRow(1, "{}", 10.0, "cli"))
    storage.policy_add(PolicyRow(2, '{"a":1}', 11.0, "cli"))
    with pytest.raises(VersionNotNewer):
        storage.policy_add(PolicyRow(2, "{}", 12.0, "cli"))
    with pytest.raises(VersionNotNewer):
        storage.policy_add(PolicyRow(1, "{}", 12.0, "cli"))
    latest = storage.policy_latest()
    assert latest is not None and (latest.version, latest.document) == (2, '{"a":1}')
    assert [r.version for r in storage.policy_rows()] == [1, 2]
    assert storage.policy_get(1) == PolicyRow(1, "{}", 10.0, "cli") and storage.policy_get(9) is None


def test_roster_versions_rise_per_station(storage: Storage) -> None:
    assert storage.roster("uc-a") == (0, {})
    v1 = storage.roster_set("uc-a", "op-1", "allowed", 1.0)
    v2 = storage.roster_set("uc-b", "op-1", "allowed", 2.0)
    v3 = storage.roster_set("uc-a", "op-1", "disabled", 3.0)
    assert v1 < v2 < v3
    assert storage.roster("uc-a") == (v3, {"op-1": "disabled"})
    assert storage.roster("uc-b") == (v2, {"op-1": "allowed"})


def test_outcomes_replace_under_a_higher_sequence(storage: Storage) -> None:
    pid = uuid7()
    first = storage.outcome_set(
        OutcomeRow(0, pid, "uc-a", "re-enroll", "face_quality", "", "2026-12-03T10:00:00Z", "cli")
    )
    other = storage.outcome_set(
        OutcomeRow(0, uuid7(), "uc-b", "accepted", "", "", "2026-12-03T10:00:01Z", "cli")
    )
    second = storage.outcome_set(
        OutcomeRow(0, pid, "uc-a", "accepted", "", "", "2026-12-03T11:00:00Z", "cli")
    )
    assert first.seq < other.seq < second.seq
    assert [(r.packet_id, r.outcome) for r in storage.outcomes_after("uc-a", 0, 10)] == [(pid, "accepted")]
    assert storage.outcomes_after("uc-a", second.seq, 10) == []
    assert storage.outcome_seq("uc-a") == second.seq and storage.outcome_seq("uc-c") == 0


# -- central's policy office -----------------------------------------------------------------------
@pytest.fixture
def office(tmp_path: Path, storage: Storage) -> PolicyOffice:
    home = CentralHome(tmp_path / "central")
    (home.root / "keys").mkdir(parents=True)
    return PolicyOffice(home, storage)


def test_set_refuses_impossible_and_numbers_versions(office: PolicyOffice) -> None:
    assert office.current() is BUILTIN and office.bundle_for("uc-a") is None
    assert office.set_policy(_doc(threshold=70)).version == 1
    gap = _doc()
    gap["kinds"]["juvenile"]["bands"][1]["from_age"] = 4  # type: ignore[index]
    with pytest.raises(PolicyError, match="no age band holds age 3") as refused:
        office.set_policy(gap)
    assert refused.value.code == "policy.infeasible"
    with pytest.raises(PolicyError, match="versions only go up"):
        office.set_policy(_doc(version=7))
    assert office.set_policy(_doc(version=2)).version == 2
    assert office.current().fingers.threshold == 40 and office.policy(1).fingers.threshold == 70  # type: ignore[union-attr]
    assert office.versions_for("uc-a") == (2, 0)
    office.set_operator("uc-a", "op-9", "disabled")
    version, roster = office.storage.roster("uc-a")
    assert office.versions_for("uc-a") == (2, version) and roster == {"op-9": "disabled"}
    with pytest.raises(CentralError):
        office.set_operator("uc-a", "35202-1234567-1 name", "disabled")


def test_outcome_rules() -> None:
    assert check_outcome("accepted", "", "").outcome == "accepted"
    assert check_outcome("re-enroll", "other", "photo of the wrong person").note
    for bad in (
        ("re-enroll", "blurry", ""),
        ("re-enroll", "other", ""),
        ("rejected", "", ""),
        ("maybe", "", ""),
        ("accepted", "face_quality", ""),
        ("rejected", "x y", ""),
        ("re-enroll", "face_quality", "two\nlines"),
    ):
        with pytest.raises(ValueError):
            check_outcome(*bad)


# -- the station's half -------------------------------------------------------------------------------
@pytest.fixture
def station_home(tmp_path: Path) -> StationHome:
    home = StationHome(tmp_path / "station")
    init_station(home, "uc-a", demo=True).close()
    return home


def _bundle(
    key: ed25519.Ed25519PrivateKey,
    version: int,
    roster_version: int = 0,
    station: str = "uc-a",
    roster: dict[str, str] | None = None,
    threshold: int = 40,
) -> bytes:
    policy = policy_from_document({**_doc(threshold=threshold), "version": version})
    return sign_bundle(Bundle(station, 1_700_000_000, policy, roster_version, roster or {}), key)


def test_tampered_replayed_older_other_station_and_foreign_bundles_change_nothing(
    station_home: StationHome,
) -> None:
    from station.session import open_station

    key, foreign = ed25519.Ed25519PrivateKey.generate(), ed25519.Ed25519PrivateKey.generate()
    public = key.public_key()
    with open_station(station_home) as st:
        audit = AuditLog(st.store)
        assert policy_in_force(st.store).source == "builtin"
        v2 = _bundle(key, 2, 5, threshold=70)
        assert install_bundle(st.store, audit, v2, public, station_id="uc-a").changed
        before = (policy_in_force(st.store), st.store.select("SELECT count(*) FROM policy_bundles"))
        assert before[0].version == 2 and before[0].policy.fingers.threshold == 70

        def refused(data: bytes, code: str) -> None:
            with pytest.raises(PolicyError) as exc:
                install_bundle(st.store, audit, data, public, station_id="uc-a")
            assert exc.value.code == code, exc.value.message
            assert (
                policy_in_force(st.store),
                st.store.select("SELECT count(*) FROM policy_bundles"),
            ) == before

        tampered = bytearray(v2)
        tampered[len(tampered) // 2] ^= 0x01
        refused(bytes(tampered), "policy.bad_signature")
        refused(_bundle(key, 1, 5), "policy.older")
        refused(_bundle(key, 3, 4), "policy.older")  # a lower roster version is a rollback too
        refused(_bundle(key, 3, 6, station="uc-b"), "policy.other_station")
        refused(_bundle(foreign, 3, 6), "policy.bad_signature")
        refused(sign_document(OUTCOMES, {"x": 1}, key), "policy.malformed")  # another kind of document
        replay = install_bundle(st.store, audit, v2, public, station_id="uc-a")
        assert not replay.changed and policy_in_force(st.store) == before[0]
        assert install_bundle(
            st.store, audit, _bundle(key, 2, 6, roster={"op-1": "disabled"}), public, station_id="uc-a"
        ).changed
        assert policy_in_force(st.store).operator_disabled("op-1")
        events = [e.event for e in audit.entries() if e.event.startswith("policy.")]
        assert events == ["policy.installed", "policy.installed"]


def test_outcomes_are_kept_beside_the_packets_and_survive_a_restart(station_home: StationHome) -> None:
    from station.session import open_station

    key = ed25519.Ed25519PrivateKey.generate()
    with open_station(station_home) as st:
        pid = uuid7()
        st.store.add_packet(pid, b"envelope", hashlib.sha256(b"envelope").hexdigest(), 1_700_000_000.0)
        pending = lookup(st.store, tracking_number(pid).lower().replace("-", " "))
        assert pending.state == "pending" and pending.outcome is None
        doc = {
            "station_id": "uc-a",
            "after": 0,
            "more": False,
            "outcomes": [
                {
                    "seq": 3,
                    "packet_id": pid,
                    "outcome": "re-enroll",
                    "reason": "finger_quality",
                    "note": "",
                    "decided_at": "2026-12-03T10:00:00Z",
                }
            ],
        }
        stored, more = install_outcomes(
            st.store,
            AuditLog(st.store),
            sign_document(OUTCOMES, doc, key),
            key.public_key(),
            station_id="uc-a",
        )
        assert (stored, more) == (1, False)
        again = install_outcomes(
            st.store,
            AuditLog(st.store),
            sign_document(OUTCOMES, doc, key),
            key.public_key(),
            station_id="uc-a",
        )
        assert again == (0, False)  # a replayed list changes nothing
    with open_station(station_home) as st:  # a restart
        [item] = to_reenroll(st.store)
        assert (item.packet_id, item.tracking, item.reason) == (pid, tracking_number(pid), "finger_quality")
        assert lookup(st.store, tracking_number(pid)).state == "re-enroll"
        assert counts(st.store) == {"accepted": 0, "re-enroll": 1, "rejected": 0}
        with pytest.raises(Exception, match="No application with tracking number"):
            lookup(st.store, "AAAA-BBBB-CCCC")
    assert normalise_tracking("abcd efgh ijkl") == "ABCD-EFGH-IJKL"


# -- fuzzing --------------------------------------------------------------------------------------------
KEY = ed25519.Ed25519PrivateKey.generate()
GOOD_BUNDLE = sign_bundle(Bundle("uc-a", 1, policy_from_document({**_doc(), "version": 1}), 0, {}), KEY)
GOOD_OUTCOMES = sign_document(
    OUTCOMES,
    {
        "station_id": "uc-a",
        "after": 0,
        "more": False,
        "outcomes": [
            {
                "seq": 1,
                "packet_id": str(uuid.UUID(int=7 << 76)),
                "outcome": "accepted",
                "reason": "",
                "note": "",
                "decided_at": "2026-12-03T10:00:00Z",
            }
        ],
    },
    KEY,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from([GOOD_BUNDLE, GOOD_OUTCOMES]),
    st.integers(0, 10_000),
    st.integers(0, 255),
    st.integers(0, 40),
)
def test_mangled_signed_documents_raise_policy_error_only(good: bytes, at: int, value: int, cut: int) -> None:
    data = bytearray(good)
    data[at % len(data)] = value
    for candidate in (bytes(data), bytes(data[: max(0, len(data) - cut)]), good + bytes([value])):
        for kind in (POLICY_BUNDLE, OUTCOMES):
            if candidate == good:
                continue
            with pytest.raises(PolicyError):
                open_document(kind, candidate, KEY.public_key())


plain = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.text(max_size=6)
    | st.binary(max_size=6)
    | st.floats(allow_nan=False),
    lambda c: (
        st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=6) | st.integers(0, 3), c, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(plain)
def test_any_signed_payload_parses_to_a_bundle_or_a_policy_error(payload: object) -> None:
    from station.outcomes import parse_outcomes
    from station.policy.bundle import bundle_from_document

    try:
        data = cbor2.dumps(
            ["es-policy-bundle/1", cbor2.dumps(payload, canonical=True), b"\0" * 64], canonical=True
        )
    except Exception:
        return
    with pytest.raises(PolicyError):
        open_document(POLICY_BUNDLE, data, KEY.public_key())  # unsigned: refused before decoding
    if isinstance(payload, dict) and all(isinstance(k, str) for k in payload):
        for parse in (bundle_from_document, lambda d: parse_outcomes(d, station_id="uc-a")):
            with contextlib.suppress(PolicyError):
                parse(payload)


@settings(max_examples=200, deadline=None)
@given(plain)
def test_heartbeat_answers_parse_or_value_error(body: object) -> None:
    try:
        answer = HeartbeatAnswer.from_json(body)
    except ValueError:
        return
    assert HeartbeatAnswer.from_json(json.loads(json.dumps(answer.to_json()))) == answer
