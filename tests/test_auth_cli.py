"""``station operator``: add (PIN prompted twice, hidden), list, set-pin, unlock, disable/enable."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from station.auth import OperatorDirectory, OperatorFile, Role
from station.cli import cli
from station.home import StationHome
from station.session import init_station, open_station


def make_home(tmp_path: Path) -> StationHome:
    home = StationHome(tmp_path / "home")
    init_station(home, "uc-test-01").close()
    return home


def test_add_list_and_manage(tmp_path: Path) -> None:
    home = make_home(tmp_path)
    runner = CliRunner()
    base = ["--home", str(home.root), "operator"]
    r = runner.invoke(cli, [*base, "add", "sup-1", "--role", "supervisor"], input="1234\n2580\n2580\n")
    assert r.exit_code == 0, r.output
    assert "too easy" in r.output  # 1234 refused, then 2580 twice
    assert "2580" not in r.output
    r = runner.invoke(cli, [*base, "add", "op-1", "--pin", "7391", "--by", "sup-1"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, [*base, "list"])
    assert "sup-1" in r.output and "supervisor" in r.output and "active" in r.output
    d = OperatorDirectory(OperatorFile.for_home(home))
    assert d.check_pin("sup-1", "2580").operator.role is Role.SUPERVISOR
    r = runner.invoke(cli, [*base, "disable", "op-1"])
    assert r.exit_code == 0
    assert "disabled" in runner.invoke(cli, [*base, "list"]).output
    runner.invoke(cli, [*base, "enable", "op-1"])
    r = runner.invoke(cli, [*base, "set-pin", "op-1"], input="4826\n4826\n")
    assert r.exit_code == 0, r.output
    d.check_pin("op-1", "4826")
    assert runner.invoke(cli, [*base, "unlock", "op-1"]).exit_code == 0
    # Every change is in the audit chain, by operator id, with no PIN.
    with open_station(home) as station:
        events = [(e.event, e.fields.get("operator")) for e in station.audit.entries()]
        assert station.audit.verify().ok
    assert ("operator.add", "sup-1") in events and ("operator.disable", "op-1") in events
    assert ("operator.pin", "op-1") in events and ("operator.unlock", "op-1") in events


def test_first_operator_must_be_supervisor_and_errors_are_clear(tmp_path: Path) -> None:
    home = make_home(tmp_path)
    runner = CliRunner()
    r = runner.invoke(cli, ["--home", str(home.root), "operator", "add", "op-1", "--pin", "7391"])
    assert r.exit_code != 0
    assert "supervisor" in str(r.exception) or "supervisor" in r.output
