#!/usr/bin/env bash
# The local real-component stack: Kafka (KRaft, one node), OPA and PostgreSQL on 127.0.0.1.
#
# usage: deploy/local/stack.sh up|down|restart|status|env|clean [kafka] [opa] [postgres] [kafka-secure]
#   up       install what is missing (cached), start the named components (default: all three)
#            in parallel and write $SAMSYN_VAR/stack/stack.env; components already up and
#            healthy are left alone, so a second `up` takes well under a second
#   down     stop the named components (only processes this clone's stack started)
#   status   a table of what runs where; exit 0 when every named component is up, else 3
#   env      print stack.env (`env --export` prints `export KEY=VALUE` lines for eval)
#   clean    remove the named components' data (only while they are down)
#
# kafka-secure (kafka-secure.sh: a second node with SASL_SSL, SCRAM and ACLs) is optional: it is
# started only when named (its tests start it themselves); `down` without names stops it too.
#
# stack.env (KEY=VALUE lines, for tests and `make run`):
#   SAMSYN_KAFKA_BOOTSTRAP=127.0.0.1:PORT
#   SAMSYN_OPA_URL=http://127.0.0.1:PORT
#   SAMSYN_TEST_POSTGRES_DSN=postgresql+asyncpg://postgres@127.0.0.1:PORT/samsyn_test
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOG_TAG=stack

HERE="$SAMSYN_ROOT/deploy/local"
ALL=(kafka opa postgres)
OPTIONAL=(kafka-secure)

# run_each ACTION COMPONENT...: run `<component>.sh ACTION` for all of them in parallel; fail
# when any failed.
run_each() {
  local action=$1 c failed=()
  shift
  local -A pids=()
  for c in "$@"; do
    "$HERE/$c.sh" "$action" &
    pids[$c]=$!
  done
  for c in "$@"; do
    wait "${pids[$c]}" || failed+=("$c")
  done
  if ((${#failed[@]})); then
    log "$action failed for: ${failed[*]}"
    return 1
  fi
}

cmd_up() {
  local t0 rc=0
  t0=$(now_ms)
  # Installs first, one after the other (Maven and go would fight over two cores otherwise).
  "$HERE/install.sh" -q "$@"
  run_each start "$@" || rc=1
  cmd_status "$@" || true
  ((rc == 0)) || die "not all components came up; logs are under $STACK_DIR"
  log "up in $(($(now_ms) - t0)) ms; environment in $STACK_ENV"
}

cmd_down() {
  run_each stop "$@"
}

cmd_status() {
  local c line rc=0 table
  table=$'COMPONENT\tSTATE\tPID\tADDRESS\tDETAIL'
  for c in "$@"; do
    line=$("$HERE/$c.sh" status) || rc=3
    table+=$'\n'"$line"
  done
  column -t -s $'\t' <<<"$table"
  return "$rc"
}

cmd_env() {
  [[ -s $STACK_ENV ]] || die "no $STACK_ENV: run '$0 up' first"
  if [[ ${1:-} == --export ]]; then
    sed 's/^/export /' "$STACK_ENV"
  else
    cat "$STACK_ENV"
  fi
}

cmd_clean() {
  local c
  for c in "$@"; do "$HERE/$c.sh" clean; done
}

main() {
  local action=${1:-} c
  shift || true
  if [[ $action == env ]]; then
    cmd_env "$@"
    return
  fi
  local components=("$@")
  if ((${#components[@]} == 0)); then
    components=("${ALL[@]}")
    [[ $action == down ]] && components+=("${OPTIONAL[@]}")
  fi
  for c in "${components[@]}"; do
    [[ " ${ALL[*]} ${OPTIONAL[*]} " == *" $c "* ]] ||
      die "unknown component '$c' (${ALL[*]} ${OPTIONAL[*]})"
  done
  case $action in
    up) cmd_up "${components[@]}" ;;
    down) cmd_down "${components[@]}" ;;
    restart) cmd_down "${components[@]}" && cmd_up "${components[@]}" ;;
    status) cmd_status "${components[@]}" ;;
    clean) cmd_clean "${components[@]}" ;;
    *) die "usage: $0 up|down|restart|status|env|clean [kafka] [opa] [postgres] [kafka-secure]" ;;
  esac
}

main "$@"
