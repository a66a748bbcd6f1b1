"""The CLI entry point and the home/config layer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from drivers.formats import wsq
from drivers.url import parse_url
from enrollment_station.cli import station_cli as cli
from station.errors import ConfigError
from station.home import StationConfig, StationHome, resolve_home


def test_help_lists_commands() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name in ("init", "enroll", "status", "purge", "device", "sync", "kiosk"):
        assert name in result.output


def test_home_resolution(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("STATION_HOME", str(tmp_path / "env"))
    assert resolve_home(None) == tmp_path / "env"
    assert resolve_home(tmp_path / "x") == tmp_path / "x"
    monkeypatch.delenv("STATION_HOME")
    assert resolve_home(None) == Path("/var/lib/station")


def test_config_round_trip(tmp_path: Path) -> None:
    home = StationHome(tmp_path / "h")
    cfg = StationConfig(station_id="ST-0001", retention_days=3, extra={"future": 1})
    home.save_config(cfg)
    back = home.load_config()
    assert back.station_id == "ST-0001" and back.retention_days == 3 and back.extra == {"future": 1}


def test_config_errors_say_what_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="retention_days"):
        StationConfig.from_toml("retention_days = -1")
    with pytest.raises(ConfigError, match="TOML"):
        StationConfig.from_toml("retention_days = ")
    with pytest.raises(ConfigError, match="station init"):
        StationHome(tmp_path / "none").load_config()


def test_device_url_parsing() -> None:
    u = parse_url("serial:///dev/ttyUSB0?baud=57600")
    assert (u.scheme, u.path, u.int_param("baud", 0)) == ("serial", "/dev/ttyUSB0", 57600)
    assert parse_url("usb://298d:1010").host == "298d:1010"


def test_wsq_round_trip() -> None:
    rng = np.random.default_rng(1)
    img = (rng.random((64, 64)) * 255).astype(np.uint8)
    data = wsq.encode(img)
    back = wsq.decode(data)
    assert back.shape == img.shape
    with pytest.raises(wsq.WSQError):
        wsq.decode(b"not wsq")
