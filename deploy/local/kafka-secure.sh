#!/usr/bin/env bash
# A SECOND single-node Kafka (KRaft) that is locked down the way production should be: clients
# connect only over SASL_SSL with SCRAM-SHA-512, the StandardAuthorizer denies whatever no ACL
# allows, and the controller listener takes only TLS clients holding a certificate of the test CA.
# The plaintext node of kafka.sh (used by every other test) is not touched.
#
# usage: deploy/local/kafka-secure.sh start|stop|restart|status|env|clean
#   start    make the CA, certificates, SCRAM users and ACLs when missing, start the node, wait
#            until it answers over TLS; a no-op when it already runs and answers
#   stop     SIGTERM, wait, SIGKILL after 30 s; only the pid it started
#   status   one line: kafka-secure <up|down> <pid> <bootstrap>; exit 0 when up, 3 when down
#   env      print client.env: bootstrap, CA file, the users' names and generated passwords
#   clean    remove the node's data, certificates and passwords (only while stopped)
#
# Principals (SCRAM-SHA-512 users, created at format time with `kafka-storage --add-scram`):
#   admin                 super user: the tooling of this script (ACLs); never given to Samsyn
#   samsyn                Samsyn's own processes: ALL on topics, groups and transactional ids
#                         whose names start with "samsyn." (SAMSYN_TOPIC_PREFIX must start so)
#   org-<org>             one per organisation in SAMSYN_KAFKA_SECURE_ORGS: READ/DESCRIBE on the
#                         topics "samsyn.deliveries.<org>." and consumer groups "<org>." only
#   CN=samsyn-kafka-broker  the node itself on the controller listener (mutual TLS), super user
#
# What the ACLs do and do not enforce (docs/operations.md repeats it): an organisation principal
# cannot read, write or even list any Samsyn topic; in particular not deliveries.v1, which holds
# the slices of every organisation keyed by recipient. Samsyn does not (yet) produce per-org
# topics, so the org ACLs only show the shape: organisations read their slice over the HTTP feed.
#
# Secrets (passwords, CA key, keystore) are generated here under $SAMSYN_VAR/stack/kafka-secure
# (git ignores var/), mode 0600; nothing secret is in the repository.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOG_TAG=kafka-secure

DIR="$STACK_DIR/kafka-secure"
PROPS="$DIR/server.properties"
DATA="$DIR/data"
TLS="$DIR/tls"
SECRETS="$DIR/secrets"
PIDFILE="$DIR/kafka.pid"
LOGFILE="$DIR/kafka.log"
PORTS="$DIR/ports"
CLIENT_ENV="$DIR/client.env"
ADMIN_CONFIG="$SECRETS/admin.properties"
ORGS="${SAMSYN_KAFKA_SECURE_ORGS:-soc-demo}"
# The one prefix Samsyn's topics, consumer groups and transactional ids share on this node.
PREFIX="samsyn."
HEAP="${SAMSYN_KAFKA_HEAP:--Xms256m -Xmx512m}"
START_TIMEOUT="${SAMSYN_KAFKA_START_TIMEOUT:-90}"
MARKER="$PROPS"
BROKER_DN="CN=samsyn-kafka-broker"
TOOL_JVM=(-Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC
  -Dorg.slf4j.simpleLogger.defaultLogLevel=warn)

broker_port() { sed -n 1p "$PORTS" 2>/dev/null; }
controller_port() { sed -n 2p "$PORTS" 2>/dev/null; }
bootstrap() { printf '127.0.0.1:%s\n' "$(broker_port)"; }

kafka_tool() { java "${TOOL_JVM[@]}" -cp "$KAFKA_LIBS/*" "$@"; }

# cds_opts: map the class-data archive that kafka.sh's plaintext node dumped (same JDK, same jar
# set, same main class: the path is computed as kafka.sh does), read-only: JVM start ~2x faster.
# Without one (kafka.sh never ran), start without.
cds_opts() {
  [[ ${SAMSYN_KAFKA_CDS:-1} == 1 ]] || return 0
  local jvm key jsa
  jvm=$(readlink -f "$(command -v java)")
  key=$(stat -c '%n %Y %s' "$jvm" "$(dirname "$jvm")"/../lib/server/libjvm.so "$KAFKA_LIBS_MARKER" \
    2>/dev/null | sha256sum | cut -c1-16)
  jsa="$KAFKA_HOME/cds/server-$key.jsa"
  [[ -s $jsa ]] && printf '%s\n' "-XX:SharedArchiveFile=$jsa" -Xlog:cds=off -Xlog:cds+dynamic=off
  return 0
}

