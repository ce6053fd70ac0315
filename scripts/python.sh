# Sourced by the scripts: sets PY to the interpreter edgecompile is installed in.
#   an active virtual environment (unless EC_VENV is set), else PYTHON if set,
#   else the project environment ${EC_VENV:-.venv} of this clone.
ec_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ -n "${VIRTUAL_ENV:-}" ] && [ -z "${EC_VENV:-}" ]; then
    PY="$VIRTUAL_ENV/bin/python"
elif [ -n "${PYTHON:-}" ] && [ -z "${EC_VENV:-}" ]; then
    PY=$PYTHON
else
    EC_VENV=${EC_VENV:-$ec_root/.venv}
    PY="$EC_VENV/bin/python"
fi
