#!/usr/bin/env bash
# The test command of the README (and of CI): install what the tests need, then run them all.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
PYTHON=${PYTHON:-python3}
set +e
"$PYTHON" -m pytest -q "$@"
status=$?
set -e
if [ $status -eq 5 ]; then
    echo "test.sh: pytest collected no tests: that is a failure here"
    exit 1
fi
exit $status
