"""The fuzzing campaign, short: every target through ``scripts/fuzz.sh`` for a bounded time.

Slow (about 20 s a target; ``FUZZ_SECONDS`` to change it). A crash, a hang over 1 s or running out
of memory fails the test and leaves the input in the test's folder; the last line must report the
executions done (libFuzzer's own count).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fuzz.targets import TARGETS

ROOT = Path(__file__).resolve().parent.parent
SECONDS = int(os.environ.get("FUZZ_SECONDS", "20"))


@pytest.mark.slow
@pytest.mark.timeout(SECONDS + 120)
@pytest.mark.parametrize("target", sorted(TARGETS))
def test_fuzz_target(target: str, tmp_path: Path) -> None:
    env = {**os.environ, "FUZZ_OUT": str(tmp_path), "PYTHON": sys.executable}
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "fuzz.sh"), target, str(SECONDS)],
        capture_output=True,
        text=True,
        env=env,
        timeout=SECONDS + 100,
        check=False,
    )
    tail = result.stdout[-3000:]
    assert result.returncode == 0, (
        f"{target} crashed or hung: {tail}\n{list((tmp_path / 'crashes').rglob('*'))}"
    )
    last = result.stdout.strip().splitlines()[-1]
    match = re.fullmatch(r"executions: (\d+)", last)
    assert match is not None, tail
    assert int(match.group(1)) > 0
    assert not any((tmp_path / "crashes" / target).iterdir())


def test_fuzz_sh_refuses_an_unknown_target(tmp_path: Path) -> None:
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "fuzz.sh"), "no-such-target", "1"],
        capture_output=True,
        text=True,
        env={**os.environ, "FUZZ_OUT": str(tmp_path)},
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "error [fuzz.target]" in result.stderr
