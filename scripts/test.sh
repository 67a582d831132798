#!/usr/bin/env bash
# The whole test suite, from a fresh clone: virtualenv, packages, Redis, then pytest, one worker
# per core (pytest-xdist; TEST_WORKERS=1 for one process), each on a Redis database of its own.
# Extra arguments go to pytest (e.g. scripts/test.sh tests/flows -x).
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
source "$ROOT/scripts/redis.sh"
export ESIGN_TEST_REDIS_URL="${ESIGN_TEST_REDIS_URL:-redis://$REDIS_HOST:$REDIS_PORT/13}"

# The web checkout's browser test (tests/web/test_browser.py) drives Debian's chromium through
# Playwright (from PyPI, in the test extras; it never downloads a browser). Installed when
# missing; with REQUIRE_BROWSER_TEST=1 (CI) a failed install stops the run instead of skipping.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
if [ ! -x /usr/bin/chromium ]; then
  echo "Chromium is not installed: installing Debian's chromium package (apt-get) for the browser test."
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  if ! { command -v apt-get >/dev/null 2>&1 && $SUDO apt-get update -qq &&
         DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null; }; then
    if [ "${REQUIRE_BROWSER_TEST:-0}" = 1 ]; then
      echo "error: could not install chromium for the browser test" >&2; exit 1
    fi
    echo "warning: could not install chromium; the browser test will be skipped" >&2
  fi
fi
.venv/bin/python -m pytest -q -n "${TEST_WORKERS:-auto}" --dist loadfile "$@"
