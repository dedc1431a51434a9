#!/usr/bin/env bash
# Throwaway PostgreSQL cluster for the PostgreSQL test leg (SQLite is the default elsewhere).
#
# usage: deploy/local/postgres.sh start|stop|restart|status|clean
#   start   initdb on first use (trust auth, loopback only), start on 127.0.0.1:<free port>,
#           wait for pg_isready, create the databases samsyn and samsyn_test; a no-op when up
#   stop    pg_ctl stop -m fast (only this cluster)
#   status  one line: postgres <up|down> <pid> <host:port>; exit 0 when up, 3 when down
#   clean   remove the cluster (only while stopped)
#
# PostgreSQL refuses to run as root. As root the server runs as the OS user `postgres` (created
# by Debian's package; a system user `samsyn-pg` is created when it is missing); otherwise as the
# calling user. The cluster lives in $SAMSYN_VAR/stack/postgres/pg, or, when that user cannot
# reach it (a clone under /root, say), in ${TMPDIR:-/tmp}/samsyn-pg-<hash>.
# Durability is switched off (fsync, full_page_writes, synchronous_commit): test data only.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOG_TAG=postgres

DIR="$STACK_DIR/postgres"
PORTS="$DIR/ports"
DATABASES=(samsyn samsyn_test)
START_TIMEOUT="${SAMSYN_POSTGRES_START_TIMEOUT:-60}"

port() { cat "$PORTS" 2>/dev/null; }

# The OS user the server runs as, and a runner for commands as that user.
if [[ $(id -u) -eq 0 ]]; then
  PG_OS_USER="${SAMSYN_POSTGRES_OS_USER:-postgres}"
else
  PG_OS_USER="$(id -un)"
fi

as_pg() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u "$PG_OS_USER" -- "$@"
  else
    "$@"
  fi
}

ensure_os_user() {
  [[ $(id -u) -eq 0 ]] || return 0
  id -u "$PG_OS_USER" >/dev/null 2>&1 && return 0
  if [[ $PG_OS_USER == postgres ]]; then
    PG_OS_USER=samsyn-pg
    id -u "$PG_OS_USER" >/dev/null 2>&1 && return 0
  fi
  log "creating system user $PG_OS_USER to run the server"
  useradd --system --no-create-home --shell /usr/sbin/nologin "$PG_OS_USER"
}

# pg_base: where the cluster lives (see the header). Creates and owns the directory.
pg_base() {
  local base="$DIR/pg"
  mkdir -p "$base"
  if [[ $(id -u) -eq 0 ]]; then
    chown "$PG_OS_USER:" "$base"
    chmod 700 "$base"
    if ! as_pg test -w "$base" 2>/dev/null; then
      rmdir "$base" 2>/dev/null || true
      base="${TMPDIR:-/tmp}/samsyn-pg-$(printf '%s' "$DIR" | sha256sum | cut -c1-12)"
      mkdir -p "$base"
      chown "$PG_OS_USER:" "$base"
      chmod 700 "$base"
    fi
  fi
  printf '%s\n' "$base"
}

postmaster_pid() { as_pg head -n 1 "$DATA/postmaster.pid" 2>/dev/null; }

healthy() {
  [[ -s $PORTS && -d $DATA ]] &&
    as_pg "$PGBIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1 &&
    "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$(port)" -t 2
}

psql_admin() {
  "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$(port)" -U postgres -d postgres "$@"
}

init_cluster() {
  [[ -f $DATA/PG_VERSION ]] && return 0
  log "initdb $DATA"
  as_pg "$PGBIN/initdb" -D "$DATA" -U postgres --auth=trust --encoding=UTF8 --locale=C \
    --no-sync >/dev/null
  # Our settings live in one file, rewritten on each start (the port may change).
  printf "\ninclude_if_exists = 'samsyn.conf'\n" | as_pg tee -a "$DATA/postgresql.conf" >/dev/null
}

