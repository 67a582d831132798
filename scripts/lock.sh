#!/usr/bin/env bash
# Writes the lock files from pyproject.toml (and devkit/pyproject.toml), each in a fresh
# virtualenv, so that they hold exactly what those resolve to today:
#   requirements.lock      what production runs (the bot's own dependencies)
#   requirements-dev.lock  that, plus the test extras, the developer tools and the linters
# scripts/setup.sh installs from requirements-dev.lock; the Containerfile from requirements.lock.
# Run it after changing a dependency, then run the tests, and commit the lock files with the change.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

freeze() {  # freeze VENV OUTPUT HEADER
  {
    echo "# $3"
    echo "# Written by scripts/lock.sh on Python $("$1/bin/python" -c 'import platform; print(platform.python_version())'); do not edit by hand."
    "$1/bin/python" -m pip freeze --exclude-editable --all | grep -v -i -E '^(pip==|setuptools==|wheel==|esign-)' | sort -f
  } > "$2"
}

"$PYTHON" -m venv "$work/prod"
"$work/prod/bin/python" -m pip install --quiet --upgrade pip
"$work/prod/bin/python" -m pip install --quiet .
freeze "$work/prod" requirements.lock "What production runs: pip install -r requirements.lock, then the bot with --no-deps."

"$PYTHON" -m venv "$work/dev"
"$work/dev/bin/python" -m pip install --quiet --upgrade pip
"$work/dev/bin/python" -m pip install --quiet '.[test,dev]' ./devkit
freeze "$work/dev" requirements-dev.lock "Tests, developer tools and linters too (scripts/setup.sh installs this)."
echo "wrote requirements.lock ($(grep -vc '^#' requirements.lock) packages) and requirements-dev.lock ($(grep -vc '^#' requirements-dev.lock) packages)"
