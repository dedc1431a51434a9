#!/usr/bin/env bash
# OPA server for local runs and tests, serving policies/ as a bundle with a revision.
#
# usage: deploy/local/opa.sh start|stop|restart|status|reload|revision|clean
#   start     build the bundle, start `opa run --server` on 127.0.0.1:<free port>, wait for
#             GET /health?bundles (200 only once the bundle is active); when already healthy,
#             only a reload if policies/ changed since
#   stop      SIGTERM, wait, SIGKILL after 10 s; only the pid it started
#   status    one line: opa <up|down> <pid> <url> <revision>; exit 0 when up, 3 when down
#   reload    rebuild the bundle from policies/ and wait until OPA serves the new revision
#             (no restart: OPA watches the bundle file, which is replaced atomically; a policy
#             that does not compile is refused by `opa build` and the old bundle stays)
#   revision  print the revision that policies/ has now (see policy_revision in lib.sh)
#   clean     remove OPA's run state (only while stopped)
#
# Why a bundle: OPA reports a bundle's revision in every decision made with ?provenance=true
#   {"provenance": {"bundles": {"samsyn": {"revision": "<rev>"}}, ...}, "decision_id": ..., ...}
# which the router writes into each audit record. Plain `opa run policies/` has no revision.
# Decision logging is switched on (so that OPA returns a decision_id) and every log entry is
# dropped by data.system.log.drop (added to the bundle), unless SAMSYN_OPA_DECISION_LOG=console.
#
# Bundle rules differ from loading a directory: only files named data.json/data.yaml are data
# (policies/x/y/data.json becomes data.x.y); other JSON files and README.md are left out.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOG_TAG=opa

DIR="$STACK_DIR/opa"
PIDFILE="$DIR/opa.pid"
LOGFILE="$DIR/opa.log"
PORTS="$DIR/ports"
# The bundle file is named after the bundle: OPA keys provenance by this name.
BUNDLE_NAME="samsyn"
BUNDLE="$DIR/$BUNDLE_NAME"
DECISION_LOG="${SAMSYN_OPA_DECISION_LOG:-drop}"
START_TIMEOUT="${SAMSYN_OPA_START_TIMEOUT:-30}"
# Go's garbage collector target. Evaluating a batch allocates much short-lived memory; at 200
# (Go's default is 100) OPA spends 15-20 % less CPU per decision for ~70 MB more RSS (bench/,
# docs/bench/journal.md). Decision logging with the drop rule converts each answer once more
# (5-13 ms per 100-event query with the plain decisions; nothing measurable with the router's
# indexed answer, which is a tenth of the size).
GOGC_PERCENT="${SAMSYN_OPA_GOGC:-200}"
MARKER="$OPA_BIN run --server"

port() { cat "$PORTS" 2>/dev/null; }
url() { printf 'http://127.0.0.1:%s\n' "$(port)"; }

healthy() {
  pid_alive "$PIDFILE" "$MARKER" && [[ -s $PORTS ]] && http_ok "$(url)/health?bundles"
}

# served_revision: the revision OPA reports for the bundle (empty when none).
served_revision() {
  # A generous timeout: on a loaded machine a 2 s answer read as "no revision" made every
  # parallel test session reload the bundle.
  curl -s -m 10 "$(url)/v1/data/__samsyn_probe?provenance=true" |
    python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["provenance"]["bundles"]["'"$BUNDLE_NAME"'"]["revision"])' \
      2>/dev/null
}

serves_revision() { [[ $(served_revision) == "$1" ]]; }

# build_bundle: stage policies/ with a .manifest carrying the current revision and the
# decision-log drop rule, check it with `opa check --bundle` (a policy that does not compile is
# refused here), record the outcome of checking its policy data (lib.sh
# record_policy_data_check), pack it and replace the bundle file atomically. Prints the revision.
# The tarball is packed with tar rather than `opa build`: OPA v1.22.3's `opa build` panics
# ("hash of unhashable type: ast.Ref") on a rule annotated `entrypoint: true` whose head ref has
# a non-variable term such as decisions[e.ref][c.org]; `opa check` and `opa run` load it fine.
build_bundle() {
  local rev stage="$DIR/stage"
  [[ -d $POLICIES_DIR ]] || die "no policies directory at $POLICIES_DIR"
  rev=$(policy_revision)
  rm -rf "$stage"
  mkdir -p "$stage"
  cp -a "$POLICIES_DIR/." "$stage/"
  find "$stage" -name '*.md' -type f -delete
  printf '{"revision": "%s", "roots": [""]}\n' "$rev" >"$stage/.manifest"
  if [[ $DECISION_LOG != console ]]; then
    mkdir -p "$stage/system/log"
    cat >"$stage/system/log/samsyn_local_drop.rego" <<'EOF'
# Added by deploy/local/opa.sh: decision logging is on only so that OPA hands out decision ids;
# every log entry is dropped here.
package system.log

drop := true
EOF
  fi
  "$OPA_BIN" check --bundle "$stage" >&2 ||
    die "opa check failed for $POLICIES_DIR; the served bundle is unchanged"
  record_policy_data_check "$stage"
  find "$stage" -mindepth 1 -maxdepth 1 -printf '%P\0' |
    tar -C "$stage" --null -T - -czf "$BUNDLE.tmp"
  mv -f "$BUNDLE.tmp" "$BUNDLE"
  rm -rf "$stage"
  printf '%s\n' "$rev"
}

