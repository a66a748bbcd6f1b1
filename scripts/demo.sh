#!/usr/bin/env bash
# The demo, from a fresh Debian 12 machine: set up, then run the whole product on this one machine.
#   1. a local central office (private CA, ingest server on 127.0.0.1),
#   2. a demo station provisioned against it with a one-time token (CA pinned by fingerprint),
#   3. its sync agent,
#   4. the kiosk with the simulated R30x scanner and camera, and a demo operator whose PIN the demo
#      banner shows. With a display it opens the kiosk; without one it runs the same enrollment
#      offscreen, writes screenshots, waits until central acknowledges the packet and prints central's
#      signed receipt.
# Idempotent: a second run reuses demo/ (delete it to start over). DEMO_DIR and DEMO_PORT override.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

DEMO=${DEMO_DIR:-$PWD/demo}
PORT=${DEMO_PORT:-18443}
CENTRAL_HOME=$DEMO/central
STATION_HOME=$DEMO/station
mkdir -p "$DEMO"
central() { .venv/bin/central --home "$CENTRAL_HOME" "$@"; }
station() { .venv/bin/station --home "$STATION_HOME" "$@"; }

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

echo "== central office ($CENTRAL_HOME)"
[ -f "$CENTRAL_HOME/pki/ca.crt" ] || central init --name "demo-central" >/dev/null
.venv/bin/central --home "$CENTRAL_HOME" serve --host 127.0.0.1 --port "$PORT" >"$DEMO/central.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 150); do  # up to 30 s for the listening line
  grep -q "listening on" "$DEMO/central.log" && break
  kill -0 "${pids[0]}" 2>/dev/null || { cat "$DEMO/central.log" >&2; exit 1; }
  sleep 0.2
done
grep "listening on\|enrollment on" "$DEMO/central.log"

echo "== demo station ($STATION_HOME)"
[ -f "$STATION_HOME/station.toml" ] || station init --demo >/dev/null
if [ ! -f "$STATION_HOME/pki/station.crt" ]; then
  fingerprint=$(central ca fingerprint | tail -n 1)
  token=$(central token new --station demo-station --district Lahore --tehsil "Lahore City" \
    --union-council "UC-421 Demo" --label "demo counter" | tail -n 1)
  printf '%s\n' "$token" | station provision --central "https://127.0.0.1:$PORT" --token-file - \
    --ca-fingerprint "$fingerprint" \
    --scanner "sim://r30x?finger=auto" --camera "sim://camera?source=synthetic"
fi

grep -q "^\[sync\]" "$STATION_HOME/station.toml" || printf '\n[sync]\npoll_seconds = 3\n' >>"$STATION_HOME/station.toml"

echo "== sync agent (polls every 3 s in the demo)"
.venv/bin/station --home "$STATION_HOME" sync run >"$DEMO/sync.log" 2>&1 &
pids+=($!)

echo "== kiosk (simulated scanner and camera)"
if [ -z "${CI:-}" ] && { [ -n "${WAYLAND_DISPLAY:-}" ] || [ -n "${DISPLAY:-}" ]; }; then
  station kiosk --demo --windowed
  station sync once || true
  station status
  exit 0
fi
out=$(station kiosk --demo --out "$DEMO/screenshots")
echo "$out"
packet=$(echo "$out" | tail -n 1)
echo "== waiting for central to acknowledge $packet"
for _ in $(seq 1 60); do  # the agent polls; up to 60 s
  station sync receipt "$packet" >/dev/null 2>&1 && break
  sleep 1
done
station sync receipt "$packet"
central status
echo "Demo files in $DEMO (screenshots in $DEMO/screenshots, receipt PDF in $STATION_HOME/receipts)."
