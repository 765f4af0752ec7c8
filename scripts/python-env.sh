#!/usr/bin/env bash
# Creates .venv/ with the pinned dbt, moto and AWS CLI (test/dbt/requirements.txt).
# Idempotent: skips pip when the stamp matches the requirements file's hash.
set -euo pipefail
cd "$(dirname "$0")/.."

REQUIREMENTS=test/dbt/requirements.txt
VENV=.venv
STAMP="$VENV/.requirements.sha256"
PYTHON="${PYTHON:-python3}"

want="$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)"
ready() { [[ -x "$VENV/bin/python" && -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; }
if ready; then
    exit 0
fi
# Concurrent callers (mocha --parallel workers) wait for the one that installs, then find it ready.
# The lock sits beside the venv's real directory (.venv may be a link to another checkout's).
if command -v flock >/dev/null; then
    exec 9>"$(readlink -f "$VENV").lock"
    flock 9
    if ready; then
        exit 0
    fi
fi

if [[ ! -x "$VENV/bin/python" ]]; then
    "$PYTHON" -m venv "$VENV"
fi
# Drop the stamp first so an interrupted install is redone next time.
rm -f "$STAMP"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$REQUIREMENTS"
echo "$want" > "$STAMP"
# No `dbt --version` here: it checks PyPI for a newer release.
"$VENV/bin/python" -c 'import importlib.metadata as m; print("python env ready: .venv, dbt-core", m.version("dbt-core"), "dbt-postgres", m.version("dbt-postgres"))'
