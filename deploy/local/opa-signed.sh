#!/usr/bin/env bash
# Signed policy bundles: the production way of handing policies/ to OPA. opa.sh (the default
# stack) packs an unsigned bundle with tar and is left as it is; this script signs.
#
# usage: deploy/local/opa-signed.sh keys|build [OUT]|start|stop|status|clean
#   keys      make the signing key pair when missing (RSA 3072, RS256); print the public key's path
#   build     build policies/ into a signed bundle (default OUT: $DIR/samsyn.tar.gz) with
#             `opa build --signing-key`, then verify it with `opa build --verification-key`
#             (a bundle that fails verification is not left at OUT); print OUT
#   start     OPA on 127.0.0.1:<free port> serving that bundle with --verification-key: OPA
#             refuses to start on a bundle that is unsigned, signed by another key or changed
#             after signing; a no-op when already up. Writes SAMSYN_OPA_SIGNED_URL to stack.env.
#   stop      SIGTERM, then SIGKILL after 10 s; only the pid it started
#   status    one line: opa-signed <up|down> <pid> <url> <revision>
#   clean     remove its keys, bundle and run state (only while stopped)
#
# The key pair lives in $SAMSYN_VAR/stack/opa-signed/keys (private key 0600; var/ is ignored by
# git). In production the private key stays with whoever releases policies (CI, an HSM, a
# release manager's machine); OPA only ever gets the public key (--verification-key, or `keys:`
# in its config for bundles it downloads). See docs/operations.md.
#
# The bundle holds what opa.sh's holds: policies/ without *_test.rego and README.md, the revision
# of policies/ (lib.sh policy_revision) in .manifest, data.system.log.drop so that decision
# logging can hand out decision ids while logging nothing, and data.policy_data_check (lib.sh
# record_policy_data_check).
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOG_TAG=opa-signed

DIR="$STACK_DIR/opa-signed"
KEYS="$DIR/keys"
PRIVATE_KEY="$KEYS/bundle-signing.pem"
PUBLIC_KEY="$KEYS/bundle-verify.pub.pem"
PIDFILE="$DIR/opa.pid"
LOGFILE="$DIR/opa.log"
PORTS="$DIR/ports"
# OPA names a bundle after its path: "samsyn", like opa.sh, so provenance reads the same.
BUNDLE_NAME="samsyn"
SERVED="$DIR/run/$BUNDLE_NAME"
ALG="RS256"
# opa run's command line holds the --verification-key path under $DIR: the pid is ours.
MARKER="$PUBLIC_KEY"
START_TIMEOUT="${SAMSYN_OPA_START_TIMEOUT:-30}"

port() { cat "$PORTS" 2>/dev/null; }
url() { printf 'http://127.0.0.1:%s\n' "$(port)"; }
healthy() { pid_alive "$PIDFILE" "$MARKER" && [[ -s $PORTS ]] && http_ok "$(url)/health?bundles"; }

cmd_keys() {
  if [[ ! -s $PRIVATE_KEY || ! -s $PUBLIC_KEY ]]; then
    log "making the bundle signing key pair in $KEYS"
    (umask 077 && mkdir -p "$KEYS" &&
      openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 -out "$PRIVATE_KEY.tmp" 2>/dev/null &&
      mv "$PRIVATE_KEY.tmp" "$PRIVATE_KEY")
    openssl pkey -in "$PRIVATE_KEY" -pubout -out "$PUBLIC_KEY"
    chmod 0644 "$PUBLIC_KEY"
  fi
  printf '%s\n' "$PUBLIC_KEY"
}

