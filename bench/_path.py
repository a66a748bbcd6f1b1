"""Imported by every benchmark before anything else of ours: the project root goes on ``sys.path``
instead of ``bench/``, where ``queue.py`` and ``sync.py`` would hide the standard library's ``queue``
and the project's ``sync`` package."""

from __future__ import annotations

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != BENCH]
sys.path.insert(0, str(ROOT))
