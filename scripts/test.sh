#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite (real pcscd, mosquitto, ptys, ONNX models).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export SDL_VIDEODRIVER=dummy SDL_AUDIODRIVER=dummy
exec .venv/bin/python -m pytest -q "$@"
