#!/usr/bin/env bash
# Fuzz one parser with atheris (coverage-guided) for SECONDS: scripts/fuzz.sh TARGET SECONDS
#
# Seeds: tests/fuzz/corpus/TARGET (read only); new inputs libFuzzer finds go to .fuzz/corpus/TARGET.
# Each input gets at most 1 s (-timeout=1) and the process FUZZ_RSS_MB MiB (default 2048).
# A crash, a hang or an out-of-memory writes the input to .fuzz/crashes/TARGET/ (FUZZ_OUT to move it)
# and exits non-zero; copy it to tests/fuzz/regressions/TARGET/ once fixed, to keep it as a test.
# The last line is always "executions: N" (libFuzzer's stat::number_of_executed_units).
set -uo pipefail

if [ $# -ne 2 ] || ! [[ "$2" =~ ^[0-9]+$ ]]; then
    echo "error [fuzz.usage]: usage: scripts/fuzz.sh TARGET SECONDS" >&2
    exit 2
fi
target=$1
seconds=$2
root=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-$root/.venv/bin/python}
out=${FUZZ_OUT:-$root/.fuzz}
seeds=$root/tests/fuzz/corpus/$target
if [ ! -d "$seeds" ]; then
    echo "error [fuzz.target]: no corpus for target '$target' in tests/fuzz/corpus/: run tests/fuzz/make_corpus.py" >&2
    exit 2
fi
work=$out/corpus/$target
crashes=$out/crashes/$target
mkdir -p "$work" "$crashes"
log=$(mktemp "${TMPDIR:-/tmp}/fuzz-$target.XXXXXX.log")
trap 'rm -f "$log"' EXIT

cd "$root" || exit 2
"$python" -m tests.fuzz.run "$target" \
    -max_total_time="$seconds" -timeout=1 -rss_limit_mb="${FUZZ_RSS_MB:-2048}" \
    -print_final_stats=1 -artifact_prefix="$crashes/" "$work" "$seeds" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}

executions=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
if [ -z "$executions" ]; then
    executions=$(sed -n 's/^#\([0-9]*\).*DONE.*/\1/p; s/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -n 1)
fi
if [ "$status" -ne 0 ]; then
    echo "fuzz: target $target failed (exit $status); the input is in $crashes/"
fi
echo "executions: ${executions:-unknown}"
exit "$status"
