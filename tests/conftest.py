"""Shared test fixtures. Every recording and image a test uses is a copy in tests/fixtures/,
with its provenance beside it; nothing outside this repository is read."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture
def station_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    return home
