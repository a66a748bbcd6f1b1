"""The tree itself: no merge-conflict markers, every shell script parses, no private key committed."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MARKER = re.compile(rb"^(<<<<<<< |>>>>>>> |=======$)", re.M)
PRIVATE = re.compile(rb"-----BEGIN (EC |RSA |OPENSSH |ENCRYPTED )?PRIVATE KEY-----")


def _tracked() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=False)
    if out.returncode != 0:
        pytest.skip("not a git checkout")
    return [ROOT / name for name in out.stdout.decode().split("\0") if name]


def test_no_conflict_markers_or_private_keys() -> None:
    bad = []
    for path in _tracked():
        if not path.is_file() or path.suffix in {".png", ".ioctl", ".wsq", ".jpg"}:
            continue
        data = path.read_bytes()
        if MARKER.search(data):
            bad.append(f"{path.relative_to(ROOT)}: merge-conflict marker")
        if PRIVATE.search(data):
            bad.append(f"{path.relative_to(ROOT)}: a private key")
    assert bad == []


def test_shell_scripts_parse() -> None:
    scripts = [
        p
        for p in _tracked()
        if p.is_file()
        and (p.suffix == ".sh" or p.read_bytes()[:32].startswith((b"#!/bin/sh", b"#!/usr/bin/env bash")))
    ]
    assert scripts
    for script in scripts:
        shell = "sh" if script.read_bytes().startswith(b"#!/bin/sh") else "bash"
        proc = subprocess.run([shell, "-n", str(script)], capture_output=True, text=True, check=False)
        assert proc.returncode == 0, f"{script.relative_to(ROOT)}: {proc.stderr}"
