#!/usr/bin/env bash
# Render every kiosk screen in English and Urdu to docs/screenshots/ (offscreen, demo station).
set -euo pipefail
cd "$(dirname "$0")/.."
home="$(mktemp -d)/station"
trap 'rm -rf "$(dirname "$home")"' EXIT
QT_QPA_PLATFORM=offscreen .venv/bin/station --home "$home" kiosk --screenshots docs/screenshots
