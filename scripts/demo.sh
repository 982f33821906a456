#!/usr/bin/env bash
# Set up (if needed) and run one patient visit through the real daemon against hw-sim.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export SDL_VIDEODRIVER=dummy SDL_AUDIODRIVER=dummy
exec .venv/bin/mynasim demo --out out/demo "$@"
