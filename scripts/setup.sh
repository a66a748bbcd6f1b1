#!/usr/bin/env bash
# Set up everything the product and its tests need on a Debian 12 machine.
# Idempotent: safe to run again; it only does what is missing.
#   - as root: apt packages (umockdev, fonts, Qt runtime libraries, systemd tools)
#   - always: a virtual environment in .venv with the project installed editable
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  python3-venv
  umockdev libusb-1.0-0            # USB replay of the NB-1010-U recording
  fonts-noto-core                  # Noto Nastaliq Urdu / Noto Naskh Arabic
  libegl1 libgl1 libxkbcommon0 libfontconfig1 libdbus-1-3 libglib2.0-0 libxcb-cursor0  # Qt runtime
  systemd udev cage                # systemd-analyze verify/security for the units (cage: kiosk compositor)
  fakeroot dpkg-dev                # building the .deb
  poppler-utils                    # pdftoppm for looking at printed receipts
  chromium chromium-driver         # the ops dashboard test drives a real headless Chromium (selenium)
  postgresql                       # central's PostgreSQL backend: tests start throwaway clusters with it
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: not root, skipping Debian packages: ${missing[*]}" >&2
    echo "setup: run 'sudo $0' once to install them; tests that need them will be skipped" >&2
  fi
fi

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $PY"
  "$PY" -m venv .venv
fi
stamp=.venv/.installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing the project and its dependencies into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[all,dev]'
  touch "$stamp"
fi
echo "setup: ready (.venv/bin/station, .venv/bin/central)"
