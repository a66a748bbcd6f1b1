"""The audit log: hash chain, edits/deletions/reorders detected, no PII accepted."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from station.audit import AuditError, AuditLog
from station.cli import cli
from station.home import StationHome
from station.session import init_station, open_station
from station.store import Store

KEY = bytes(range(32))


@pytest.fixture
def log(tmp_path: Path) -> AuditLog:
    store = Store.open(tmp_path / "q.db", KEY, create=True)
    audit = AuditLog(store)
    for n in range(6):
        audit.append("enrollment.commit", packet=f"pkt-{n}", operator="op-7", fingers=10)
    yield audit
    store.close()


def raw(audit: AuditLog, *sql: str) -> None:
    """What an attacker with the key could do: drop the append-only triggers and edit."""
    with audit.store.transaction() as conn:
        conn.execute("DROP TRIGGER IF EXISTS audit_no_update")
        conn.execute("DROP TRIGGER IF EXISTS audit_no_delete")
        for statement in sql:
            conn.execute(statement)


def test_chain_verifies_and_head_moves(log: AuditLog) -> None:
    result = log.verify()
    assert result.ok and result.entries == 6
    seq, head = log.head()
    assert seq == 6 and head == result.head
    log.append("auth.login", operator="op-7")
    assert log.head()[0] == 7 and log.head()[1] != head and log.verify().ok


def test_append_only_triggers(log: AuditLog) -> None:
    import sqlcipher3

    with log.store.transaction() as conn, pytest.raises(sqlcipher3.IntegrityError, match="append-only"):
        conn.execute("UPDATE audit SET event = 'x'")
    with log.store.transaction() as conn, pytest.raises(sqlcipher3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM audit WHERE seq = 3")


def test_edit_is_detected(log: AuditLog) -> None:
    raw(log, """UPDATE audit SET fields = '{"fingers":9,"operator":"op-7","packet":"pkt-2"}' WHERE seq = 3""")
    result = log.verify()
    assert not result.ok and result.first_bad_seq == 3 and "modified" in result.problem


def test_deletion_in_the_middle_is_detected(log: AuditLog) -> None:
    raw(log, "DELETE FROM audit WHERE seq = 4")
    result = log.verify()
    assert not result.ok and result.first_bad_seq == 4


def test_deletion_of_the_newest_entries_is_detected(log: AuditLog) -> None:
    raw(log, "DELETE FROM audit WHERE seq >= 5")
    result = log.verify()
    assert not result.ok and "removed" in result.problem


def test_reorder_is_detected(log: AuditLog) -> None:
    rows = log.store._query("SELECT seq, at, event, fields, prev, hash FROM audit WHERE seq IN (2, 3)")
    (_, *r2), (_, *r3) = rows
    raw(log, "DELETE FROM audit WHERE seq IN (2, 3)")
    with log.store.transaction() as conn:
        conn.execute("INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?)", (2, *r3))
        conn.execute("INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?)", (3, *r2))
    result = log.verify()
    assert not result.ok and result.first_bad_seq == 2


@pytest.mark.parametrize(
    "fields",
    [
        {"cnic": "35202-1234567-1"},
        {"note": "3520212345671"},
        {"mobile": "0300-1234567"},
        {"name": "Ali Khan"},
        {"name": "علی"},
        {"reason": "x" * 200},
    ],
)
def test_pii_and_free_text_are_refused(log: AuditLog, fields: dict[str, str]) -> None:
    before = log.head()
    with pytest.raises(AuditError):
        log.append("enrollment.commit", **fields)
    assert log.head() == before


@settings(max_examples=60, deadline=None)
@given(st.from_regex(r"\d{5}-\d{7}-\d", fullmatch=True))
def test_no_cnic_ever_enters(tmp_path_factory: pytest.TempPathFactory, cnic: str) -> None:
    store = Store.open(tmp_path_factory.mktemp("a") / "q.db", KEY, create=True)
    try:
        with pytest.raises(AuditError):
            AuditLog(store).append("x.y", packet=f"p-{cnic}")
    finally:
        store.close()


def test_cli_verify_and_tail(tmp_path: Path) -> None:
    home = StationHome(tmp_path / "home")
    init_station(home, "uc-test-01", demo=True).close()
    with open_station(home) as station:
        station.audit.append("auth.login", operator="op-1")
    runner = CliRunner()
    ok = runner.invoke(cli, ["--home", str(home.root), "audit", "verify"])
    assert ok.exit_code == 0 and "OK: 2 entries" in ok.output
    tail = runner.invoke(cli, ["--home", str(home.root), "audit", "tail", "-n", "1"])
    assert "auth.login" in tail.output and "station.init" not in tail.output
    with open_station(home) as station:
        raw(station.audit, "UPDATE audit SET at = at + 1 WHERE seq = 1")
    bad = runner.invoke(cli, ["--home", str(home.root), "audit", "verify"])
    assert bad.exit_code == 1 and "BROKEN at entry #1" in bad.output


@settings(max_examples=300, deadline=None)
@given(st.uuids(version=4), st.integers(0, 10**12 - 1))
def test_packet_ids_are_never_mistaken_for_pii(u: object, tail: int) -> None:
    """A UUID whose last group looks like a phone number (e.g. ...-032223999782) is an id, not PII."""
    import uuid as uuid_mod

    assert isinstance(u, uuid_mod.UUID)
    packet_id = str(u)[:24] + f"{tail:012d}"
    from station.audit import _check

    _check("enrollment.commit", {"packet": packet_id})
    _check("enrollment.commit", {"packet": "01a217cb-7338-7ccd-a409-032223999782"})