# secret NAME: print the generated password NAME, making it on first use.
secret() {
  local file="$SECRETS/$1.password"
  if [[ ! -s $file ]]; then
    (umask 077 && mkdir -p "$SECRETS" && openssl rand -hex 24 >"$file.tmp" && mv "$file.tmp" "$file")
  fi
  cat "$file"
}

# users: every SCRAM user, one per line.
users() {
  local org
  printf '%s\n' admin samsyn
  for org in $ORGS; do printf 'org-%s\n' "$org"; done
}

# make_tls: a CA and a broker certificate for 127.0.0.1/localhost (serverAuth for the listeners,
# clientAuth because the node is also its own controller's TLS client), a PKCS12 keystore for the
# node and the CA as a PEM truststore. Kept while valid for more than a week.
make_tls() {
  if [[ -s $TLS/broker.p12 && -s $TLS/ca.crt ]] &&
    openssl x509 -checkend 604800 -noout -in "$TLS/broker.crt" >/dev/null 2>&1; then
    return 0
  fi
  log "making a test CA and a broker certificate in $TLS"
  rm -rf "$TLS"
  (umask 077 && mkdir -p "$TLS")
  openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 365 -subj "/CN=Samsyn local test CA" \
    -addext "basicConstraints=critical,CA:true" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$TLS/ca.key" -out "$TLS/ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -sha256 -subj "/$BROKER_DN" \
    -keyout "$TLS/broker.key" -out "$TLS/broker.csr" 2>/dev/null
  printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" \
    "keyUsage=critical,digitalSignature,keyEncipherment" \
    "extendedKeyUsage=serverAuth,clientAuth" >"$TLS/broker.ext"
  openssl x509 -req -sha256 -days 365 -in "$TLS/broker.csr" -CA "$TLS/ca.crt" -CAkey "$TLS/ca.key" \
    -CAcreateserial -extfile "$TLS/broker.ext" -out "$TLS/broker.crt" 2>/dev/null
  openssl pkcs12 -export -in "$TLS/broker.crt" -inkey "$TLS/broker.key" -certfile "$TLS/ca.crt" \
    -name broker -passout "pass:$(secret keystore)" -out "$TLS/broker.p12"
  chmod 0644 "$TLS/ca.crt"
}

write_props() {
  local bport=$1 cport=$2 ks_pass admin_pass
  ks_pass=$(secret keystore)
  admin_pass=$(secret admin)
  (umask 077 && cat >"$PROPS.tmp" <<EOF
# Generated by deploy/local/kafka-secure.sh on each start; edit the script, not this file.
# Holds generated passwords: mode 0600, under var/ (ignored by git).
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=SASL_SSL://127.0.0.1:$bport,CONTROLLER://127.0.0.1:$cport
advertised.listeners=SASL_SSL://127.0.0.1:$bport
controller.listener.names=CONTROLLER
inter.broker.listener.name=SASL_SSL
# The controller listener is TLS with client certificates: KRaft controllers cannot check SCRAM
# (the credentials live in the metadata they serve), and a plaintext controller listener would
# let anyone on the host send admin requests (CreateAcls) to the controller directly.
listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:SSL
listener.name.controller.ssl.client.auth=required
log.dirs=$DATA

# Clients authenticate with SCRAM-SHA-512 over TLS; so does the node to itself.
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$admin_pass";

ssl.keystore.type=PKCS12
ssl.keystore.location=$TLS/broker.p12
ssl.keystore.password=$ks_pass
ssl.key.password=$ks_pass
ssl.truststore.type=PEM
ssl.truststore.location=$TLS/ca.crt
ssl.enabled.protocols=TLSv1.3,TLSv1.2

# Deny by default: what no ACL allows is refused (allow.everyone.if.no.acl.found=false).
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:admin;User:$BROKER_DN

offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=false
num.partitions=3
group.initial.rebalance.delay.ms=0
# The routers' group session is 1.5 s (SAMSYN_ROUTER_SESSION_TIMEOUT_MS: a router gone for
# good is replaced within 3 s); the default floor of 6 s would refuse it.
group.min.session.timeout.ms=1000
broker.heartbeat.interval.ms=500
log.retention.hours=24
log.segment.bytes=67108864
EOF
  )
  mv "$PROPS.tmp" "$PROPS"
  # The tools' connection as admin (ACLs), also 0600.
  (umask 077 && cat >"$ADMIN_CONFIG" <<EOF
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$admin_pass";
ssl.truststore.type=PEM
ssl.truststore.location=$TLS/ca.crt
EOF
  )
}

