# shellcheck shell=bash disable=SC2034  # the variables are used by the scripts that source this
# Shared helpers for the local real-component stack (Kafka, OPA, PostgreSQL).
# Sourced by install.sh, kafka.sh, opa.sh, postgres.sh and stack.sh; not run on its own.
#
# Two places hold state:
#   SAMSYN_CACHE  (default ~/.cache/samsyn)   downloads and builds, shared by every clone on the
#                                            machine (Maven's ~/.m2 and Go's caches sit beside it)
#   SAMSYN_VAR    (default <clone>/var)       run state of this clone: $SAMSYN_VAR/stack holds
#                                            configs, data dirs, pidfiles, logs and stack.env

# ---- pinned versions (override with the environment variable of the same name) -------------
KAFKA_VERSION="${KAFKA_VERSION:-4.1.1}"
# Kafka 4.x and 3.9.x both pin slf4j-api 1.7.36; slf4j-simple of the same line is the binding
# (slf4j-simple 2.x would be ignored by a 1.7 API and Kafka would log nothing).
SLF4J_VERSION="${SLF4J_VERSION:-1.7.36}"
OPA_VERSION="${OPA_VERSION:-v1.22.3}"
# Regal, the Rego linter of `make lint` (a development tool: never on the servers).
REGAL_VERSION="${REGAL_VERSION:-v0.38.1}"

# ---- locations ------------------------------------------------------------------------------
SAMSYN_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SAMSYN_CACHE="${SAMSYN_CACHE:-${HOME:-/root}/.cache/samsyn}"
SAMSYN_VAR="${SAMSYN_VAR:-$SAMSYN_ROOT/var}"
STACK_DIR="$SAMSYN_VAR/stack"
STACK_ENV="$STACK_DIR/stack.env"

# The pom whose dependencies are the Kafka runtime: the server (kafka_2.13), the command-line
# tools (kafka-tools: StorageTool, TopicCommand, ...) and an slf4j binding so Kafka's log
# reaches its log file. Kafka 3.x brings slf4j-reload4j, a second binding that wins and logs
# nothing without a log4j config: it is excluded (4.x has none).
kafka_pom() {
  local ex='<exclusions><exclusion><groupId>org.slf4j</groupId><artifactId>slf4j-reload4j</artifactId></exclusion></exclusions>'
  cat <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>se.samsyn.local</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>$KAFKA_VERSION</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version>$ex</dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$KAFKA_VERSION</version>$ex</dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-api</artifactId><version>$SLF4J_VERSION</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-simple</artifactId><version>$SLF4J_VERSION</version></dependency>
  </dependencies>
</project>
EOF
}

KAFKA_HOME="$SAMSYN_CACHE/kafka-$KAFKA_VERSION"
KAFKA_POM_HASH=$(kafka_pom | sha256sum | cut -c1-12)
# One directory per jar set (the pom's hash): changing the pom never replaces the jars under a
# running Kafka. install.sh writes .complete last.
KAFKA_LIBS="$KAFKA_HOME/libs-$KAFKA_POM_HASH"
KAFKA_LIBS_MARKER="$KAFKA_LIBS/.complete"
OPA_BIN="$SAMSYN_CACHE/opa-$OPA_VERSION/opa"
REGAL_BIN="$SAMSYN_CACHE/regal-$REGAL_VERSION/regal"
POLICIES_DIR="${SAMSYN_POLICIES:-$SAMSYN_ROOT/policies}"

export SAMSYN_ROOT SAMSYN_CACHE SAMSYN_VAR STACK_DIR

# ---- messages -------------------------------------------------------------------------------
log() { printf '[%s] %s\n' "${LOG_TAG:-samsyn}" "$*" >&2; }
die() { printf '[%s] error: %s\n' "${LOG_TAG:-samsyn}" "$*" >&2; exit 1; }

# Milliseconds since the epoch (for timings in messages).
now_ms() { date +%s%3N; }

# ---- ports ----------------------------------------------------------------------------------
# free_ports N: print N distinct free TCP ports on 127.0.0.1, one per line. All sockets are held
# open until every port is chosen, so the N ports differ.
free_ports() {
  python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print("\n".join(str(s.getsockname()[1]) for s in socks))
PY
}

# JVM options of a Kafka server (kafka.sh, kafka-cluster.sh): G1 with short pauses, and a log
# that says what matters (slf4j-simple on stdout, chatty loggers at warn).
KAFKA_SERVER_OPTS=(-server -XX:+UseG1GC -XX:MaxGCPauseMillis=20
  -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent
  -Djava.awt.headless=true
  -Dorg.slf4j.simpleLogger.logFile=System.out
  -Dorg.slf4j.simpleLogger.showDateTime=true
  "-Dorg.slf4j.simpleLogger.dateTimeFormat=yyyy-MM-dd'T'HH:mm:ss.SSS"
  -Dorg.slf4j.simpleLogger.defaultLogLevel=info
  -Dorg.slf4j.simpleLogger.log.state.change.logger=warn
  -Dorg.slf4j.simpleLogger.log.kafka.coordinator=warn
  -Dorg.slf4j.simpleLogger.log.org.apache.kafka.clients=warn
  -Dorg.slf4j.simpleLogger.log.kafka.cluster.Partition=warn
  -Dorg.slf4j.simpleLogger.log.kafka.log.LogManager=warn
  -Dorg.slf4j.simpleLogger.log.org.apache.kafka.storage.internals.log=warn)

