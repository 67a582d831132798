#!/usr/bin/env bash
# The whole test suite, from a fresh clone: virtualenv, packages, Redis, then pytest, two workers
# per core (pytest-xdist; TEST_WORKERS=1 for one process), each on a Redis database of its own.
# Extra arguments go to pytest (e.g. scripts/test.sh tests/flows -x).
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
source "$ROOT/scripts/redis.sh"
export ESIGN_TEST_REDIS_URL="${ESIGN_TEST_REDIS_URL:-redis://$REDIS_HOST:$REDIS_PORT/8}"

# The browser tests (tests/web/test_browser*.py, tests/webplay/test_browser*.py) drive Debian's
# chromium through Playwright (from PyPI, in the test extras; it never downloads a browser), and
# measure that Chinese and emoji render rather than show as boxes (tests/webplay/glyphs.py): they
# need CJK and emoji fonts (Debian's fonts-noto-cjk and fonts-noto-color-emoji). What is missing is
# installed with apt-get; with REQUIRE_BROWSER_TEST=1 (CI) a failed install stops the run instead.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
has_font() {  # has_font LANG-OR-PATTERN: fontconfig knows a font for it
  command -v fc-list >/dev/null 2>&1 || return 1
  case "$1" in
    zh) [ -n "$(fc-list :lang=zh family 2>/dev/null)" ] ;;
    emoji) fc-list 2>/dev/null | grep -qi "emoji" ;;
  esac
}
NEED=()
[ -x /usr/bin/chromium ] || NEED+=(chromium)
has_font zh || NEED+=(fonts-noto-cjk)
has_font emoji || NEED+=(fonts-noto-color-emoji)
if [ ${#NEED[@]} -gt 0 ]; then
  echo "Installing for the browser tests with apt-get: ${NEED[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  if ! { command -v apt-get >/dev/null 2>&1 && $SUDO apt-get update -qq &&
         DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${NEED[@]}" >/dev/null; }; then
    if [ "${REQUIRE_BROWSER_TEST:-0}" = 1 ]; then
      echo "error: could not install ${NEED[*]} for the browser tests" >&2; exit 1
    fi
    echo "warning: could not install ${NEED[*]}; browser tests will be skipped (no chromium) or fail (no fonts)" >&2
  fi
fi
# Two workers per core: many tests spend their time waiting on processes they start. At most 8,
# so that their databases (8, 9, … from the URL's) stay within Redis's default 16.
cores="$(nproc 2>/dev/null || echo 2)"
workers="${TEST_WORKERS:-$(( cores * 2 < 8 ? cores * 2 : 8 ))}"
.venv/bin/python -m pytest -q -n "$workers" --dist loadfile "$@"
