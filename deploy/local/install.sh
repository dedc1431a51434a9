#!/usr/bin/env bash
# Install the local stack's programs into the cache, idempotently:
#   kafka     Kafka's jars resolved from Maven Central with Maven into $SAMSYN_CACHE/kafka-<v>/libs
#   opa       OPA built with `go install` into $SAMSYN_CACHE/opa-<v>/opa
#   regal     the Rego linter, built the same way into $SAMSYN_CACHE/regal-<v>/regal (for
#             `make lint` only; not part of the default set)
#   postgres  PostgreSQL server binaries from Debian's packages (apt) when initdb is missing
#
# usage: deploy/local/install.sh [-q] [kafka] [opa] [postgres]     (default: all three)
#        deploy/local/install.sh opa-path      install OPA if needed, print the binary's path
#        deploy/local/install.sh regal-path    the same for Regal
#   -q  say nothing when everything is already in place
# Each step is skipped when its result is already in place, so a second run takes well under a
# second.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOG_TAG=install

QUIET=0

# cached MESSAGE: report a step that had nothing to do (silent with -q).
cached() { ((QUIET)) || log "$@"; }

need_root_for() {
  [[ $(id -u) -eq 0 ]] || die "$1 is missing and installing it needs root: run 'sudo apt-get install -y $2'"
}

apt_install() {
  need_root_for "$1" "$2"
  log "installing Debian package(s): $2"
  # shellcheck disable=SC2086  # $2 is a list of package names
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $2; } >&2
}

install_kafka() {
  local pomdir="$SAMSYN_CACHE/kafka-pom-$KAFKA_VERSION" tmp
  if [[ -f $KAFKA_LIBS_MARKER ]]; then
    cached "kafka $KAFKA_VERSION: jars cached in $KAFKA_LIBS"
  else
    command -v java >/dev/null || apt_install java openjdk-17-jdk-headless
    command -v mvn >/dev/null || apt_install mvn maven
    log "kafka $KAFKA_VERSION: resolving jars with Maven into $KAFKA_LIBS"
    mkdir -p "$pomdir" "$KAFKA_HOME"
    kafka_pom >"$pomdir/pom.xml"
    # Resolve into a fresh directory and rename it into place: the directory is named after the
    # pom's hash, so a Kafka still running from an older jar set is never touched.
    tmp="$KAFKA_LIBS.tmp.$$"
    rm -rf "$tmp"
    # (sed: Maven 3.8 writes colour resets even in batch mode)
    mvn -q -B -Dstyle.color=never -f "$pomdir/pom.xml" dependency:copy-dependencies \
      -DoutputDirectory="$tmp" -DincludeScope=runtime 2>&1 | sed 's/\x1b\[[0-9;]*m//g' >&2
    printf '%s\n' "$KAFKA_POM_HASH" >"$tmp/.complete"
    rm -rf "$KAFKA_LIBS"
    mv "$tmp" "$KAFKA_LIBS"
    log "kafka $KAFKA_VERSION: $(find "$KAFKA_LIBS" -name '*.jar' | wc -l) jars"
  fi
}

# opa_matches: the cached binary reports the pinned version. (Its output is captured first:
# `opa version | grep -q` under pipefail fails at random when grep exits before opa.)
opa_matches() {
  local out
  [[ -x $OPA_BIN ]] && out=$("$OPA_BIN" version 2>/dev/null) &&
    [[ $'\n'$out$'\n' == *$'\n'"Version: ${OPA_VERSION#v}"$'\n'* ]]
}

install_opa() {
  if opa_matches; then
    cached "opa $OPA_VERSION: cached at $OPA_BIN"
    return 0
  fi
  command -v go >/dev/null || die "go is missing: OPA is built with 'go install'"
  log "opa $OPA_VERSION: go install github.com/open-policy-agent/opa@$OPA_VERSION"
  mkdir -p "$(dirname "$OPA_BIN")"
  GOBIN="$(dirname "$OPA_BIN")" go install "github.com/open-policy-agent/opa@$OPA_VERSION" >&2
  opa_matches ||
    die "opa at $OPA_BIN does not report version $OPA_VERSION"
}

install_regal() {
  if [[ -x $REGAL_BIN ]]; then
    cached "regal $REGAL_VERSION: cached at $REGAL_BIN"
    return 0
  fi
  command -v go >/dev/null || die "go is missing: Regal is built with Go"
  log "regal $REGAL_VERSION: building github.com/open-policy-agent/regal@$REGAL_VERSION"
  # A throwaway module that requires Regal, built with -mod=mod, rather than `go install
  # regal@v`: that one also reads the module's version list (for deprecation notices), which the
  # Go module proxy refuses for Regal. Built in a fresh directory and renamed into place when
  # complete, so a build cut short never leaves a binary the check above takes for finished.
  # (Installs hold the cache's lock, so no other build is under way in a .tmp directory.)
  local tmp
  tmp="$(dirname "$REGAL_BIN").tmp.$$"
  rm -rf "$(dirname "$REGAL_BIN")".tmp.*
  mkdir -p "$tmp/module"
  printf 'module samsyn.local/regal-build\n\ngo 1.25\n\nrequire github.com/open-policy-agent/regal %s\n' \
    "$REGAL_VERSION" >"$tmp/module/go.mod"
  (cd "$tmp/module" && go build -mod=mod -o "$tmp/regal" github.com/open-policy-agent/regal) >&2
  rm -rf "$tmp/module" "$(dirname "$REGAL_BIN")"
  mv "$tmp" "$(dirname "$REGAL_BIN")"
}

install_postgres() {
  local bindir
  if bindir=$(postgres_bindir); then
    cached "postgres: $("$bindir/postgres" --version) in $bindir"
    return 0
  fi
  apt_install "PostgreSQL (initdb)" postgresql
  bindir=$(postgres_bindir) || die "postgresql installed but no initdb under /usr/lib/postgresql"
  log "postgres: $("$bindir/postgres" --version) in $bindir"
}

main() {
  if [[ ${1:-} == -q ]]; then QUIET=1; shift; fi
  local components=("$@") c
  ((${#components[@]})) || components=(kafka opa postgres)
  # One install at a time per cache (every clone on the machine shares it).
  lock_dir "$SAMSYN_CACHE"
  if [[ ${components[*]} == opa-path ]]; then
    QUIET=1 install_opa
    printf '%s\n' "$OPA_BIN"
    return 0
  fi
  if [[ ${components[*]} == regal-path ]]; then
    QUIET=1 install_regal
    printf '%s\n' "$REGAL_BIN"
    return 0
  fi
  for c in "${components[@]}"; do
    case $c in
      kafka) install_kafka ;;
      opa) install_opa ;;
      postgres) install_postgres ;;
      regal) install_regal ;;
      *) die "unknown component '$c' (kafka, opa, postgres, regal)" ;;
    esac
  done
}

main "$@"
