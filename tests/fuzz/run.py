"""The atheris entry point: ``python -m tests.fuzz.run TARGET [libFuzzer options] [corpus dirs]``.

The project's packages are imported under ``atheris.instrument_imports`` so libFuzzer sees their
branch coverage (third-party code is not instrumented: it is not what is under test). Before
fuzzing, every file of the given corpus folders is run once so one-time costs (NFIQ 2 loading its
model, the enrollment images being written) are not charged to the first input's 1 s budget.
Usually started by ``scripts/fuzz.sh``, which sets the time, timeout, memory limit and folders.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["packetformat", "station", "drivers", "sync"]):
    from tests.fuzz import targets


def _warm_up(name: str, folders: list[str]) -> None:
    for folder in folders:
        for path in sorted(Path(folder).glob("*"))[:50]:
            with contextlib.suppress(Exception):
                targets.check(name, path.read_bytes())


def main(argv: list[str]) -> None:
    if len(argv) < 2 or argv[1] not in targets.TARGETS:
        names = ", ".join(sorted(targets.TARGETS))
        print(
            "error [fuzz.usage]: usage: python -m tests.fuzz.run TARGET [libFuzzer args];"
            f" TARGET is one of {names}"
        )
        raise SystemExit(2)
    name = argv[1]
    options = argv[2:]
    if not any(arg.startswith("-max_len=") for arg in options):
        options.append(f"-max_len={targets.TARGETS[name].max_len}")
    _warm_up(name, [arg for arg in options if not arg.startswith("-")])

    def one_input(data: bytes) -> None:
        targets.check(name, data)

    atheris.Setup([argv[0], *options], one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