# format_storage: format once, with every SCRAM user (the node needs "admin" before it can
# authenticate to itself, so the users cannot wait for kafka-configs after start).
format_storage() {
  [[ -f $DATA/meta.properties ]] && return 0
  local cluster_id user
  local -a scram=()
  cluster_id=$(kafka_tool kafka.tools.StorageTool random-uuid | tail -n 1)
  while read -r user; do
    scram+=(--add-scram "SCRAM-SHA-512=[name=$user,password=$(secret "$user")]")
  done < <(users)
  log "formatting $DATA with SCRAM users: $(users | tr '\n' ' ')"
  kafka_tool kafka.tools.StorageTool format -t "$cluster_id" -c "$PROPS" "${scram[@]}" \
    --ignore-formatted >&2
  rm -f "$DIR/acls.done"
}

# probe PORT: a TLS handshake with the test CA, then an ApiVersions round trip (allowed before
# SASL authentication), so "up" means the SASL_SSL listener really serves.
probe() {
  python3 - "$1" "$TLS/ca.crt" <<'PY'
import socket, ssl, struct, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
client = b"samsyn-probe"
req = struct.pack(">hhih", 18, 0, 4242, len(client)) + client
try:
    with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
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

healthy() { pid_alive "$PIDFILE" "$MARKER" && [[ -s $PORTS ]] && probe "$(broker_port)"; }

acl() { kafka_tool org.apache.kafka.tools.AclCommand --bootstrap-server "$(bootstrap)" \
  --command-config "$ADMIN_CONFIG" --add --force "$@" >/dev/null; }

# make_acls: the ACLs (kept in the cluster metadata, so made once per formatted node; adding an
# existing ACL is a no-op). The first call is retried: SCRAM users and the authorizer are loaded
# from the metadata log a moment after the listener answers.
make_acls() {
  local spec org tries=0
  spec=$(printf '%s|%s' "$PREFIX" "$ORGS" | sha256sum | cut -c1-16)
  [[ -s $DIR/acls.done && $(<"$DIR/acls.done") == "$spec" ]] && return 0
  log "adding ACLs for samsyn and org principals ($ORGS)"
  # Samsyn's processes: everything on its own prefixed topics, groups and transactional ids,
  # nothing on the cluster (topics are created per topic, idempotence needs topic WRITE only).
  until acl --allow-principal User:samsyn --operation All --resource-pattern-type prefixed \
    --topic "$PREFIX" --group "$PREFIX" --transactional-id "$PREFIX"; do
    ((++tries < 20)) || die "could not add ACLs; see $LOGFILE"
    sleep 0.5
  done
  for org in $ORGS; do
    acl --allow-principal "User:org-$org" --operation Read --operation Describe \
      --resource-pattern-type prefixed --topic "${PREFIX}deliveries.$org." --group "$org."
  done
  printf '%s\n' "$spec" >"$DIR/acls.done"
}

write_client_env() {
  local org first=""
  for org in $ORGS; do first=${first:-$org}; done
  (umask 077 && {
    printf 'SAMSYN_KAFKA_SECURE_BOOTSTRAP=%s\n' "$(bootstrap)"
    printf 'SAMSYN_KAFKA_SECURE_CAFILE=%s\n' "$TLS/ca.crt"
    printf 'SAMSYN_KAFKA_SECURE_PREFIX=%s\n' "$PREFIX"
    printf 'SAMSYN_KAFKA_SECURE_SAMSYN_USER=samsyn\n'
    printf 'SAMSYN_KAFKA_SECURE_SAMSYN_PASSWORD=%s\n' "$(secret samsyn)"
    printf 'SAMSYN_KAFKA_SECURE_ORG=%s\n' "$first"
    printf 'SAMSYN_KAFKA_SECURE_ORG_USER=org-%s\n' "$first"
    printf 'SAMSYN_KAFKA_SECURE_ORG_PASSWORD=%s\n' "$(secret "org-$first")"
  } >"$CLIENT_ENV.tmp" && mv "$CLIENT_ENV.tmp" "$CLIENT_ENV")
}

cmd_start() {
  "$SAMSYN_ROOT/deploy/local/install.sh" -q kafka
  mkdir -p "$DIR"
  if healthy; then
    log "already up: pid $(<"$PIDFILE"), bootstrap $(bootstrap)"
  elif pid_alive "$PIDFILE" "$MARKER"; then
    wait_for "$START_TIMEOUT" kafka-secure "$PIDFILE" "$MARKER" -- probe "$(broker_port)" ||
      die "pid $(<"$PIDFILE") does not answer; see $LOGFILE, or run '$0 stop'"
  else
    local t0 bport cport
    t0=$(now_ms)
    {
      read -r bport
      read -r cport
    } < <(stored_ports "$PORTS" 2)
    make_tls
    write_props "$bport" "$cport"
    format_storage
    [[ -f $LOGFILE ]] && mv -f "$LOGFILE" "$LOGFILE.1"
    local -a cds
    mapfile -t cds < <(cds_opts)
    log "starting on SASL_SSL://$(bootstrap) (controller SSL 127.0.0.1:$cport), log $LOGFILE"
    # shellcheck disable=SC2086  # HEAP holds several JVM options
    (cd "$DIR" && exec {LOCK_FD}>&- && exec nohup java $HEAP "${cds[@]}" -server -XX:+UseG1GC \
      -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
      -Dorg.slf4j.simpleLogger.logFile=System.out \
      -Dorg.slf4j.simpleLogger.showDateTime=true \
      -Dorg.slf4j.simpleLogger.defaultLogLevel=info \
      -Dorg.slf4j.simpleLogger.log.state.change.logger=warn \
      -Dorg.slf4j.simpleLogger.log.kafka.coordinator=warn \
      -Dorg.slf4j.simpleLogger.log.org.apache.kafka.clients=warn \
      -Dorg.slf4j.simpleLogger.log.kafka.cluster.Partition=warn \
      -Dorg.slf4j.simpleLogger.log.kafka.log.LogManager=warn \
      -Dorg.slf4j.simpleLogger.log.org.apache.kafka.storage.internals.log=warn \
      -cp "$KAFKA_LIBS/*" kafka.Kafka "$PROPS" >"$LOGFILE" 2>&1 </dev/null) &
    printf '%s\n' "$!" >"$PIDFILE"
    if ! wait_for "$START_TIMEOUT" kafka-secure "$PIDFILE" "$MARKER" -- probe "$bport"; then
      tail -n 30 "$LOGFILE" >&2 || true
      die "did not start; see $LOGFILE"
    fi
    log "answering after $(($(now_ms) - t0)) ms"
  fi
  make_acls
  write_client_env
  log "up: pid $(<"$PIDFILE"), SASL_SSL bootstrap $(bootstrap); clients: $CLIENT_ENV"
}

cmd_stop() { stop_pid "$PIDFILE" "$MARKER" kafka-secure "${SAMSYN_KAFKA_STOP_TIMEOUT:-30}"; }

cmd_status() {
  if healthy; then
    printf 'kafka-secure\tup\t%s\t%s\tSASL_SSL SCRAM-SHA-512, ACLs; %s\n' "$(<"$PIDFILE")" \
      "$(bootstrap)" "$CLIENT_ENV"
  elif pid_alive "$PIDFILE" "$MARKER"; then
    printf 'kafka-secure\tstarting\t%s\t%s\n' "$(<"$PIDFILE")" "$(bootstrap)"
    return 3
  else
    printf 'kafka-secure\tdown\t-\t-\n'
    return 3
  fi
}

cmd_env() {
  [[ -s $CLIENT_ENV ]] || die "no $CLIENT_ENV: run '$0 start' first"
  cat "$CLIENT_ENV"
}

cmd_clean() {
  pid_alive "$PIDFILE" "$MARKER" && die "still running; stop it first"
  rm -rf "$DIR"
  log "removed $DIR"
}

case ${1:-} in
  start | stop | restart | clean) lock_dir "$DIR" ;;
esac
case ${1:-} in
  start) cmd_start ;;
  stop) cmd_stop ;;
  restart) cmd_stop && cmd_start ;;
  status) cmd_status ;;
  env) cmd_env ;;
  clean) cmd_clean ;;
  *) die "usage: $0 start|stop|restart|status|env|clean" ;;
esac
