#!/usr/bin/env bash
# A fuzz campaign of N random models (default 100): counts by outcome; failing seeds are saved in
# tests/fuzz_regressions/, which the test suite replays. Extra arguments go to tests/fuzz_campaign.py
# (e.g. --start SEED to repeat a campaign).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/python.sh
PYTHONPATH="$(pwd)${PYTHONPATH:+:$PYTHONPATH}" exec "$PY" tests/fuzz_campaign.py "${1:-100}" "${@:2}"
