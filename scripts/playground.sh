#!/usr/bin/env bash
# The local playground, from a fresh clone: virtualenv, packages, then the chat in this terminal.
# It uses Redis at $REDIS_URL when one answers, and an in-process store otherwise.
# Extra arguments go to the playground (e.g. scripts/playground.sh --lang en).
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
exec .venv/bin/python -m bot playground "$@"