write_conf() {
  local p=$1
  as_pg mkdir -p "$BASE/sock"
  as_pg tee "$DATA/samsyn.conf" >/dev/null <<EOF
# Written by deploy/local/postgres.sh on each start.
listen_addresses = '127.0.0.1'
port = $p
unix_socket_directories = '$BASE/sock'
max_connections = 200
shared_buffers = 128MB
# Throwaway test cluster: durability off for speed.
fsync = off
full_page_writes = off
synchronous_commit = off
log_min_messages = warning
log_timezone = 'UTC'
timezone = 'UTC'
EOF
}

create_databases() {
  local db
  for db in "${DATABASES[@]}"; do
    if [[ -z $(psql_admin -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'") ]]; then
      psql_admin -c "CREATE DATABASE $db"
      log "created database $db"
    fi
  done
}

dsn() { printf 'postgresql+asyncpg://postgres@127.0.0.1:%s/%s\n' "$(port)" "$1"; }

setup() {
  ensure_os_user
  PGBIN=$(postgres_bindir) || {
    "$SAMSYN_ROOT/deploy/local/install.sh" -q postgres
    PGBIN=$(postgres_bindir)
  }
  mkdir -p "$DIR"
  BASE=$(pg_base)
  DATA="$BASE/data"
  LOGFILE="$BASE/postgres.log"
}

cmd_start() {
  setup
  if healthy; then
    log "already up: pid $(postmaster_pid), 127.0.0.1:$(port)"
  else
    local t0 p
    t0=$(now_ms)
    if as_pg "$PGBIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
      # Running but not answering on its port yet (another start in progress).
      wait_for "$START_TIMEOUT" postgres "" "" -- "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$(port)" ||
        die "the server in $DATA does not answer; see $LOGFILE, or run '$0 stop'"
    else
      p=$(stored_ports "$PORTS" 1)
      init_cluster
      write_conf "$p"
      log "starting on 127.0.0.1:$p, log $LOGFILE"
      as_pg "$PGBIN/pg_ctl" -D "$DATA" -l "$LOGFILE" -w -t "$START_TIMEOUT" start \
        >/dev/null {LOCK_FD}>&- || {
        tail -n 20 "$LOGFILE" >&2 || true
        die "did not start; see $LOGFILE"
      }
      wait_for "$START_TIMEOUT" postgres "" "" -- "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$p" ||
        die "pg_isready fails on 127.0.0.1:$p; see $LOGFILE"
      log "answering after $(($(now_ms) - t0)) ms"
    fi
  fi
  create_databases
  env_set SAMSYN_TEST_POSTGRES_DSN "$(dsn samsyn_test)"
  log "up: pid $(postmaster_pid), $(dsn samsyn_test)"
}

cmd_stop() {
  setup
  if as_pg "$PGBIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
    log "stopping pid $(postmaster_pid)"
    as_pg "$PGBIN/pg_ctl" -D "$DATA" -m fast -w -t 30 stop >/dev/null ||
      as_pg "$PGBIN/pg_ctl" -D "$DATA" -m immediate -w -t 30 stop >/dev/null
  else
    log "postgres: not running"
  fi
  env_unset SAMSYN_TEST_POSTGRES_DSN
}

cmd_status() {
  setup
  if healthy; then
    printf 'postgres\tup\t%s\t127.0.0.1:%s\tdatabases %s\n' "$(postmaster_pid)" "$(port)" \
      "${DATABASES[*]}"
  elif as_pg "$PGBIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
    printf 'postgres\tstarting\t%s\t127.0.0.1:%s\n' "$(postmaster_pid)" "$(port)"
    return 3
  else
    printf 'postgres\tdown\t-\t-\n'
    return 3
  fi
}

cmd_clean() {
  setup
  as_pg "$PGBIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1 && die "still running; stop it first"
  rm -rf "$BASE" "$DIR"
  log "removed $DIR${BASE:+ and $BASE}"
}

case ${1:-} in
  start | stop | restart | clean) lock_dir "$DIR" ;;
esac
case ${1:-} in
  start) cmd_start ;;
  stop) cmd_stop ;;
  restart) cmd_stop && cmd_start ;;
  status) cmd_status ;;
  clean) cmd_clean ;;
  *) die "usage: $0 start|stop|restart|status|clean" ;;
esac