# kafka_probe PORT: a real Kafka round trip (ApiVersions request) on 127.0.0.1:PORT, ~50 ms.
kafka_probe() {
  python3 - "$1" <<'PY'
import socket, struct, sys
client = b"samsyn-probe"
# header v1: api_key=18 (ApiVersions), api_version=0, correlation_id, client_id; empty v0 body
req = struct.pack(">hhih", 18, 0, 4242, len(client)) + client
try:
    with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2) as s:
        s.sendall(struct.pack(">i", len(req)) + req)
        buf = b""
        while len(buf) < 10:
            chunk = s.recv(4096)
            if not chunk:
                sys.exit(1)
            buf += chunk
except OSError:
    sys.exit(1)
size, corr, err = struct.unpack(">iih", buf[:10])
sys.exit(0 if corr == 4242 and err == 0 else 1)
PY
}

# kafka_brokers_ready BOOTSTRAP COUNT: the cluster's metadata names COUNT brokers. A broker
# answers ApiVersions (kafka_probe) before the controller has unfenced it, and until then refuses
# to create a topic ("only 0 broker(s) are registered"); `samsyn topics` comes right after a start.
kafka_brokers_ready() {
  "$SAMSYN_ROOT/.venv/bin/python" - "$1" "$2" <<'PY'
import asyncio, sys
from aiokafka.admin import AIOKafkaAdminClient

async def main() -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=sys.argv[1], request_timeout_ms=3000)
    try:
        await admin.start()
        cluster = await admin.describe_cluster()
        return 0 if len(cluster["brokers"]) == int(sys.argv[2]) else 1
    except Exception:
        return 1
    finally:
        await admin.close()

sys.exit(asyncio.run(main()))
PY
}

# port_is_free PORT: true when nothing listens on (and nothing holds) 127.0.0.1:PORT.
port_is_free() {
  python3 - "$1" <<'PY'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
PY
}

# port_open PORT: true when a TCP connect to 127.0.0.1:PORT succeeds.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# stored_ports FILE COUNT: print the COUNT ports kept in FILE (one per line) when all of them are
# still free; otherwise pick COUNT new free ports, store and print them. Ports therefore stay the
# same from one start to the next unless something else took them.
stored_ports() {
  local file=$1 count=$2 port ok=1
  if [[ -s $file && $(wc -l <"$file") -eq $count ]]; then
    while read -r port; do
      port_is_free "$port" || ok=0
    done <"$file"
    if ((ok)); then cat "$file"; return 0; fi
  fi
  free_ports "$count" >"$file.tmp"
  mv "$file.tmp" "$file"
  cat "$file"
}

# ---- pidfiles -------------------------------------------------------------------------------
# pid_alive PIDFILE MARKER: true when PIDFILE names a live process whose command line contains
# MARKER (guards against a recycled pid belonging to some other program).
pid_alive() {
  local pidfile=$1 marker=$2 pid
  [[ -s $pidfile ]] || return 1
  pid=$(<"$pidfile")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  [[ -r /proc/$pid/cmdline ]] || return 0
  local cmdline
  cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline") || return 1
  [[ $cmdline == *"$marker"* ]]
}

# stop_pid PIDFILE MARKER NAME [TIMEOUT]: SIGTERM the process, wait up to TIMEOUT seconds
# (default 30), then SIGKILL. Only touches a process that pid_alive recognises.
stop_pid() {
  local pidfile=$1 marker=$2 name=$3 timeout=${4:-30} pid deadline
  if ! pid_alive "$pidfile" "$marker"; then
    rm -f "$pidfile"
    log "$name: not running"
    return 0
  fi
  pid=$(<"$pidfile")
  log "$name: stopping pid $pid"
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$(($(date +%s) + timeout))
  while kill -0 "$pid" 2>/dev/null; do
    if (($(date +%s) >= deadline)); then
      log "$name: still running after ${timeout}s, sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
      break
    fi
    sleep 0.2
  done
  rm -f "$pidfile"
}

# ---- locks ----------------------------------------------------------------------------------
# lock_dir DIR: hold an exclusive lock on DIR/.lock until the script exits, so that concurrent
# starts and stops of one component (parallel test sessions calling `stack.sh up`) run one after
# the other. The lock's descriptor is LOCK_FD: close it in any long-lived child (`{LOCK_FD}>&-`)
# or the child would hold the lock after the script ends.
LOCK_FD=""
lock_dir() {
  mkdir -p "$1"
  exec {LOCK_FD}>"$1/.lock"
  flock -w "${SAMSYN_LOCK_TIMEOUT:-600}" "$LOCK_FD" || die "could not lock $1 within ${SAMSYN_LOCK_TIMEOUT:-600}s"
}

