#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite (real pcscd, mosquitto, ptys, ONNX models).
set -euo pipefail
# Packages type-checked before the tests (settings: [tool.mypy] in pyproject.toml); any error fails the run.
MYPY_PACKAGES=(daemon/mynad drivers/myna_drivers models/myna_models hw-sim/mynasim)
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export SDL_VIDEODRIVER=dummy SDL_AUDIODRIVER=dummy
echo "test: mypy ${MYPY_PACKAGES[*]}"
.venv/bin/python -m mypy "${MYPY_PACKAGES[@]}"
# --durations: the slowest tests in every CI log, to keep the suite under its ten minutes
exec .venv/bin/python -m pytest -q --durations=25 "$@"
