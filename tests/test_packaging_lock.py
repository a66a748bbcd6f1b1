"""The appliance lock files: they still satisfy pyproject.toml, and their audit is read right.

``packaging/lock/*.txt`` pin every package of each .deb with hashes (``scripts/lock.sh`` makes
them); a dependency added to an extra without re-locking fails here, not in a package build.
"""

from __future__ import annotations

import importlib.util
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
LOCKS = {"station": ("station", "kiosk"), "central": ("central",)}


def _pins(lock: Path) -> dict[str, tuple[Version, int]]:
    pins: dict[str, tuple[Version, int]] = {}
    current = ""
    for line in lock.read_text(encoding="utf-8").splitlines():
        text = line.strip()
        if "==" in text and not text.startswith(("#", "--")):
            name, _, version = text.rstrip(" \\").partition("==")
            current = canonicalize_name(name.split("[")[0])
            pins[current] = (Version(version), 0)
        elif text.startswith("--hash=sha256:") and current:
            version, hashes = pins[current]
            pins[current] = (version, hashes + 1)
    return pins


def _requirements(extras: tuple[str, ...]) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = [Requirement(r) for r in project["dependencies"]]
    todo = list(extras)
    while todo:
        for text in project["optional-dependencies"][todo.pop()]:
            req = Requirement(text)
            if canonicalize_name(req.name) == "enrollment-station":
                todo.extend(req.extras)
            else:
                wanted.append(req)
    return wanted


@pytest.mark.parametrize("part", sorted(LOCKS))
def test_lock_pins_every_requirement_with_hashes(part: str) -> None:
    pins = _pins(ROOT / "packaging" / "lock" / f"{part}.txt")
    for req in _requirements(LOCKS[part]):
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is not in packaging/lock/{part}.txt: run scripts/lock.sh"
        version = pins[name][0]
        assert req.specifier.contains(version, prereleases=True), (
            f"packaging/lock/{part}.txt pins {name}=={version}, pyproject.toml wants {req}: "
            "run scripts/lock.sh"
        )
    assert all(hashes > 0 for _, hashes in pins.values()), "every pin carries its hashes"


def test_central_lock_has_no_station_libraries() -> None:
    pins = _pins(ROOT / "packaging" / "lock" / "central.txt")
    for heavy in ("pyside6-essentials", "opencv-python-headless", "pyusb", "sqlcipher3"):
        assert heavy not in pins


def _audit_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("audit_deps", ROOT / "scripts" / "audit_deps.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["audit_deps"] = module
    spec.loader.exec_module(module)
    return module


def test_audit_reads_findings_clean_and_unreachable_reports() -> None:
    audit = _audit_module()
    lock = ROOT / "packaging" / "lock" / "central.txt"
    vulnerable = audit.interpret(
        lock,
        {
            "dependencies": [
                {
                    "name": "aiohttp",
                    "version": "3.0.0",
                    "vulns": [{"id": "GHSA-x", "fix_versions": ["3.9.4"]}],
                },
                {"name": "yarl", "version": "1.9.0", "vulns": []},
            ]
        },
    )
    assert vulnerable.state == "vulnerable" and vulnerable.checked == 2
    assert vulnerable.findings == ["aiohttp 3.0.0: GHSA-x (fixed in 3.9.4)"]
    clean = audit.interpret(lock, {"dependencies": [{"name": "yarl", "version": "1.9.0", "vulns": []}]})
    assert clean.state == "ok"
    unreachable = audit.interpret(
        lock, {"dependencies": [{"name": "yarl", "skip_reason": "Dependency not found on PyPI"}]}
    )
    assert unreachable.state == "unchecked" and "not found" in unreachable.reason
