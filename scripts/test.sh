#!/usr/bin/env bash
# The test command of the README (and of CI): install what the tests need, then run them all.
# Extra arguments go to pytest (e.g. -m "not slow" for the quick subset).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
source scripts/python.sh
set +e
"$PY" -m pytest -q "$@"
status=$?
set -e
if [ $status -eq 5 ]; then
    echo "test.sh: pytest collected no tests: that is a failure here"
    exit 1
fi
exit $status
