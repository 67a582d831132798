# Sourced by the other scripts: a project virtualenv with the bot, its test extras and the
# developer tools (devkit/: playgrounds, the flow-testing kit, benchmarks), at the exact
# versions of requirements-dev.lock (scripts/lock.sh writes it).
# Idempotent: re-runs only install what changed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

find_python() {
  for candidate in "${PYTHON:-}" python3.13 python3.12 python3.11 python3; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  echo "error: Python 3.11 or newer is needed (set PYTHON=/path/to/python3.11)" >&2
  return 1
}

if [ ! -x .venv/bin/python ]; then
  "$(find_python)" -m venv .venv
fi
stamp=.venv/.installed
if [ ! -f "$stamp" ] || [ requirements-dev.lock -nt "$stamp" ] || [ pyproject.toml -nt "$stamp" ] ||
   [ devkit/pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -r requirements-dev.lock
  .venv/bin/python -m pip install --quiet --no-deps -e . -e ./devkit
  .venv/bin/python -m pip check  # the lock satisfies what pyproject.toml asks for
  touch "$stamp"
fi
