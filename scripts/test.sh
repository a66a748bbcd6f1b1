#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the whole test suite: lint, types, tests.
# Extra arguments go to pytest. SLOW=1 also runs the long fault and soak tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export QT_QPA_PLATFORM=offscreen
export PYTHONDONTWRITEBYTECODE=1
echo "== ruff"
.venv/bin/ruff check .
echo "== mypy --strict (station, drivers, sync)"
.venv/bin/mypy
echo "== pip-audit (appliance lock files; offline-tolerant)"
.venv/bin/python scripts/audit_deps.py
echo "== pytest"
marks=(-m "not slow")
[ "${SLOW:-0}" = "1" ] && marks=()
set +e
.venv/bin/python -m pytest "${marks[@]}" "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "test: pytest collected no tests: failing on purpose" >&2
  exit 1
fi
exit "$rc"
