"""Typing rules the mypy run cannot check itself: every package is under it, every ignore says why.

``mypy --strict`` covers every package of ours, the kiosk included (``pyproject.toml``). A
``# type: ignore[code]`` is allowed only with its reason on the same line, after a second ``#``
(a stub that is wrong, a library without stubs...). Modules with ``ignore_errors`` (each listed
with its reason in ``pyproject.toml``) are left to that section.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("drivers", "packetformat", "station", "sync", "kiosk_ui", "enrollment_station")
IGNORE = re.compile(r"#\s*type:\s*ignore(\[[^\]]*\])?(?P<rest>.*)$")


def _mypy() -> dict[str, object]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    mypy = config["tool"]["mypy"]
    assert isinstance(mypy, dict)
    return mypy


def _relaxed() -> set[str]:
    overrides = _mypy().get("overrides", [])
    assert isinstance(overrides, list)
    found: set[str] = set()
    for section in overrides:
        if section.get("ignore_errors"):
            modules = section["module"]
            found.update([modules] if isinstance(modules, str) else modules)
    return found


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def test_every_package_is_under_mypy_strict() -> None:
    mypy = _mypy()
    assert mypy.get("strict") is True
    packages = mypy.get("packages")
    assert isinstance(packages, list)
    assert set(PACKAGES) <= set(packages)


def test_every_type_ignore_says_why() -> None:
    relaxed = _relaxed()
    wrong = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if _module(path) in relaxed:
                continue
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                match = IGNORE.search(line)
                if match is None:
                    continue
                rest = match.group("rest").strip()
                if not match.group(1) or not rest.startswith("#") or len(rest.lstrip("# ")) < 8:
                    wrong.append(f"{path.relative_to(ROOT)}:{n} {line.strip()}")
    assert not wrong, "a type: ignore needs its [code] and a reason after '#':\n" + "\n".join(wrong)


def test_the_rule_reads_an_ignore_as_meant() -> None:
    def ok(line: str) -> bool:
        match = IGNORE.search(line)
        assert match is not None
        rest = match.group("rest").strip()
        return bool(match.group(1)) and rest.startswith("#") and len(rest.lstrip("# ")) >= 8

    assert ok("x = y  # type: ignore[attr-defined]  # cv2's stubs omit cv2.data")
    assert not ok("x = y  # type: ignore[attr-defined]")
    assert not ok("x = y  # type: ignore")
    assert not ok("x = y  # type: ignore  # some reason here")
