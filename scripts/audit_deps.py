"""Audit the appliance lock files for known vulnerabilities with pip-audit, offline-tolerant.

    .venv/bin/python scripts/audit_deps.py [LOCK ...]     (default: packaging/lock/*.txt)

For each lock file, pip-audit checks every pinned package against its advisory source without
installing anything (``--disable-pip``: the files are hashed). The outcome per file is one of:

* ``ok``: every package was checked and none has a known vulnerability;
* ``VULNERABLE``: the packages and advisories are listed, and the exit status is 1 (fix or re-lock);
* ``could not check``: the advisory source could not be reached (no network, a proxy that serves
  only the package index) or answered for none of the packages. That is printed, with the reason,
  and does not fail: CI on a closed network must still pass, but nobody may read silence as a
  clean bill.

Advisories that are accepted on purpose go in ``packaging/lock/audit-ignore.txt`` (one id per line,
``#`` comments saying why); they are passed to pip-audit as ``--ignore-vuln``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LOCKS = ROOT / "packaging" / "lock"
IGNORE = LOCKS / "audit-ignore.txt"
PIP_AUDIT = Path(sys.executable).with_name("pip-audit")


@dataclass
class Outcome:
    lock: Path
    state: str  # "ok", "vulnerable", "unchecked"
    checked: int = 0
    skipped: int = 0
    findings: list[str] = field(default_factory=list)
    reason: str = ""


def ignored_ids() -> list[str]:
    if not IGNORE.is_file():
        return []
    ids = []
    for line in IGNORE.read_text(encoding="utf-8").splitlines():
        text = line.split("#", 1)[0].strip()
        if text:
            ids.append(text)
    return ids


def audit(lock: Path, timeout: int = 15) -> Outcome:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        cmd = [str(PIP_AUDIT), "--disable-pip", "-r", str(lock), "--progress-spinner", "off"]
        cmd += ["--timeout", str(timeout), "-f", "json", "-o", str(report)]
        for vuln in ignored_ids():
            cmd += ["--ignore-vuln", vuln]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
        if not report.is_file():
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            return Outcome(lock, "unchecked", reason=last[:300])
        data = json.loads(report.read_text(encoding="utf-8"))
    return interpret(lock, data)


def interpret(lock: Path, data: dict[str, Any]) -> Outcome:
    """The outcome of one pip-audit JSON report."""
    deps = data.get("dependencies", [])
    outcome = Outcome(lock, "ok")
    for dep in deps:
        if "skip_reason" in dep:
            outcome.skipped += 1
            outcome.reason = str(dep["skip_reason"])[:300]
            continue
        outcome.checked += 1
        for vuln in dep.get("vulns", []):
            fixes = ", ".join(vuln.get("fix_versions", [])) or "no fixed release yet"
            version = dep.get("version", "?")
            outcome.findings.append(f"{dep['name']} {version}: {vuln['id']} (fixed in {fixes})")
    if outcome.findings:
        outcome.state = "vulnerable"
    elif outcome.checked == 0:
        outcome.state = "unchecked"
    return outcome


def main(argv: list[str]) -> int:
    locks = [Path(a) for a in argv] or sorted(LOCKS.glob("*.txt"))
    if not PIP_AUDIT.exists():
        print(f"audit: {PIP_AUDIT} is missing: run bash scripts/setup.sh", file=sys.stderr)
        return 1
    status = 0
    for lock in locks:
        if lock.name == IGNORE.name:
            continue
        result = audit(lock)
        name = lock.relative_to(ROOT) if lock.is_relative_to(ROOT) else lock
        if result.state == "ok":
            note = f", {result.skipped} not checked ({result.reason})" if result.skipped else ""
            print(f"audit: {name}: ok, {result.checked} packages without known vulnerabilities{note}")
        elif result.state == "vulnerable":
            status = 1
            print(f"audit: {name}: VULNERABLE: {len(result.findings)} known vulnerabilities:")
            for line in result.findings:
                print(f"audit:   {line}")
            print("audit: upgrade the package in pyproject.toml and run scripts/lock.sh, or accept the")
            print(f"audit: advisory with a reason in {IGNORE.relative_to(ROOT)}")
        else:
            print(
                f"audit: {name}: could not check: the advisory source was not reachable "
                f"({result.reason or 'no answer'}); nothing is known either way"
            )
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