cmd_start() {
  "$SAMSYN_ROOT/deploy/local/install.sh" -q opa
  mkdir -p "$DIR"
  if healthy; then
    local served
    served=$(served_revision)
    log "already up: pid $(<"$PIDFILE"), $(url), revision $served"
    # policies/ changed since the bundle was built: serve the current policies.
    [[ $served == "$(policy_revision)" ]] || cmd_reload
    env_set SAMSYN_OPA_URL "$(url)"
    return 0
  fi
  if pid_alive "$PIDFILE" "$MARKER"; then
    wait_for "$START_TIMEOUT" opa "$PIDFILE" "$MARKER" -- http_ok "$(url)/health?bundles" ||
      die "pid $(<"$PIDFILE") does not answer; see $LOGFILE, or run '$0 stop'"
  else
    local rev port t0
    t0=$(now_ms)
    port=$(stored_ports "$PORTS" 1)
    rev=$(build_bundle)
    local -a decision_log=(--set decision_logs.console=true)
    [[ $DECISION_LOG == console ]] ||
      decision_log+=(--set decision_logs.drop_decision=/system/log/drop)
    [[ -f $LOGFILE ]] && mv -f "$LOGFILE" "$LOGFILE.1"
    log "starting on $(url) with bundle revision $rev, log $LOGFILE"
    # Run from $DIR with a relative bundle path, so that the bundle's name is "samsyn".
    (cd "$DIR" && exec {LOCK_FD}>&- && GOGC="$GOGC_PERCENT" exec nohup "$OPA_BIN" run --server --addr "127.0.0.1:$port" \
      --log-level error --log-format json --watch --bundle "$BUNDLE_NAME" \
      "${decision_log[@]}" >"$LOGFILE" 2>&1 </dev/null) &
    printf '%s\n' "$!" >"$PIDFILE"
    if ! wait_for "$START_TIMEOUT" opa "$PIDFILE" "$MARKER" -- http_ok "$(url)/health?bundles"; then
      tail -n 20 "$LOGFILE" >&2 || true
      die "did not start; see $LOGFILE"
    fi
    log "answering after $(($(now_ms) - t0)) ms"
  fi
  env_set SAMSYN_OPA_URL "$(url)"
  log "up: pid $(<"$PIDFILE"), $(url), revision $(served_revision)"
}

cmd_reload() {
  pid_alive "$PIDFILE" "$MARKER" || die "not running; start it first"
  local rev
  rev=$(build_bundle)
  wait_for 15 "opa reload" "$PIDFILE" "$MARKER" -- serves_revision "$rev" ||
    die "OPA still serves revision $(served_revision), not $rev; see $LOGFILE"
  log "serving revision $rev"
}

cmd_stop() {
  stop_pid "$PIDFILE" "$MARKER" opa 10
  env_unset SAMSYN_OPA_URL
}

cmd_status() {
  if healthy; then
    local served stale=""
    served=$(served_revision)
    [[ $served == "$(policy_revision)" ]] || stale=" (policies/ changed since: run '$0 reload')"
    printf 'opa\tup\t%s\t%s\trevision %s%s\n' "$(<"$PIDFILE")" "$(url)" "$served" "$stale"
  elif pid_alive "$PIDFILE" "$MARKER"; then
    printf 'opa\tstarting\t%s\t%s\n' "$(<"$PIDFILE")" "$(url)"
    return 3
  else
    printf 'opa\tdown\t-\t-\n'
    return 3
  fi
}

cmd_clean() {
  pid_alive "$PIDFILE" "$MARKER" && die "still running; stop it first"
  rm -rf "$DIR"
  log "removed $DIR"
}

case ${1:-} in
  start | stop | restart | reload | clean) lock_dir "$DIR" ;;
esac
case ${1:-} in
  start) cmd_start ;;
  stop) cmd_stop ;;
  restart) cmd_stop && cmd_start ;;
  status) cmd_status ;;
  reload) cmd_reload ;;
  revision) policy_revision ;;
  clean) cmd_clean ;;
  *) die "usage: $0 start|stop|restart|status|reload|revision|clean" ;;
esac
