#!/usr/bin/env bash
# The whole test suite, from a fresh clone: virtualenv, packages, Redis, then pytest.
# Extra arguments go to pytest (e.g. scripts/test.sh tests/flows -x).
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
source "$ROOT/scripts/redis.sh"
export TEST_REDIS_URL="${TEST_REDIS_URL:-redis://$REDIS_HOST:$REDIS_PORT/13}"
.venv/bin/python -m pytest -q "$@"