cmd_build() {
  local out=${1:-$DIR/samsyn.tar.gz} rev stage
  "$SAMSYN_ROOT/deploy/local/install.sh" -q opa
  [[ -d $POLICIES_DIR ]] || die "no policies directory at $POLICIES_DIR"
  cmd_keys >/dev/null
  rev=$(policy_revision)
  stage=$(mktemp -d "${TMPDIR:-/tmp}/samsyn-bundle.XXXXXX")
  # shellcheck disable=SC2064  # expand now: the trap must remove this stage directory
  trap "rm -rf '$stage'" EXIT
  cp -a "$POLICIES_DIR/." "$stage/"
  find "$stage" -name '*.md' -type f -delete
  mkdir -p "$stage/system/log"
  cat >"$stage/system/log/samsyn_local_drop.rego" <<'EOF'
# Added by deploy/local/opa-signed.sh: decision logging is on only so that OPA hands out
# decision ids; every log entry is dropped here (Samsyn's audit chain is the record).
package system.log

drop := true
EOF
  record_policy_data_check "$stage"
  mkdir -p "$(dirname "$out")"
  # Run inside the stage so that the bundle's file names are relative (policies/…, not /tmp/…).
  (cd "$stage" && "$OPA_BIN" build --bundle . --ignore '*_test.rego' --revision "$rev" \
    --signing-key "$PRIVATE_KEY" --signing-alg "$ALG" -o "$out.tmp") >&2 ||
    die "opa build failed for $POLICIES_DIR"
  # Verify what was written with the public key, as OPA will.
  "$OPA_BIN" build --bundle "$out.tmp" --verification-key "$PUBLIC_KEY" --signing-alg "$ALG" \
    -o /dev/null >&2 || { rm -f "$out.tmp"; die "the signed bundle does not verify"; }
  mv -f "$out.tmp" "$out"
  log "signed bundle $out, revision $rev"
  printf '%s\n' "$out"
}

cmd_start() {
  "$SAMSYN_ROOT/deploy/local/install.sh" -q opa
  mkdir -p "$DIR/run"
  if healthy; then
    log "already up: pid $(<"$PIDFILE"), $(url)"
  else
    local port
    port=$(stored_ports "$PORTS" 1)
    cmd_build "$SERVED" >/dev/null
    [[ -f $LOGFILE ]] && mv -f "$LOGFILE" "$LOGFILE.1"
    # --verification-key: OPA verifies .signatures.json (RS256 over every file's digest) before
    # it activates the bundle, at start and at every reload (--watch).
    (cd "$DIR/run" && exec {LOCK_FD}>&- && exec nohup "$OPA_BIN" run --server \
      --addr "127.0.0.1:$port" --log-level error --log-format json --watch \
      --bundle "$BUNDLE_NAME" --verification-key "$PUBLIC_KEY" --signing-alg "$ALG" \
      --set decision_logs.console=true --set decision_logs.drop_decision=/system/log/drop \
      >"$LOGFILE" 2>&1 </dev/null) &
    printf '%s\n' "$!" >"$PIDFILE"
    if ! wait_for "$START_TIMEOUT" opa-signed "$PIDFILE" "$MARKER" -- http_ok "$(url)/health?bundles"; then
      tail -n 20 "$LOGFILE" >&2 || true
      die "did not start; see $LOGFILE"
    fi
  fi
  env_set SAMSYN_OPA_SIGNED_URL "$(url)"
  log "up: pid $(<"$PIDFILE"), $(url)"
}

cmd_stop() {
  stop_pid "$PIDFILE" "$MARKER" opa-signed 10
  env_unset SAMSYN_OPA_SIGNED_URL
}

cmd_status() {
  if healthy; then
    printf 'opa-signed\tup\t%s\t%s\tsigned bundle, %s\n' "$(<"$PIDFILE")" "$(url)" "$PUBLIC_KEY"
  else
    printf 'opa-signed\tdown\t-\t-\n'
    return 3
  fi
}

cmd_clean() {
  pid_alive "$PIDFILE" "$MARKER" && die "still running; stop it first"
  rm -rf "$DIR"
  log "removed $DIR"
}

case ${1:-} in
  keys | build | start | stop | clean) lock_dir "$DIR" ;;
esac
case ${1:-} in
  keys) cmd_keys ;;
  build) cmd_build "${2:-}" ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  clean) cmd_clean ;;
  *) die "usage: $0 keys|build [OUT]|start|stop|status|clean" ;;
esac
