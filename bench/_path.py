"""Imported by every benchmark before anything else of ours: the project root goes first on
``sys.path`` and ``bench/`` last, where ``queue.py`` and ``sync.py`` would otherwise hide the
standard library's ``queue`` and the project's ``sync`` package."""

from __future__ import annotations

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
# bench/ moves to the end (not away: spawned worker processes re-import this script by its path).
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != BENCH]
sys.path.insert(0, str(ROOT))
sys.path.append(str(BENCH))
