#!/usr/bin/env bash
# Run Samsyn on the local stack: `run.sh [PORT]` in the foreground, `run.sh start [PORT]` in the
# background (used by `make demo`), `run.sh stop`. The stack (Kafka, OPA, PostgreSQL) must be up:
# `deploy/local/stack.sh up` (make does that first).
#
# Two processes, as deployed: the API (`samsyn serve`, with the router and the other workers)
# on PORT, and the read side (`samsyn worker materializer sealer`: feeds and the audit chain)
# with its /healthz, /readyz and /metrics on SAMSYN_READ_SIDE_PORT (default: a free port, printed
# in the banner and kept in var/read-side.port).
#
# Development credentials live in var/samsyn.env (made once, ignored by git): the admin client
# and nothing else; keys are generated at first start and kept in the database.
set -euo pipefail
LOG_TAG=run
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUN_ENV="$SAMSYN_VAR/samsyn.env"
PIDFILE="$SAMSYN_VAR/samsyn.pid"
LOGFILE="$SAMSYN_VAR/samsyn.log"
READ_PIDFILE="$SAMSYN_VAR/samsyn-read-side.pid"
READ_LOGFILE="$SAMSYN_VAR/samsyn-read-side.log"
READ_PORTFILE="$SAMSYN_VAR/read-side.port"
PY="$SAMSYN_ROOT/.venv/bin/python"

ensure_env() {
  mkdir -p "$SAMSYN_VAR"
  if [[ ! -s $RUN_ENV ]]; then
    umask 077
    {
      echo "SAMSYN_ADMIN_CLIENT_ID=local-admin"
      echo "SAMSYN_ADMIN_CLIENT_SECRET=$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')"
    } >"$RUN_ENV"
  fi
  set -a
  # shellcheck disable=SC1090
  source "$STACK_ENV"
  # shellcheck disable=SC1090
  source "$RUN_ENV"
  set +a
  export SAMSYN_DATABASE_URL="${SAMSYN_DATABASE_URL:-sqlite+aiosqlite:///$SAMSYN_VAR/samsyn.db}"
  export SAMSYN_ISSUER="${SAMSYN_ISSUER:-http://127.0.0.1:$PORT}"
}

alive() { [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }
running() { alive "$PIDFILE"; }

# wait_ready URL PIDFILE LOGFILE
wait_ready() {
  local deadline=$((SECONDS + 90))
  until curl -fsS "$1/readyz" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "Samsyn did not become ready at $1; see $3"
    alive "$2" || die "Samsyn exited; see $3"
    sleep 0.5
  done
}

# The read side, started once the API has migrated the database and made the development keys.
start_read_side() {
  READ_PORT="${SAMSYN_READ_SIDE_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
  echo "$READ_PORT" >"$READ_PORTFILE"
  SAMSYN_METRICS_PORT="$READ_PORT" nohup "$PY" -m broker.cli worker materializer sealer \
    >"$READ_LOGFILE" 2>&1 </dev/null &
  echo $! >"$READ_PIDFILE"
  wait_ready "http://127.0.0.1:$READ_PORT" "$READ_PIDFILE" "$READ_LOGFILE"
}

stop_read_side() {
  if alive "$READ_PIDFILE"; then
    kill "$(cat "$READ_PIDFILE")" && log "stopped Samsyn's read side (pid $(cat "$READ_PIDFILE"))"
  fi
  rm -f "$READ_PIDFILE" "$READ_PORTFILE"
}

banner() {
  cat <<MSG

  Samsyn kör / is running            http://127.0.0.1:$PORT
  API-dokumentation / API docs        http://127.0.0.1:$PORT/docs
  Granskarkonsol / auditors' console  http://127.0.0.1:$PORT/audit/
  Uppföljning / cooperation follow-up http://127.0.0.1:$PORT/audit/cooperation/
  Databas / database                  $SAMSYN_DATABASE_URL
  Kafka                               $SAMSYN_KAFKA_BOOTSTRAP
  OPA                                 $SAMSYN_OPA_URL
  Admin-klient / admin client         $RUN_ENV  (source it for the scenario runner)
  Lässidan / read side (feeds, audit) http://127.0.0.1:$READ_PORT/readyz  (log: $READ_LOGFILE)

MSG
}

seed() {
  "$PY" -m broker.demo seed --url "http://127.0.0.1:$PORT"
}

seed_year() {
  # A year of fictional activity for the follow-up's charts, in the background (once).
  log "ett års demoaktivitet i bakgrunden / a year of demo activity in the background: $SAMSYN_VAR/demo-year.log"
  "$PY" -m broker.demo year --url "http://127.0.0.1:$PORT" >"$SAMSYN_VAR/demo-year.log" 2>&1 &
}

case "${1:-}" in
  stop)
    stop_read_side
    if running; then
      kill "$(cat "$PIDFILE")" && log "stopped Samsyn (pid $(cat "$PIDFILE"))"
    fi
    rm -f "$PIDFILE"
    exit 0
    ;;
  start)
    PORT="${2:-8000}"
    ensure_env
    cd "$SAMSYN_ROOT"
    if running; then
      wait_ready "http://127.0.0.1:$PORT" "$PIDFILE" "$LOGFILE"
      if alive "$READ_PIDFILE"; then
        READ_PORT="$(cat "$READ_PORTFILE")"
        wait_ready "http://127.0.0.1:$READ_PORT" "$READ_PIDFILE" "$READ_LOGFILE"
      else
        start_read_side
      fi
      exit 0
    fi
    "$PY" -m broker.cli topics >/dev/null
    nohup "$PY" -m broker.cli serve --port "$PORT" >"$LOGFILE" 2>&1 </dev/null &
    echo $! >"$PIDFILE"
    wait_ready "http://127.0.0.1:$PORT" "$PIDFILE" "$LOGFILE"
    start_read_side
    seed
    banner
    ;;
  *)
    PORT="${1:-8000}"
    ensure_env
    running && die "Samsyn already runs (pid $(cat "$PIDFILE")); make stop first"
    cd "$SAMSYN_ROOT"
    "$PY" -m broker.cli topics >/dev/null
    "$PY" -m broker.cli serve --port "$PORT" > >(tee "$LOGFILE") 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$PIDFILE"
    trap 'stop_read_side; kill "$pid" 2>/dev/null; rm -f "$PIDFILE"' INT TERM EXIT
    wait_ready "http://127.0.0.1:$PORT" "$PIDFILE" "$LOGFILE"
    start_read_side
    seed
    seed_year
    banner
    log "Ctrl-C stoppar Samsyn / stops Samsyn (the stack keeps running: make stop)"
    wait "$pid"
    ;;
esac
