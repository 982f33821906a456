#!/usr/bin/env bash
# Install everything myna-reader needs on a Debian 12 machine (run as root), safely twice:
# Debian packages that are missing, a venv with the pinned Python packages (.venv/),
# and the hash-checked model files and sample photos (assets/).
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PKGS=(
  python3 python3-venv python3-dev gcc pkg-config swig     # venv, and building pyscard
  pcscd libpcsclite-dev vsmartcard-vpcd opensc pcsc-tools  # real PC/SC stack + the virtual reader driver
  socat mosquitto mosquitto-clients                         # pty pairs, the MQTT broker
  lrzsz picocom                                             # ZMODEM + a stock serial terminal (tests/console)
  fonts-noto-cjk fonts-ipafont-gothic                       # screen fonts: Noto Sans CJK JP/SC/KR (+ Latin, Vietnamese); IPA fallback
  alsa-utils espeak-ng                                      # voice: aplay; speech for en/zh/ko/vi/pt (docs/voice.md)
  systemd sudo                                              # systemd-analyze verify for the unit tests; visudo checks the sudoers rule
)

missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: missing Debian packages: ${missing[*]} (run as root to install them)" >&2
    exit 1
  fi
  echo "setup: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=/usr/bin/python3
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
stamp=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat .venv/.myna-stamp 2>/dev/null)" != "$stamp" ]; then
  echo "setup: installing pinned Python packages into .venv"
  # setuptools pinned: it builds the project wheel of a release bundle (release/packages.toml [build])
  .venv/bin/pip install -q --disable-pip-version-check --upgrade pip setuptools==84.2.1 wheel
  .venv/bin/pip install -q --disable-pip-version-check -e '.[sim,tools,test]'
  echo "$stamp" > .venv/.myna-stamp
fi

.venv/bin/python scripts/fetch_assets.py
