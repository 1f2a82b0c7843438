#!/usr/bin/env bash
# deploy/local/stack.sh - the local engagiert stack, without Docker.
#
# Installs, starts and stops a real Apache Kafka broker (KRaft, one combined node), FerretDB on
# PostgreSQL (MongoDB wire protocol) and Mailpit (SMTP + REST API), plus the three Python services.
# Everything lives under $STACK_DIR (default <repo>/.stack):
#   bin/          ferretdb, mailpit (built from the Go module proxy)
#   kafka-libs/   the broker's jars (resolved by Maven from deploy/local/kafka/pom.xml)
#   data/         all data (Kafka log dirs, PostgreSQL cluster for FerretDB, Mailpit's DB)
#   logs/         one <name>.log per process
#   run/          one <name>.pid per process; postgres/ (PostgreSQL's Unix socket)
#
# Usage: deploy/local/stack.sh <command>   (see `usage` below or deploy/local/README.md)
set -euo pipefail

# --- Pinned versions ----------------------------------------------------------------------------
KAFKA_VERSION=4.1.1        # org.apache.kafka:kafka_2.13 (overrides the pom's kafka.version)
LOG4J_VERSION=2.24.3       # log4j-core + log4j-slf4j-impl (overrides the pom's log4j.version)
FERRETDB_VERSION=v1.24.2   # github.com/FerretDB/FerretDB
MAILPIT_VERSION=v1.27.11   # github.com/axllent/mailpit

# --- Settings (all overridable from the environment) --------------------------------------------
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$SCRIPT_DIR/../.." && pwd)
STACK_DIR=${STACK_DIR:-$REPO_DIR/.stack}
KAFKA_PORT=${KAFKA_PORT:-9092}
KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-9093}
MONGODB_PORT=${MONGODB_PORT:-27017}
POSTGRES_PORT=${POSTGRES_PORT:-5433}     # FerretDB's PostgreSQL backend (5433: leaves 5432 alone)
SMTP_PORT=${SMTP_PORT:-1025}
MAILPIT_HTTP_PORT=${MAILPIT_HTTP_PORT:-8025}
REGISTRY_PORT=${REGISTRY_PORT:-8001}
EVENTS_PORT=${EVENTS_PORT:-8002}
NOTIFICATIONS_PORT=${NOTIFICATIONS_PORT:-8003}
CONSOLE_PORT=${CONSOLE_PORT:-8000}
TOPIC_PARTITIONS=${TOPIC_PARTITIONS:-3}
KAFKA_HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xmx512m -Xms256m}
INFRA_TIMEOUT=${INFRA_TIMEOUT:-90}       # seconds until Kafka/FerretDB/Mailpit must be healthy
SERVICE_TIMEOUT=${SERVICE_TIMEOUT:-60}   # seconds until a service's /readyz must answer 200
STOP_TIMEOUT=${STOP_TIMEOUT:-30}         # seconds between SIGTERM and SIGKILL

BIN_DIR=$STACK_DIR/bin
KAFKA_LIBS=$STACK_DIR/kafka-libs
DATA_DIR=$STACK_DIR/data
LOG_DIR=$STACK_DIR/logs
RUN_DIR=$STACK_DIR/run
# PostgreSQL runs as the `postgres` OS user, which must be able to reach this folder (every
# parent directory traversable): override it when STACK_DIR is under e.g. /root.
POSTGRES_DATA_DIR=${POSTGRES_DATA_DIR:-$DATA_DIR/postgres}
POSTGRES_SOCKET_DIR=$RUN_DIR/postgres
KAFKA_POM=$SCRIPT_DIR/kafka/pom.xml
KAFKA_LOG4J=$SCRIPT_DIR/kafka/log4j2.properties
PY=$REPO_DIR/.venv/bin/python

KAFKA_BOOTSTRAP=localhost:$KAFKA_PORT
# Kafka's own security: clients authenticate with SASL/SCRAM-SHA-512 on the client listener and the
# StandardAuthorizer's ACLs decide what each principal may do (nothing without an ACL). The
# operator's super user `admin` is what tests and tools use; each service has a principal of its
# own with ACLs for its topics and groups only (engagiert.shared.access). Local secrets only: the
# Helm chart takes real ones from Secrets.
KAFKA_SASL_MECHANISM=SCRAM-SHA-512
KAFKA_ADMIN_USER=${KAFKA_ADMIN_USER:-admin}
KAFKA_ADMIN_PASSWORD=${KAFKA_ADMIN_PASSWORD:-engagiert-kafka-admin-local}
KAFKA_SERVICE_USERS=(registry events notifications)
# A service's local Kafka password (the same rule in the storage format and in services-up).
kafka_service_password() { printf 'engagiert-kafka-%s-local' "$1"; }
LOCAL_MONGODB_URL=mongodb://127.0.0.1:$MONGODB_PORT/
# A MONGODB_URL from the environment switches FerretDB off (that server is used instead), unless
# it is just our own local URL (e.g. exported earlier by `stack.sh env`).
EXTERNAL_MONGODB=false
if [[ -n ${MONGODB_URL:-} && ${MONGODB_URL} != "$LOCAL_MONGODB_URL" ]]; then
  EXTERNAL_MONGODB=true
fi
EFFECTIVE_MONGODB_URL=${MONGODB_URL:-$LOCAL_MONGODB_URL}

# Go may be installed but not on PATH in non-login shells.
if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then
  PATH=$PATH:/usr/local/go/bin
fi

INFRA=(kafka postgres ferretdb mailpit)
SERVICES=(registry events notifications console)

# What a component's command line contains: guards against a recycled pid in a stale pid file.
declare -A MARKER=(
  [kafka]=kafka.Kafka
  [postgres]="bin/postgres -D $POSTGRES_DATA_DIR"
  [ferretdb]=ferretdb
  [mailpit]=mailpit
  [registry]=engagiert.registry.main:app
  [events]=engagiert.events.main:app
  [notifications]=engagiert.notifications.main:app
  [console]=engagiert.console.main:app
)
declare -A PORTS=(
  [kafka]="$KAFKA_PORT $KAFKA_CONTROLLER_PORT"
  [postgres]="$POSTGRES_PORT"
  [ferretdb]="$MONGODB_PORT"
  [mailpit]="$SMTP_PORT $MAILPIT_HTTP_PORT"
  [registry]="$REGISTRY_PORT"
  [events]="$EVENTS_PORT"
  [notifications]="$NOTIFICATIONS_PORT"
  [console]="$CONSOLE_PORT"
)
# Which variable a user sets to move a component to another port (for error messages).
declare -A PORT_VARS=(
  [$KAFKA_PORT]=KAFKA_PORT [$KAFKA_CONTROLLER_PORT]=KAFKA_CONTROLLER_PORT
  [$MONGODB_PORT]=MONGODB_PORT [$POSTGRES_PORT]=POSTGRES_PORT [$SMTP_PORT]=SMTP_PORT [$MAILPIT_HTTP_PORT]=MAILPIT_HTTP_PORT
  [$REGISTRY_PORT]=REGISTRY_PORT [$EVENTS_PORT]=EVENTS_PORT
  [$NOTIFICATIONS_PORT]=NOTIFICATIONS_PORT [$CONSOLE_PORT]=CONSOLE_PORT
)
# The signal that stops a component (default TERM). PostgreSQL: SIGINT = "fast" shutdown (SIGTERM
# would wait for every client to disconnect).
declare -A STOP_SIGNAL=([postgres]=INT)

