"""The line rate each R30x module was left at, by serial port: tried first at the next open.

A module keeps a rate set with SetSysPara in its flash, so after a restart of the station it still
listens at 115,200 baud while the configured URL says 57,600. The driver reports every rate change
here; the rates live in this process and, once :func:`use_file` names one (the station does, with
``<home>/device-rates.json``), in that small JSON file, written atomically. A damaged or unreadable
file only costs the first open a wrong guess: it is never an error.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from pathlib import Path

log = logging.getLogger(__name__)

_lock = threading.Lock()
_rates: dict[str, int] = {}
_file: Path | None = None


def use_file(path: Path | None) -> None:
    """Keep the rates in ``path`` (None: in this process only); loads what it already holds."""
    global _file
    with _lock:
        _file = path
        if path is None:
            return
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if isinstance(raw, dict):
            for port, rate in raw.items():
                if isinstance(port, str) and isinstance(rate, int) and rate > 0:
                    _rates.setdefault(port, rate)


def recall(port: str) -> int | None:
    """The rate the module on ``port`` was last left at, if known."""
    with _lock:
        return _rates.get(port)


def remember(port: str, rate: int) -> None:
    """Record that the module on ``port`` now listens at ``rate`` (and persist it, if a file is set)."""
    with _lock:
        if _rates.get(port) == rate:
            return
        _rates[port] = rate
        path = _file
        snapshot = dict(_rates)
    if path is None:
        return
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(json.dumps(snapshot, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:  # a read-only home: the rate is still known in this process
        log.info("r30x.rates_not_saved path=%s error=%s", path, exc.strerror)
        with contextlib.suppress(OSError):
            tmp.unlink()
