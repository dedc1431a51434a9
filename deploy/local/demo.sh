#!/usr/bin/env bash
# `make demo`: make sure Samsyn runs (in the background if it does not), then play the story.
set -euo pipefail
LOG_TAG=demo
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
PORT="${1:-8000}"
if ! curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1; then
  "$SAMSYN_ROOT/deploy/local/run.sh" start "$PORT"
fi
set -a
# shellcheck disable=SC1091
source "$SAMSYN_VAR/samsyn.env"
set +a
cd "$SAMSYN_ROOT"
exec .venv/bin/python -m broker.demo story --url "http://127.0.0.1:$PORT"
