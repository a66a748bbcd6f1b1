#!/usr/bin/env bash
# Regenerate the appliance lock files from pyproject.toml: every package each .deb's virtual
# environment holds, pinned to one version with the SHA-256 of every file it may install.
#   packaging/lock/station.txt   enrollment-station  (extras: station + kiosk)
#   packaging/lock/central.txt   enrollment-central  (extra: central)
# packaging/build-deb installs with --require-hashes from these files, so the same lock gives the
# same packages; scripts/test.sh audits them (pip-audit) and tests/test_packaging_lock.py checks that
# they still satisfy pyproject.toml. Run after changing a dependency, then commit the lock files.
# Needs the package index (network) and the dev tools in .venv (bash scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
UV=.venv/bin/uv
[ -x "$UV" ] || { echo "lock: $UV missing: run bash scripts/setup.sh first" >&2; exit 1; }
# Debian 12: CPython 3.11, glibc 2.36.
target=(--python-version 3.11 --python-platform x86_64-manylinux_2_36 --generate-hashes --no-header)
"$UV" pip compile -q pyproject.toml --extra station --extra kiosk "${target[@]}" -o packaging/lock/station.txt
"$UV" pip compile -q pyproject.toml --extra central "${target[@]}" -o packaging/lock/central.txt
wc -l packaging/lock/*.txt