# ---- waiting --------------------------------------------------------------------------------
# wait_for TIMEOUT DESCRIPTION PIDFILE MARKER -- CMD...: run CMD every 0.25 s until it succeeds.
# Fails after TIMEOUT seconds, or at once when the process behind PIDFILE has died (pass "" as
# PIDFILE to skip that check).
wait_for() {
  local timeout=$1 what=$2 pidfile=$3 marker=$4 deadline
  shift 4
  [[ ${1:-} == -- ]] && shift
  deadline=$(($(date +%s) + timeout))
  until "$@" >/dev/null 2>&1; do
    if [[ -n $pidfile ]] && ! pid_alive "$pidfile" "$marker"; then
      log "$what: process exited while waiting"
      return 1
    fi
    if (($(date +%s) >= deadline)); then
      log "$what: not ready after ${timeout}s"
      return 1
    fi
    sleep 0.25
  done
}

# http_ok URL: true when GET URL answers 200.
http_ok() {
  local code
  code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$1" 2>/dev/null) || return 1
  [[ $code == 200 ]]
}

# ---- env file -------------------------------------------------------------------------------
# Components start in parallel, so every change of stack.env holds a lock.
_env_edit() {
  local key=$1 value=${2-} lock
  mkdir -p "$STACK_DIR"
  exec {lock}>"$STACK_DIR/.stack.env.lock"
  flock "$lock"
  touch "$STACK_ENV"
  {
    grep -v "^$key=" "$STACK_ENV" || true
    if [[ $# -eq 2 ]]; then printf '%s=%s\n' "$key" "$value"; fi
  } | LC_ALL=C sort >"$STACK_ENV.tmp.$$"
  mv "$STACK_ENV.tmp.$$" "$STACK_ENV"
  exec {lock}>&-
}

# env_set KEY VALUE: write KEY=VALUE into stack.env, replacing an earlier KEY line.
env_set() { _env_edit "$1" "$2"; }

# env_unset KEY: drop KEY from stack.env.
env_unset() { _env_edit "$1"; }

# ---- tools ----------------------------------------------------------------------------------
# postgres_bindir: print the bin directory of the newest installed PostgreSQL server
# (/usr/lib/postgresql/<major>/bin, Debian's layout); fails when none is installed.
postgres_bindir() {
  local initdb
  initdb=$(printf '%s\n' /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)
  [[ -x $initdb ]] || return 1
  dirname "$initdb"
}

# policy_revision: a revision string for the policies directory. When the directory is
# committed and unchanged it is git's tree id (git-tree:<sha1>, findable with `git show`);
# otherwise a digest of the files (sha256:<hex>). SAMSYN_POLICY_REVISION overrides both.
policy_revision() {
  if [[ -n ${SAMSYN_POLICY_REVISION:-} ]]; then
    printf '%s\n' "$SAMSYN_POLICY_REVISION"
    return 0
  fi
  local rel tree
  rel=$(realpath --relative-to="$SAMSYN_ROOT" "$POLICIES_DIR")
  if [[ $rel != ..* ]] && git -C "$SAMSYN_ROOT" rev-parse --verify -q HEAD >/dev/null 2>&1 &&
    tree=$(git -C "$SAMSYN_ROOT" rev-parse --verify -q "HEAD:$rel" 2>/dev/null) &&
    [[ -z $(git -C "$SAMSYN_ROOT" status --porcelain --untracked-files=all -- "$rel" 2>/dev/null) ]]; then
    printf 'git-tree:%s\n' "$tree"
    return 0
  fi
  printf 'sha256:%s\n' "$(
    cd "$POLICIES_DIR" &&
      find . -type f ! -name '.*' -print0 | LC_ALL=C sort -z |
      xargs -0 -r sha256sum | sha256sum | cut -d' ' -f1
  )"
}

# record_policy_data_check STAGE: write STAGE/policy_data_check/data.json, the outcome of
# checking the staged bundle's policy data (samsyn.ceiling.checked_data_failures) with the
# SHA-256 of that data, so that OPA reads the outcome instead of checking again at every query
# (policies/samsyn/ceiling.rego, data_failures). A record already in STAGE is refused: it could
# be of other data (OPA would then check at each query, which is slow but still right).
record_policy_data_check() {
  local stage=$1 record
  [[ ! -e $stage/policy_data_check ]] ||
    die "policies/ holds a policy_data_check: it is made by the bundle build, remove it"
  record=$("$OPA_BIN" eval --bundle "$stage" --format raw \
    '{"sha256": crypto.sha256(json.marshal(data.data)), "failures": sort(data.samsyn.ceiling.checked_data_failures)}') ||
    die "could not check the policy data in $stage"
  mkdir -p "$stage/policy_data_check"
  printf '%s\n' "$record" >"$stage/policy_data_check/data.json"
}