# --- Keycloak (sign-in) --------------------------------------------------------------------------
# Keycloak runs from the Maven Central distribution zip on Java 21+ (never the Java 17 Kafka uses),
# in dev mode (H2 file database) on loopback, with its hostname pinned so that the issuer is always
# http://127.0.0.1:$KEYCLOAK_PORT/realms/engagiert. The realm comes from keycloak/engagiert-realm.json.
KEYCLOAK_VERSION=26.5.6    # org.keycloak:keycloak-quarkus-dist (zip)
KEYCLOAK_PORT=${KEYCLOAK_PORT:-8080}
KEYCLOAK_TIMEOUT=${KEYCLOAK_TIMEOUT:-420}  # seconds until the realm's discovery document answers
KEYCLOAK_HEAP_OPTS=${KEYCLOAK_HEAP_OPTS:--Xms64m -Xmx512m}
# jboss-threads needs this on Java 24+ (else its worker threads die with an IllegalAccessError).
KEYCLOAK_JAVA_OPTS=${KEYCLOAK_JAVA_OPTS-"--add-opens=java.base/java.lang=ALL-UNNAMED"}
# The master realm's administrator (local only; tests use it to rotate keys and create realms).
KEYCLOAK_ADMIN_USER=${KEYCLOAK_ADMIN_USER:-admin}
KEYCLOAK_ADMIN_PASSWORD=${KEYCLOAK_ADMIN_PASSWORD:-engagiert-admin}
KEYCLOAK_REALM=engagiert
KEYCLOAK_HOME=$STACK_DIR/keycloak-$KEYCLOAK_VERSION
KEYCLOAK_DATA=$DATA_DIR/keycloak
KEYCLOAK_REALM_FILE=$SCRIPT_DIR/keycloak/engagiert-realm.json
KEYCLOAK_URL=http://127.0.0.1:$KEYCLOAK_PORT
KEYCLOAK_ISSUER=$KEYCLOAK_URL/realms/$KEYCLOAK_REALM

INFRA+=(keycloak)
MARKER[keycloak]="keycloak-$KEYCLOAK_VERSION/"
PORTS[keycloak]=$KEYCLOAK_PORT
PORT_VARS[$KEYCLOAK_PORT]=KEYCLOAK_PORT

# --- Helpers -------------------------------------------------------------------------------------
say() { printf '%s\n' "$*"; }
die() { printf 'stack: error: %s\n' "$*" >&2; exit 1; }

# Hide the password of a URL like mongodb://user:secret@host/ in messages.
mask_url() { sed -E 's#//([^:/@]+):[^@]*@#//\1:***@#' <<<"$1"; }

need() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || die "'$tool' is needed but not installed"
  done
}

need_venv() {
  [[ -x $PY ]] || die "$PY not found: run 'uv sync' in $REPO_DIR first"
}

# Serialise concurrent invocations (e.g. two `up`s). Children must not inherit fd 9, or they
# would hold the lock for as long as they run: launch() closes it.
take_lock() {
  mkdir -p "$RUN_DIR"
  exec 9>"$RUN_DIR/stack.lock"
  flock -w 600 9 || die "another stack.sh holds $RUN_DIR/stack.lock"
}

pid_file() { printf '%s/%s.pid' "$RUN_DIR" "$1"; }
log_file() { printf '%s/%s.log' "$LOG_DIR" "$1"; }

# Print the pid of component $1 if it is running (pid file + live process + matching command line).
running_pid() {
  local name=$1 file pid cmdline
  file=$(pid_file "$name")
  [[ -f $file ]] || return 1
  pid=$(<"$file")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [[ -r /proc/$pid/cmdline ]] || return 1
  cmdline=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || return 1
  [[ $cmdline == *"${MARKER[$name]}"* ]] || return 1
  printf '%s' "$pid"
}

# Describe who listens on TCP port $1 ("pid 123: python3 -m http.server"), or fail when nobody does.
port_owner() {
  local port=$1 line pid cmd
  line=$(ss -Hltnp "( sport = :$port )" 2>/dev/null | head -n 1) || true
  [[ -n $line ]] || return 1
  pid=$(grep -oE 'pid=[0-9]+' <<<"$line" | head -n 1 | cut -d= -f2) || true
  if [[ -n $pid ]]; then
    cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-120) || true
    printf 'pid %s: %s' "$pid" "${cmd:-?}"
  else
    printf 'unknown process (run as root or use ss -ltnp to see it)'
  fi
}

# Refuse to start component $1 when one of its ports is taken by anything else.
check_ports_free() {
  local name=$1 port owner
  for port in ${PORTS[$name]}; do
    if owner=$(port_owner "$port"); then
      die "$name: port $port is in use by another process ($owner); stop it or set ${PORT_VARS[$port]}"
    fi
  done
}

# Print (to stderr) the last 40 lines of component $1's log, from its latest start only.
tail_log() {
  local file
  file=$(log_file "$1")
  printf -- '----- last lines of %s -----\n' "$file" >&2
  awk '/^===== .* starting / { n = 0 } { lines[++n] = $0 }
       END { for (i = (n > 40 ? n - 39 : 1); i <= n; i++) print lines[i] }' "$file" >&2 2>/dev/null || true
  printf -- '-----\n' >&2
}

# Start "$@" in the background, in its own session (Ctrl-C in this terminal does not reach it),
# with stdout/stderr appended to logs/<name>.log and its pid in run/<name>.pid.
launch() {
  local name=$1
  shift
  mkdir -p "$LOG_DIR" "$RUN_DIR"
  printf '===== %s starting %s: %s\n' "$(date -Is)" "$name" "$*" >>"$(log_file "$name")"
  setsid "$@" </dev/null >>"$(log_file "$name")" 2>&1 9>&- &
  echo $! >"$(pid_file "$name")"
}

# Wait until `$2` (a health check function) succeeds for component $1, for at most $3 seconds.
wait_healthy() {
  local name=$1 check=$2 timeout=$3 deadline=$((SECONDS + $3))
  until "$check"; do
    if ! running_pid "$name" >/dev/null; then
      tail_log "$name"
      die "$name: exited during startup (log: $(log_file "$name"))"
    fi
    if ((SECONDS >= deadline)); then
      tail_log "$name"
      die "$name: not healthy after ${timeout}s (log: $(log_file "$name"))"
    fi
    sleep 0.5
  done
}

# True while process $1 exists and is not a zombie (an exited child nobody has reaped yet).
alive() {
  local stat
  kill -0 "$1" 2>/dev/null || return 1
  stat=$(cat 2>/dev/null <"/proc/$1/stat") || return 1
  [[ ${stat##*) } != Z* ]]
}

# Stop components "$@" together: SIGTERM to each, wait up to STOP_TIMEOUT seconds for all of
# them to exit, SIGKILL what is left; remove their pid files.
stop_components() {
  local name pid
  local -A pids=() killed=()
  for name in "$@"; do
    if pid=$(running_pid "$name"); then
      say "$name: stopping (pid $pid)"
      kill -"${STOP_SIGNAL[$name]:-TERM}" "$pid" 2>/dev/null || true
      pids[$name]=$pid
    else
      say "$name: not running"
      rm -f "$(pid_file "$name")"
    fi
  done
  local deadline=$((SECONDS + STOP_TIMEOUT))
  while ((${#pids[@]})); do
    for name in "${!pids[@]}"; do
      if ! alive "${pids[$name]}"; then
        rm -f "$(pid_file "$name")"
        say "$name: stopped"
        unset "pids[$name]"
      elif ((SECONDS >= deadline)) && [[ -z ${killed[$name]:-} ]]; then
        say "$name: still running after ${STOP_TIMEOUT}s, sending SIGKILL"
        kill -KILL "${pids[$name]}" 2>/dev/null || true
        killed[$name]=1
      fi
    done
    if ((${#pids[@]})); then sleep 0.2; fi
  done
  return 0
}

# --- Health checks (exit status only) ------------------------------------------------------------

# Kafka: a real metadata round trip (describe cluster + list topics), not just a TCP connect.
kafka_healthy() {
  timeout 20 "$PY" - "$KAFKA_BOOTSTRAP" "$KAFKA_ADMIN_USER" "$KAFKA_ADMIN_PASSWORD" >/dev/null 2>&1 <<'PYEOF'
import asyncio
import sys

from aiokafka.admin import AIOKafkaAdminClient


async def main() -> None:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=sys.argv[1],
        request_timeout_ms=5000,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_plain_username=sys.argv[2],
        sasl_plain_password=sys.argv[3],
    )
    await admin.start()
    try:
        cluster = await admin.describe_cluster()
        if not cluster.get("brokers"):
            raise SystemExit("no broker registered yet")
        await admin.list_topics()
    finally:
        await admin.close()


asyncio.run(main())
PYEOF
}

# FerretDB (or the external MONGODB_URL): a ping through PyMongo.
mongodb_healthy() {
  timeout 20 "$PY" - "$EFFECTIVE_MONGODB_URL" >/dev/null 2>&1 <<'PYEOF'
import sys

from pymongo import MongoClient

with MongoClient(sys.argv[1], serverSelectionTimeoutMS=3000) as client:
    client.admin.command("ping")
PYEOF
}
ferretdb_healthy() { mongodb_healthy; }

postgres_healthy() {
  "$PG_BIN/pg_isready" -q -t 3 -h 127.0.0.1 -p "$POSTGRES_PORT" -U postgres >/dev/null 2>&1
}

mailpit_healthy() {
  curl -fsS --max-time 3 -o /dev/null "http://127.0.0.1:$MAILPIT_HTTP_PORT/readyz" 2>/dev/null
}

service_port() {
  case $1 in
    registry) echo "$REGISTRY_PORT" ;;
    events) echo "$EVENTS_PORT" ;;
    notifications) echo "$NOTIFICATIONS_PORT" ;;
    console) echo "$CONSOLE_PORT" ;;
  esac
}
service_healthy_port() {
  [[ $(curl -s --max-time 3 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/readyz" 2>/dev/null) == 200 ]]
}
registry_healthy() { service_healthy_port "$REGISTRY_PORT"; }
events_healthy() { service_healthy_port "$EVENTS_PORT"; }
notifications_healthy() { service_healthy_port "$NOTIFICATIONS_PORT"; }
console_healthy() { service_healthy_port "$CONSOLE_PORT"; }  # ready = the sign-in provider answers

# --- install -------------------------------------------------------------------------------------

install_kafka() {
  need mvn java sha256sum
  local stamp want
  want="$(sha256sum "$KAFKA_POM" | cut -d' ' -f1) kafka=$KAFKA_VERSION log4j=$LOG4J_VERSION"
  stamp=$KAFKA_LIBS/.stamp
  if [[ -f $stamp && $(<"$stamp") == "$want" && -f $KAFKA_LIBS/kafka_2.13-$KAFKA_VERSION.jar ]]; then
    say "kafka: jars up to date ($KAFKA_VERSION)"
    return 0
  fi
  say "kafka: resolving Kafka $KAFKA_VERSION jars with Maven into $KAFKA_LIBS"
  # Copy into a fresh folder and swap, so jars of an older pom (e.g. another SLF4J binding) go.
  local tmp=$STACK_DIR/kafka-libs.tmp
  rm -rf "$tmp"
  mkdir -p "$STACK_DIR"
  # (Debian's Maven 3.8 prints bare colour-reset codes even with -B: strip them.)
  mvn -q -B -f "$KAFKA_POM" \
    -Dkafka.version="$KAFKA_VERSION" -Dlog4j.version="$LOG4J_VERSION" \
    dependency:copy-dependencies -DoutputDirectory="$tmp" </dev/null 2>&1 |
    sed -E $'s/\x1b\\[[0-9;]*m//g; /^$/d'
  [[ -f $tmp/kafka_2.13-$KAFKA_VERSION.jar ]] || die "kafka: Maven did not produce kafka_2.13-$KAFKA_VERSION.jar"
  check_kafka_logging "$tmp"
  rm -rf "$KAFKA_LIBS"
  mv "$tmp" "$KAFKA_LIBS"
  printf '%s' "$want" >"$stamp"
}

# The published Kafka POM leaves out the logging back end; a binding that does not match the
# resolved slf4j-api makes SLF4J fall back to its no-op logger and the broker logs nothing.
check_kafka_logging() {
  local libs=$1 out
  out=$(java -cp "$libs/*" -Dlog4j2.configurationFile="$KAFKA_LOG4J" -Dkafka.logs.dir="${TMPDIR:-/tmp}" \
    kafka.tools.StorageTool random-uuid 2>&1) || die "kafka: StorageTool failed: $out"
  if grep -qE 'No SLF4J providers|StaticLoggerBinder|NOP logger' <<<"$out"; then
    die "kafka: the SLF4J binding does not match slf4j-api in $libs (fix $KAFKA_POM): $out"
  fi
}

# FerretDB v1 loses concurrent updates of one document (unlocked read-modify-write); the
# services rely on MongoDB's atomic single-document updates. deploy/local/ferretdb/ adds
# per-document locks to its update and findAndModify commands (engagiert_doclocks.go,
# update-locks.patch), lets PostgreSQL answer `_id` lookups by its index and `$in` filters at
# all (pushdown.patch; without it every lookup by _id scans the table and every `$in` reads and
# decodes the whole collection), gives `$ne`/`$nin` through an array of documents MongoDB's
# meaning (ne-on-arrays.patch), and writes the documents one update changed in one transaction
# instead of one each (update-batch.patch; the outbox relay's clean-up is one such update),
# gives every index a GIN index on the same fields beside its B-tree (containment-index.patch:
# FerretDB pushes an equality filter down as jsonb containment, `@>`, which a B-tree cannot
# answer, so every query by an indexed field but _id scanned and decoded the whole table: the
# relays' pending-flag polls, lookups by member or event; pushdown.patch writes other `$in`s as
# one containment per value and lets PostgreSQL pre-select date ranges), and leaves the leak tracking of
# document iterators to debug builds (release-tracking.patch: a stack trace and a finalizer per
# iterator, 18 % of its CPU under the relay's load).
FERRETDB_PATCH_DIR=$SCRIPT_DIR/ferretdb

ferretdb_patch_id() {
  cat "$FERRETDB_PATCH_DIR"/*.go "$FERRETDB_PATCH_DIR"/*.patch | sha256sum | cut -c1-16
}

install_ferretdb() {
  local bin=$BIN_DIR/ferretdb stamp=$BIN_DIR/ferretdb.patch-id patch_id
  patch_id=$(ferretdb_patch_id)
  # (Output is captured before matching: with pipefail, `cmd | grep -q` can fail on SIGPIPE.)
  if [[ -x $bin && $("$bin" --version 2>/dev/null) == *"version: $FERRETDB_VERSION"* &&
    $(cat "$stamp" 2>/dev/null) == "$patch_id" ]]; then
    say "ferretdb: $FERRETDB_VERSION (with engagiert patches) installed"
    return 0
  fi
  need go
  # `go install github.com/FerretDB/FerretDB/cmd/ferretdb@VERSION` builds a binary that panics at
  # start ("Invalid build/version/version.txt file content"): version.txt is generated from git
  # and is not in the module zip. So: copy the module source, write version.txt, build that.
  say "ferretdb: building $FERRETDB_VERSION from the Go module proxy (takes about a minute)"
  local src build
  src=$(go mod download -json "github.com/FerretDB/FerretDB@$FERRETDB_VERSION" |
    sed -nE 's/^[[:space:]]*"Dir": "(.*)",?$/\1/p')
  [[ -d $src ]] || die "ferretdb: go mod download did not give a source folder"
  build=$STACK_DIR/build/ferretdb-$FERRETDB_VERSION
  rm -rf "$build"
  mkdir -p "$build" "$BIN_DIR"
  cp -R "$src/." "$build/"
  chmod -R u+w "$build"
  printf '%s\n' "$FERRETDB_VERSION" >"$build/build/version/version.txt"
  printf 'source\n' >"$build/build/version/package.txt"
  need patch
  local p
  for p in "$FERRETDB_PATCH_DIR"/*.patch; do
    patch -s -p1 -d "$build" <"$p" || die "ferretdb: $p does not apply"
  done
  cp "$FERRETDB_PATCH_DIR"/*.go "$build/internal/handler/"
  (cd "$build" && GOFLAGS=-buildvcs=false go build -trimpath -o "$bin" ./cmd/ferretdb)
  rm -rf "$build"
  rmdir "$STACK_DIR/build" 2>/dev/null || true
  [[ $("$bin" --version 2>&1) == *"version: $FERRETDB_VERSION"* ]] || die "ferretdb: built binary does not report $FERRETDB_VERSION"
  printf '%s\n' "$patch_id" >"$stamp"
}

install_mailpit() {
  local bin=$BIN_DIR/mailpit
  # `go version -m` reads the module version and the -ldflags the binary was built with (no
  # network, unlike `mailpit version`); the ldflags carry the version Mailpit reports (they are
  # recorded only without -trimpath).
  local info=""
  if [[ -x $bin ]] && command -v go >/dev/null 2>&1; then
    info=$(go version -m "$bin" 2>/dev/null) || info=""
  fi
  if grep -qE "^[[:space:]]+mod[[:space:]]+github.com/axllent/mailpit[[:space:]]+$MAILPIT_VERSION([[:space:]]|$)" <<<"$info" &&
    grep -qF "config.Version=$MAILPIT_VERSION" <<<"$info"; then
    say "mailpit: $MAILPIT_VERSION installed"
    return 0
  fi
  need go
  say "mailpit: installing $MAILPIT_VERSION with go install"
  mkdir -p "$BIN_DIR"
  # The web UI's assets are built with npm and are not in the Go module: the REST API, SMTP
  # and /readyz work, the browser UI is empty.
  GOBIN=$BIN_DIR go install \
    -ldflags "-s -w -X github.com/axllent/mailpit/config.Version=$MAILPIT_VERSION" \
    "github.com/axllent/mailpit@$MAILPIT_VERSION"
}

# PostgreSQL (FerretDB's backend) comes from the OS packages: /usr/lib/postgresql/<major>/bin.
install_postgres() {
  if ! compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null; then
    [[ $EUID -eq 0 ]] || die "postgres: no /usr/lib/postgresql/*/bin/postgres; run as root (apt-get install postgresql)"
    say "postgres: installing the postgresql package with apt-get"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql </dev/null
  fi
  find_pg_bin || die "postgres: apt-get did not install /usr/lib/postgresql/*/bin/postgres"
  say "postgres: $("$PG_BIN/postgres" --version) ($PG_BIN)"
}

# Set PG_BIN: the major version the data folder was created with, else the highest installed.
PG_BIN=
find_pg_bin() {
  local version=""
  [[ -r $POSTGRES_DATA_DIR/PG_VERSION ]] && version=$(<"$POSTGRES_DATA_DIR/PG_VERSION")
  if [[ -n $version && -x /usr/lib/postgresql/$version/bin/postgres ]]; then
    PG_BIN=/usr/lib/postgresql/$version/bin
  else
    PG_BIN=$(printf '%s\n' /usr/lib/postgresql/*/bin/postgres | sort -V | tail -n 1)
    PG_BIN=${PG_BIN%/postgres}
  fi
  [[ -x $PG_BIN/postgres ]]
}

# Chromium (the RSVP page's browser tests) comes from the OS packages, like PostgreSQL.
ensure_chromium() {
  if [[ ! -x /usr/bin/chromium ]]; then
    if [[ $EUID -ne 0 ]]; then
      say "chromium: WARNING no /usr/bin/chromium and not root: the browser tests will fail (apt-get install chromium)"
      return 0
    fi
    say "chromium: installing the chromium package with apt-get"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium </dev/null
  fi
  [[ -x /usr/bin/chromium ]] || die "chromium: apt-get did not install /usr/bin/chromium"
  say "chromium: $(/usr/bin/chromium --version 2>/dev/null || echo unknown version)"
}

cmd_install() {
  need curl ss setsid flock
  install_kafka
  install_postgres
  install_ferretdb
  install_mailpit
  install_keycloak
  ensure_chromium
}

# --- Keycloak: install, start, health ------------------------------------------------------------

# Print the major version of the java binary $1 (e.g. 25), or fail.
java_major() {
  local version
  version=$("$1" -XshowSettings:properties -version 2>&1 |
    sed -nE 's/^[[:space:]]*java\.specification\.version = ([0-9]+).*/\1/p')
  [[ $version =~ ^[0-9]+$ ]] && printf '%s' "$version"
}

# Set KEYCLOAK_JAVA_HOME to a Java 21 or newer: KEYCLOAK_JAVA_HOME from the environment, else the
# oldest such one under /usr/lib/jvm (the closest to the versions Keycloak is tested on).
KEYCLOAK_JAVA_HOME=${KEYCLOAK_JAVA_HOME:-}
find_keycloak_java() {
  local java major best="" best_major=999
  if [[ -n $KEYCLOAK_JAVA_HOME ]]; then
    major=$(java_major "$KEYCLOAK_JAVA_HOME/bin/java") && ((major >= 21)) && return 0
    die "keycloak: KEYCLOAK_JAVA_HOME=$KEYCLOAK_JAVA_HOME is not a Java 21+ installation"
  fi
  for java in /usr/lib/jvm/*/bin/java; do
    [[ -x $java ]] || continue
    major=$(java_major "$java") || continue
    if ((major >= 21 && major < best_major)); then
      best=${java%/bin/java} best_major=$major
    fi
  done
  [[ -n $best ]] || return 1
  KEYCLOAK_JAVA_HOME=$best
}

# Java 21+ for Keycloak only, from the OS packages when there is none (Debian 13 offers
# openjdk-21/25; Debian 12 offers neither: there, install one and set KEYCLOAK_JAVA_HOME).
ensure_keycloak_java() {
  find_keycloak_java && return 0
  [[ $EUID -eq 0 ]] || die "keycloak: needs Java 21 or newer (none under /usr/lib/jvm); run as root to install it with apt-get, or set KEYCLOAK_JAVA_HOME"
  local package candidate updated=false
  for package in openjdk-21-jre-headless openjdk-25-jre-headless; do
    candidate=$(apt-cache policy "$package" 2>/dev/null | sed -nE 's/^[[:space:]]*Candidate: (.*)$/\1/p')
    if [[ (-z $candidate || $candidate == "(none)") && $updated == false ]]; then
      apt-get update -qq
      updated=true
      candidate=$(apt-cache policy "$package" 2>/dev/null | sed -nE 's/^[[:space:]]*Candidate: (.*)$/\1/p')
    fi
    if [[ -n $candidate && $candidate != "(none)" ]]; then
      say "keycloak: installing $package $candidate with apt-get (Java 21+ for Keycloak only)"
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" </dev/null
      find_keycloak_java && return 0
    fi
  done
  die "keycloak: needs Java 21 or newer and the OS packages offer none: install one and set KEYCLOAK_JAVA_HOME"
}

install_keycloak() {
  ensure_keycloak_java
  if [[ -x $KEYCLOAK_HOME/bin/kc.sh && $(cat "$KEYCLOAK_HOME/version.txt" 2>/dev/null) == *"$KEYCLOAK_VERSION"* ]]; then
    say "keycloak: $KEYCLOAK_VERSION installed (Java $(java_major "$KEYCLOAK_JAVA_HOME/bin/java"), $KEYCLOAK_JAVA_HOME)"
    return 0
  fi
  need mvn unzip
  say "keycloak: fetching keycloak-quarkus-dist $KEYCLOAK_VERSION with Maven (165 MB, once) into $KEYCLOAK_HOME"
  local tmp=$STACK_DIR/keycloak.tmp
  rm -rf "$tmp"
  mkdir -p "$tmp"
  mvn -q -B dependency:copy -Dartifact="org.keycloak:keycloak-quarkus-dist:$KEYCLOAK_VERSION:zip" \
    -DoutputDirectory="$tmp" </dev/null 2>&1 | sed -E $'s/\x1b\\[[0-9;]*m//g; /^$/d'
  local zip=$tmp/keycloak-quarkus-dist-$KEYCLOAK_VERSION.zip
  [[ -f $zip ]] || die "keycloak: Maven did not produce $(basename "$zip")"
  unzip -q "$zip" -d "$tmp"
  [[ -x $tmp/keycloak-$KEYCLOAK_VERSION/bin/kc.sh ]] || die "keycloak: the zip has no keycloak-$KEYCLOAK_VERSION/bin/kc.sh"
  rm -rf "$KEYCLOAK_HOME"
  mv "$tmp/keycloak-$KEYCLOAK_VERSION" "$KEYCLOAK_HOME"
  rm -rf "$tmp"
  # An older version's folder goes (the data lives in data/keycloak, not there).
  local old
  for old in "$STACK_DIR"/keycloak-*; do
    if [[ $old != "$KEYCLOAK_HOME" && -x $old/bin/kc.sh ]]; then rm -rf "$old"; fi
  done
  return 0
}

keycloak_healthy() {
  curl -fsS --max-time 3 -o /dev/null "$KEYCLOAK_ISSUER/.well-known/openid-configuration" 2>/dev/null
}

# Keycloak imports the realm file only when the realm does not exist yet: a changed realm file
# starts Keycloak on a fresh database, so that what runs is what the repo says.
keycloak_realm_sum() { sha256sum "$KEYCLOAK_REALM_FILE" | cut -c1-16; }

start_keycloak() {
  local pid
  if pid=$(running_pid keycloak); then
    say "keycloak: already running (pid $pid)"
    if [[ $(cat "$KEYCLOAK_DATA/realm.sum" 2>/dev/null) != "$(keycloak_realm_sum)" ]]; then
      say "keycloak: WARNING the realm file changed since Keycloak started: '$0 keycloak-restart' re-imports it (local sessions are lost)"
    fi
  else
    check_ports_free keycloak
    find_keycloak_java || die "keycloak: no Java 21+ (run '$0 install')"
    [[ -x $KEYCLOAK_HOME/bin/kc.sh ]] || die "keycloak: $KEYCLOAK_HOME is not installed (run '$0 install')"
    mkdir -p "$KEYCLOAK_DATA/import" "$LOG_DIR"
    if [[ -d $KEYCLOAK_DATA/h2 && $(cat "$KEYCLOAK_DATA/realm.sum" 2>/dev/null) != "$(keycloak_realm_sum)" ]]; then
      say "keycloak: the realm file changed: starting on a fresh database (re-import)"
      rm -rf "$KEYCLOAK_DATA/h2"
    fi
    cp "$KEYCLOAK_REALM_FILE" "$KEYCLOAK_DATA/import/$KEYCLOAK_REALM-realm.json"
    keycloak_realm_sum >"$KEYCLOAK_DATA/realm.sum"
    # Keycloak keeps its database (h2/), the import folder and temporary files in <home>/data:
    # that is the stack's data folder, so that 'clean' wipes it.
    if [[ -e $KEYCLOAK_HOME/data && ! -L $KEYCLOAK_HOME/data ]]; then rm -rf "$KEYCLOAK_HOME/data"; fi
    ln -sfn "$KEYCLOAK_DATA" "$KEYCLOAK_HOME/data"
    say "keycloak: starting $KEYCLOAK_VERSION on $KEYCLOAK_URL (realm $KEYCLOAK_REALM, Java $(java_major "$KEYCLOAK_JAVA_HOME/bin/java"))"
    # The bootstrap admin (master realm, local only) is created on the first start only.
    launch keycloak env JAVA_HOME="$KEYCLOAK_JAVA_HOME" JAVA="$KEYCLOAK_JAVA_HOME/bin/java" \
      JAVA_OPTS_KC_HEAP="$KEYCLOAK_HEAP_OPTS" JAVA_OPTS_APPEND="$KEYCLOAK_JAVA_OPTS" \
      KC_BOOTSTRAP_ADMIN_USERNAME="$KEYCLOAK_ADMIN_USER" KC_BOOTSTRAP_ADMIN_PASSWORD="$KEYCLOAK_ADMIN_PASSWORD" \
      "$KEYCLOAK_HOME/bin/kc.sh" start-dev --import-realm \
      --http-host=127.0.0.1 --http-port="$KEYCLOAK_PORT" --hostname="$KEYCLOAK_URL" \
      --log-console-color=false
  fi
}

wait_keycloak() {
  wait_healthy keycloak keycloak_healthy "$KEYCLOAK_TIMEOUT"
  say "keycloak: healthy, issuer $KEYCLOAK_ISSUER (pid $(running_pid keycloak))"
}

cmd_keycloak_restart() {
  need curl ss setsid flock
  take_lock
  install_keycloak
  stop_components keycloak
  start_keycloak
  wait_keycloak
}

# Print the client settings of the local Keycloak (part of `env`).
keycloak_env() {
  cat <<EOF2
export KEYCLOAK_URL=$KEYCLOAK_URL
export KEYCLOAK_REALM=$KEYCLOAK_REALM
export KEYCLOAK_ADMIN_USER=$KEYCLOAK_ADMIN_USER
export KEYCLOAK_ADMIN_PASSWORD=$KEYCLOAK_ADMIN_PASSWORD
export KEYCLOAK_ISSUER=$KEYCLOAK_ISSUER
export KEYCLOAK_JWKS_URL=$KEYCLOAK_ISSUER/protocol/openid-connect/certs
EOF2
}

# --- up ------------------------------------------------------------------------------------------

# Write the broker's configuration (regenerated on every start from the current settings).
write_kafka_config() {
  local dir=$DATA_DIR/kafka
  mkdir -p "$dir/log"
  cat >"$dir/server.properties" <<EOF
# Generated by deploy/local/stack.sh on every start - edit the script, not this file.
# One combined KRaft node (broker + controller), bound to loopback only.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$KAFKA_CONTROLLER_PORT
# Clients (and the broker itself) authenticate with SASL/SCRAM-SHA-512 on the client listener; the
# controller listener stays PLAINTEXT on loopback (the broker's own link to its controller).
listeners=SASL_PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=SASL_PLAINTEXT://localhost:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=SASL_PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT
sasl.enabled.mechanisms=$KAFKA_SASL_MECHANISM
sasl.mechanism.inter.broker.protocol=$KAFKA_SASL_MECHANISM
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="$KAFKA_ADMIN_USER" password="$KAFKA_ADMIN_PASSWORD";
log.dirs=$dir/log

# ACLs decide (KRaft's StandardAuthorizer): no ACL, no access. The operator's user is a super user;
# so is ANONYMOUS, which is who the broker is to its own controller on the PLAINTEXT controller
# listener (loopback only; the client listener never yields ANONYMOUS).
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:$KAFKA_ADMIN_USER;User:ANONYMOUS

# Two cores: few threads.
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
background.threads=4

# Topics are created explicitly (engagiert.shared.admin create-topics), never by accident.
auto.create.topics.enable=false
num.partitions=$TOPIC_PARTITIONS
default.replication.factor=1
min.insync.replicas=1

# Internal topics on a single node: replication factor 1; fewer offsets partitions than the
# default 50 make the first consumer group start faster and change nothing else.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0

# Generous retention: local data is removed by 'stack.sh clean', not by age.
log.retention.hours=8760
log.retention.bytes=-1
log.segment.bytes=268435456
log.retention.check.interval.ms=300000
EOF
}

start_kafka() {
  local pid
  if pid=$(running_pid kafka); then
    say "kafka: already running (pid $pid)"
  else
    check_ports_free kafka
    write_kafka_config
    local cfg=$DATA_DIR/kafka/server.properties
    local java_opts=(-Djava.awt.headless=true -Dkafka.logs.dir="$LOG_DIR"
      -Dlog4j2.configurationFile="$KAFKA_LOG4J")
    mkdir -p "$LOG_DIR"
    # A log dir formatted by a plaintext stack (before SASL) has no SCRAM users, so nobody could
    # sign in: it is moved aside (not deleted) and the storage formatted anew.
    if [[ -f $DATA_DIR/kafka/log/meta.properties && ! -f $DATA_DIR/kafka/scram.stamp ]]; then
      local aside
      aside=$DATA_DIR/kafka-plaintext-$(date +%Y%m%dT%H%M%S)
      say "kafka: WARNING the data in $DATA_DIR/kafka was formatted without SASL/SCRAM users (a plaintext stack);"
      say "kafka: WARNING moving it to $aside and formatting anew: topics start empty (delete that folder when done)"
      mv "$DATA_DIR/kafka" "$aside"
      write_kafka_config
    fi
    # Format the storage once; meta.properties marks a formatted log dir. The SCRAM credentials of
    # the operator and of each service are written into the metadata log right here.
    if [[ ! -f $DATA_DIR/kafka/log/meta.properties ]]; then
      local scram=(--add-scram "$KAFKA_SASL_MECHANISM=[name=$KAFKA_ADMIN_USER,password=$KAFKA_ADMIN_PASSWORD]") user
      for user in "${KAFKA_SERVICE_USERS[@]}"; do
        scram+=(--add-scram "$KAFKA_SASL_MECHANISM=[name=$user,password=$(kafka_service_password "$user")]")
      done
      local cluster_id
      cluster_id=$(java -Xmx256m "${java_opts[@]}" -cp "$KAFKA_LIBS/*" kafka.tools.StorageTool random-uuid |
        grep -E '^[A-Za-z0-9_-]{22}$' | tail -n 1)
      [[ -n $cluster_id ]] || die "kafka: could not generate a cluster id"
      say "kafka: formatting storage (cluster id $cluster_id)"
      printf '===== %s starting kafka storage format\n' "$(date -Is)" >>"$(log_file kafka)"
      java -Xmx256m "${java_opts[@]}" -cp "$KAFKA_LIBS/*" kafka.tools.StorageTool format \
        --standalone --cluster-id "$cluster_id" --config "$cfg" --ignore-formatted "${scram[@]}" \
        >>"$(log_file kafka)" 2>&1 || { tail_log kafka; die "kafka: formatting the storage failed"; }
      printf '%s %s\n' "$KAFKA_SASL_MECHANISM" "$KAFKA_ADMIN_USER ${KAFKA_SERVICE_USERS[*]}" >"$DATA_DIR/kafka/scram.stamp"
    fi
    say "kafka: starting on $KAFKA_BOOTSTRAP (controller 127.0.0.1:$KAFKA_CONTROLLER_PORT)"
    # shellcheck disable=SC2086  # KAFKA_HEAP_OPTS holds several JVM options
    launch kafka java $KAFKA_HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
      -XX:+ExplicitGCInvokesConcurrent "${java_opts[@]}" -cp "$KAFKA_LIBS/*" kafka.Kafka "$cfg"
  fi
  wait_healthy kafka kafka_healthy "$INFRA_TIMEOUT"
  say "kafka: healthy (pid $(running_pid kafka))"
}

# Run a PostgreSQL program as the `postgres` OS user (PostgreSQL refuses to run as root).
as_postgres() {
  if [[ $EUID -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# PostgreSQL runs as the `postgres` OS user when this script runs as root, and that user must be
# able to traverse every parent of its data folder. A clone in a 0700 folder (mktemp -d) or under
# a home directory others cannot enter cannot hold it: then the data goes to a folder of its own
# under /var/tmp, named after this stack (one per clone), found again by every later command.
resolve_postgres_data_dir() {
  [[ $EUID -eq 0 && $POSTGRES_DATA_DIR == "$DATA_DIR/postgres" ]] || return 0
  [[ -f $POSTGRES_DATA_DIR/PG_VERSION ]] && return 0 # a data folder that works already stays
  local parent
  parent=$(dirname "$STACK_DIR")
  runuser -u postgres -- test -x "$parent" 2>/dev/null && return 0
  POSTGRES_DATA_DIR=/var/tmp/engagiert-postgres-$(printf '%s' "$STACK_DIR" | sha256sum | cut -c1-12)
  MARKER[postgres]="bin/postgres -D $POSTGRES_DATA_DIR"
}
resolve_postgres_data_dir

start_postgres() {
  local pid
  find_pg_bin || die "postgres: no /usr/lib/postgresql/*/bin/postgres (run '$0 install')"
  if pid=$(running_pid postgres); then
    say "postgres: already running (pid $pid)"
  else
    check_ports_free postgres
    local owner=()
    [[ $EUID -eq 0 ]] && owner=(postgres:postgres)
    mkdir -p "$POSTGRES_DATA_DIR" "$POSTGRES_SOCKET_DIR" "$LOG_DIR"
    [[ $POSTGRES_DATA_DIR == "$DATA_DIR"/* ]] || say "postgres: the postgres OS user cannot reach $STACK_DIR; its data goes to $POSTGRES_DATA_DIR"
    # Only what this script creates is opened up (o+x, no read): STACK_DIR, data/, run/.
    chmod o+x "$STACK_DIR" "$DATA_DIR" "$RUN_DIR" "$(dirname "$POSTGRES_DATA_DIR")" 2>/dev/null || true
    if ((${#owner[@]})); then
      chown "${owner[0]}" "$POSTGRES_DATA_DIR" "$POSTGRES_SOCKET_DIR"
      if ! runuser -u postgres -- test -x "$POSTGRES_DATA_DIR" -a -w "$POSTGRES_DATA_DIR"; then
        die "postgres: the postgres OS user cannot reach $POSTGRES_DATA_DIR (a parent directory is not traversable, e.g. /root): chmod o+x the parents, or set POSTGRES_DATA_DIR (or STACK_DIR) to a folder such as /var/tmp/engagiert-postgres"
      fi
    fi
    chmod 700 "$POSTGRES_DATA_DIR"
    if [[ ! -f $POSTGRES_DATA_DIR/PG_VERSION ]]; then
      say "postgres: initdb $POSTGRES_DATA_DIR"
      printf '===== %s starting postgres initdb\n' "$(date -Is)" >>"$(log_file postgres)"
      as_postgres "$PG_BIN/initdb" -D "$POSTGRES_DATA_DIR" -A trust -U postgres -E UTF8 --no-locale \
        >>"$(log_file postgres)" 2>&1 || { tail_log postgres; die "postgres: initdb failed"; }
    fi
    # A Unix socket path is limited to 107 bytes: TCP only when the folder's path is too long.
    # The same when the postgres user cannot reach run/ (STACK_DIR under /root and only
    # POSTGRES_DATA_DIR moved): clients here all use TCP anyway.
    local sockets=$POSTGRES_SOCKET_DIR
    if ((${#sockets} > 90)); then sockets=""; fi
    if [[ -n $sockets ]] && ! as_postgres test -w "$sockets" 2>/dev/null; then sockets=""; fi
    say "postgres: starting $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$POSTGRES_PORT (data in $POSTGRES_DATA_DIR)"
    local run_as=()
    [[ $EUID -eq 0 ]] && run_as=(runuser -u postgres --)
    # The log keeps no statement data: a refused statement (a document PostgreSQL rejects) would
    # otherwise be logged with the document, names included (log_min_error_statement, CONTEXT).
    # plan_cache_mode: FerretDB prepares each statement once per connection; a lookup by `_id` in
    # a list (`_jsonb->$1 = ANY($2)`) sometimes ran as a sequential scan comparing every row with
    # every id (2 s instead of 50 ms at 20,000 rows) until autovacuum next analysed the table,
    # most likely a generic plan kept after five runs (it cannot use the index). Custom plans make
    # the list a constant, hashed even in a scan; planning each time costs microseconds.
    launch postgres "${run_as[@]}" "$PG_BIN/postgres" -D "$POSTGRES_DATA_DIR" \
      -c listen_addresses=127.0.0.1 -c port="$POSTGRES_PORT" -c unix_socket_directories="$sockets" \
      -c fsync=on -c synchronous_commit=off -c max_connections=300 -c shared_buffers=128MB \
      -c plan_cache_mode=force_custom_plan \
      -c log_statement=none -c log_min_error_statement=panic -c log_error_verbosity=terse
  fi
  wait_healthy postgres postgres_healthy "$INFRA_TIMEOUT"
  # runuser stays as the parent of the postmaster: record the postmaster itself, so that `down`
  # signals PostgreSQL directly.
  local postmaster
  postmaster=$(head -n 1 "$POSTGRES_DATA_DIR/postmaster.pid" 2>/dev/null) || true
  if [[ $postmaster =~ ^[0-9]+$ ]] && [[ $(tr '\0' ' ' 2>/dev/null <"/proc/$postmaster/cmdline") == *"${MARKER[postgres]}"* ]]; then
    echo "$postmaster" >"$(pid_file postgres)"
  fi
  if [[ -z $(as_postgres "$PG_BIN/psql" -h 127.0.0.1 -p "$POSTGRES_PORT" -U postgres -d postgres -XtAc \
    "SELECT 1 FROM pg_database WHERE datname = 'ferretdb'") ]]; then
    say "postgres: creating database ferretdb"
    as_postgres "$PG_BIN/psql" -h 127.0.0.1 -p "$POSTGRES_PORT" -U postgres -d postgres -XqAc \
      "CREATE DATABASE ferretdb" >/dev/null
  fi
  say "postgres: healthy (pid $(running_pid postgres))"
}

start_ferretdb() {
  local pid
  if [[ $EXTERNAL_MONGODB == true ]]; then
    say "ferretdb: not started, MONGODB_URL=$(mask_url "$MONGODB_URL") is used"
    local deadline=$((SECONDS + 15))
    until mongodb_healthy; do
      ((SECONDS < deadline)) || die "MONGODB_URL=$(mask_url "$MONGODB_URL") does not answer a ping"
      sleep 1
    done
    return 0
  fi
  if pid=$(running_pid ferretdb); then
    say "ferretdb: already running (pid $pid)"
    if [[ $(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") == *--handler=sqlite* ]]; then
      say "ferretdb: WARNING this FerretDB runs on SQLite (started by an older stack.sh): '$0 down' and '$0 up' to switch to PostgreSQL"
    fi
  else
    check_ports_free ferretdb
    mkdir -p "$DATA_DIR/ferretdb-state"
    say "ferretdb: starting on 127.0.0.1:$MONGODB_PORT (PostgreSQL 127.0.0.1:$POSTGRES_PORT/ferretdb)"
    # pool_max_conns: FerretDB's default of 50 backend connections runs out under a few services'
    # open cursors and multi-update commands, and then it stops answering every client.
    # WARN: at INFO and below FerretDB logs commands, which carry documents with personal data.
    # GOGC=400: FerretDB decodes every document it reads into short-lived Go values; with Go's
    # default (100) the collector took about a fifth of its CPU under an outbox relay's load, and
    # 400 made that load 15-25 % faster for some 30 MiB more memory.
    GOGC=${FERRETDB_GOGC:-400} launch ferretdb "$BIN_DIR/ferretdb" --handler=postgresql \
      --postgresql-url="postgres://postgres@127.0.0.1:$POSTGRES_PORT/ferretdb?pool_max_conns=250" \
      --listen-addr="127.0.0.1:$MONGODB_PORT" --debug-addr=- --telemetry=disable \
      --state-dir="$DATA_DIR/ferretdb-state" --log-level=WARN
  fi
  wait_healthy ferretdb ferretdb_healthy "$INFRA_TIMEOUT"
  say "ferretdb: healthy (pid $(running_pid ferretdb))"
}

start_mailpit() {
  local pid
  if pid=$(running_pid mailpit); then
    say "mailpit: already running (pid $pid)"
  else
    check_ports_free mailpit
    mkdir -p "$DATA_DIR/mailpit"
    say "mailpit: starting, SMTP 127.0.0.1:$SMTP_PORT, API http://127.0.0.1:$MAILPIT_HTTP_PORT"
    # Any SMTP login (or none) is accepted, also without TLS: the services may be configured
    # with credentials for a real relay.
    launch mailpit "$BIN_DIR/mailpit" --smtp "127.0.0.1:$SMTP_PORT" \
      --listen "127.0.0.1:$MAILPIT_HTTP_PORT" --database "$DATA_DIR/mailpit/mailpit.db" \
      --max 100000 --smtp-auth-accept-any --smtp-auth-allow-insecure --smtp-disable-rdns \
      --disable-version-check
  fi
  wait_healthy mailpit mailpit_healthy "$INFRA_TIMEOUT"
  say "mailpit: healthy (pid $(running_pid mailpit))"
}

# The operator's client settings (admin, a super user) as environment assignments.
kafka_admin_env() {
  printf '%s\n' KAFKA_BOOTSTRAP_SERVERS="$KAFKA_BOOTSTRAP" KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT \
    KAFKA_SASL_MECHANISM="$KAFKA_SASL_MECHANISM" KAFKA_SASL_USERNAME="$KAFKA_ADMIN_USER" \
    KAFKA_SASL_PASSWORD="$KAFKA_ADMIN_PASSWORD"
}

# Create every topic and its dead-letter topic, then the services' ACLs (both idempotent).
create_topics() {
  if ! "$PY" -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("engagiert.shared.admin") is None)' 2>/dev/null; then
    say "topics: WARNING engagiert.shared.admin is not importable (not written yet?); topics NOT created"
    return 0
  fi
  say "topics: creating (partitions $TOPIC_PARTITIONS)"
  local admin_env
  mapfile -t admin_env < <(kafka_admin_env)
  env "${admin_env[@]}" TOPIC_PARTITIONS="$TOPIC_PARTITIONS" "$PY" -m engagiert.shared.admin create-topics
  say "acls: granting each service its topics and groups"
  env "${admin_env[@]}" "$PY" -m engagiert.shared.admin grant-services
}

cmd_up() {
  need_venv
  take_lock
  cmd_install
  # Keycloak starts first and is waited for last: its start (about a minute) overlaps the others'.
  start_keycloak
  start_kafka
  create_topics
  if [[ $EXTERNAL_MONGODB != true ]]; then start_postgres; fi
  start_ferretdb
  start_mailpit
  wait_keycloak
  say "stack: up (eval \"\$($0 env)\" for the client settings)"
}

# --- services ------------------------------------------------------------------------------------

cmd_services_up() {
  need_venv
  need curl ss setsid flock
  take_lock
  if ! running_pid kafka >/dev/null; then
    die "kafka is not running: run '$0 up' first"
  fi
  local name port module pid
  for name in "${SERVICES[@]}"; do
    port=$(service_port "$name")
    module=${MARKER[$name]}
    if pid=$(running_pid "$name"); then
      say "$name: already running (pid $pid)"
    else
      "$PY" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('${module%%:*}') is None)" 2>/dev/null ||
        die "$name: module ${module%%:*} not found"
      check_ports_free "$name"
      say "$name: starting on http://127.0.0.1:$port"
      local kafka_env=(KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT KAFKA_SASL_MECHANISM="$KAFKA_SASL_MECHANISM"
        KAFKA_SASL_USERNAME="$name" KAFKA_SASL_PASSWORD="$(kafka_service_password "$name")")
      # The console uses no Kafka: it gets no credentials.
      [[ $name == console ]] && kafka_env=()
      launch "$name" env "${kafka_env[@]}" \
        KAFKA_BOOTSTRAP_SERVERS="$KAFKA_BOOTSTRAP" \
        MONGODB_URL="$EFFECTIVE_MONGODB_URL" \
        NOTIFICATIONS_SMTP_HOST=127.0.0.1 \
        NOTIFICATIONS_SMTP_PORT="$SMTP_PORT" \
        TOPIC_PARTITIONS="$TOPIC_PARTITIONS" \
        CONSOLE_REGISTRY_URL="http://127.0.0.1:$REGISTRY_PORT" \
        MEMBER_KEYS_URL="http://127.0.0.1:$REGISTRY_PORT" \
        CONSOLE_EVENTS_URL="http://127.0.0.1:$EVENTS_PORT" \
        CONSOLE_NOTIFICATIONS_URL="http://127.0.0.1:$NOTIFICATIONS_PORT" \
        CONSOLE_PUBLIC_BASE_URL="http://127.0.0.1:$CONSOLE_PORT" CONSOLE_OIDC_ISSUER="$KEYCLOAK_ISSUER" \
        ENVIRONMENT=local \
        AUTH_ISSUER="$KEYCLOAK_ISSUER" AUTH_JWKS_URL="$KEYCLOAK_ISSUER/protocol/openid-connect/certs" \
        "$REPO_DIR/.venv/bin/uvicorn" "$module" --host 127.0.0.1 --port "$port" \
        --timeout-graceful-shutdown 20
    fi
  done
  for name in "${SERVICES[@]}"; do
    wait_healthy "$name" "${name}_healthy" "$SERVICE_TIMEOUT"
    say "$name: ready (pid $(running_pid "$name"))"
  done
}

cmd_services_down() {
  take_lock
  stop_components "${SERVICES[@]}"
}

# --- down / clean --------------------------------------------------------------------------------

cmd_down() {
  cmd_services_down
  stop_components keycloak
  stop_components mailpit
  stop_components ferretdb
  stop_components postgres
  stop_components kafka
}

# Refuse to delete anything but a real stack folder.
safe_stack_dir() {
  [[ -n $STACK_DIR && $STACK_DIR != / && $STACK_DIR != "$REPO_DIR" && $STACK_DIR != "$HOME" ]] ||
    die "refusing to delete STACK_DIR=$STACK_DIR"
}

cmd_clean() {
  safe_stack_dir
  cmd_down
  say "stack: removing $DATA_DIR and $LOG_DIR"
  [[ $POSTGRES_DATA_DIR == "$DATA_DIR"/* ]] || say "stack: removing $POSTGRES_DATA_DIR"
  rm -rf "$DATA_DIR" "$POSTGRES_DATA_DIR" "$LOG_DIR"
}

cmd_distclean() {
  safe_stack_dir
  cmd_down
  exec 9>&-
  say "stack: removing $STACK_DIR"
  [[ $POSTGRES_DATA_DIR == "$STACK_DIR"/* ]] || say "stack: removing $POSTGRES_DATA_DIR"
  rm -rf "$STACK_DIR" "$POSTGRES_DATA_DIR"
}

# --- status / logs / env -------------------------------------------------------------------------

cmd_status() {
  local name pid state health ports
  for name in "${INFRA[@]}" "${SERVICES[@]}"; do
    ports=${PORTS[$name]// /,}
    if [[ $name == postgres && $EXTERNAL_MONGODB == true ]] && ! running_pid postgres >/dev/null; then
      printf '%-14s %-9s %-10s %-16s %s\n' "$name" unused - - "(MONGODB_URL is external)"
      continue
    fi
    if [[ $name == postgres ]]; then find_pg_bin || PG_BIN=/nonexistent; fi
    if [[ $name == ferretdb && $EXTERNAL_MONGODB == true ]]; then
      if mongodb_healthy; then health=healthy; else health=unreachable; fi
      printf '%-14s %-9s %-10s %-16s %s\n' "$name" external - - \
        "$health (MONGODB_URL=$(mask_url "$MONGODB_URL"))"
      continue
    fi
    if pid=$(running_pid "$name"); then
      state=running
      if "${name}_healthy"; then health=healthy; else health=unhealthy; fi
    else
      state=stopped pid=- health=-
    fi
    printf '%-14s %-9s %-10s %-16s %s\n' "$name" "$state" "pid $pid" "port $ports" "$health"
  done
}

cmd_logs() {
  local follow=false
  if [[ ${1:-} == -f ]]; then
    follow=true
    shift
  fi
  local files=()
  if [[ -n ${1:-} ]]; then
    [[ -f $(log_file "$1") ]] || die "no log $(log_file "$1")"
    files=("$(log_file "$1")")
  else
    shopt -s nullglob
    files=("$LOG_DIR"/*.log)
    ((${#files[@]})) || die "no logs in $LOG_DIR"
  fi
  if [[ $follow == true ]]; then
    exec tail -n 100 -F "${files[@]}"
  fi
  tail -n 100 "${files[@]}"
}

cmd_env() {
  cat <<EOF
export KAFKA_BOOTSTRAP_SERVERS=$KAFKA_BOOTSTRAP
export KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT
export KAFKA_SASL_MECHANISM=$KAFKA_SASL_MECHANISM
export KAFKA_SASL_USERNAME=$KAFKA_ADMIN_USER
export KAFKA_SASL_PASSWORD=$KAFKA_ADMIN_PASSWORD
export MONGODB_URL=$EFFECTIVE_MONGODB_URL
export SMTP_HOST=127.0.0.1
export SMTP_PORT=$SMTP_PORT
export MAILPIT_API_URL=http://127.0.0.1:$MAILPIT_HTTP_PORT
export TOPIC_PARTITIONS=$TOPIC_PARTITIONS
export MEMBER_KEYS_URL=http://127.0.0.1:$REGISTRY_PORT
EOF
  keycloak_env
}

usage() {
  cat <<EOF
Usage: $0 <command>

  install        resolve/build Kafka $KAFKA_VERSION, FerretDB $FERRETDB_VERSION, Mailpit $MAILPIT_VERSION into \$STACK_DIR;
                 apt-get install postgresql if no /usr/lib/postgresql/*/bin/postgres exists,
                 and chromium (browser tests) if no /usr/bin/chromium exists
  up             install, then start Kafka, PostgreSQL, FerretDB, Mailpit and Keycloak $KEYCLOAK_VERSION (what is not
                 running) and create topics
  services-up    start registry, events, notifications and the console (uvicorn) and wait for /readyz
  services-down  stop the services
  down           stop the services and the infrastructure
  status         one line per component: state, pid, port, health
  logs [-f] [name]  last 100 lines of the logs (all or one); -f follows
  clean          down, then delete \$STACK_DIR/data and \$STACK_DIR/logs (keeps binaries and jars)
  distclean      down, then delete all of \$STACK_DIR
  env            print export lines for the clients (eval "\$($0 env)"): Kafka with the operator's SASL user
                 (admin, a super user), the store, Mailpit, Keycloak's issuer and JWKS URL
  keycloak-restart  stop and start Keycloak (re-imports the realm file when it changed; local sessions are lost)

STACK_DIR=$STACK_DIR
EOF
}

main() {
  local cmd=${1:-help}
  shift || true
  case $cmd in
    install)
      take_lock
      cmd_install
      ;;
    up) cmd_up ;;
    services-up) cmd_services_up ;;
    services-down) cmd_services_down ;;
    down) cmd_down ;;
    status) cmd_status ;;
    logs) cmd_logs "$@" ;;
    clean) cmd_clean ;;
    distclean) cmd_distclean ;;
    env) cmd_env ;;
    keycloak-restart) cmd_keycloak_restart ;;
    help | -h | --help) usage ;;
    *)
      usage >&2
      exit 2
      ;;
  esac
}

main "$@"
