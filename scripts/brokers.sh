#!/usr/bin/env bash
# The local brokers airlock's demo, examples and tests use, all on the loopback only, each locked
# down so that only credentials get in, with an admin identity for the runner (written to
# $state/admin.json, mode 0600, where the runner finds it):
#   redis     127.0.0.1:6379   (Debian's redis-server; the `default` user is off)
#   rabbitmq  127.0.0.1:5672   (Debian's rabbitmq-server; management API on 127.0.0.1:15672; no guest)
#   kafka     127.0.0.1:9092   (the real Apache Kafka broker in KRaft mode, jars from Maven Central,
#                               advertising localhost:9092)
#   nats      127.0.0.1:4222   (Debian's nats-server; users from a runner-owned file, reloaded on
#                               SIGHUP; monitoring on 127.0.0.1:8222)
#   mqtt      127.0.0.1:1883   (Debian's mosquitto with its dynamic-security plugin; no anonymous access)
# A broker that already answers is left alone; a missing one is installed (as root) and started.
#
#   bash scripts/brokers.sh start [redis|rabbitmq|kafka|nats|mqtt ...]   (default: all)
#   bash scripts/brokers.sh status
#   bash scripts/brokers.sh stop  [...]                        stops only what this script started
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# Where the brokers' data, logs, pids and admin credentials go: airlock's state folder, as the
# runner computes it (AIRLOCK_STATE_DIR, else /var/lib/airlock for root, else ~/.local/state/airlock).
if [ -n "${AIRLOCK_BROKERS_STATE:-}" ]; then state=$AIRLOCK_BROKERS_STATE
elif [ -n "${AIRLOCK_STATE_DIR:-}" ]; then state=$AIRLOCK_STATE_DIR/brokers
elif [ "$(id -u)" = 0 ] && [ -z "${XDG_STATE_HOME:-}" ]; then state=/var/lib/airlock/brokers
else state=${XDG_STATE_HOME:-$HOME/.local/state}/airlock/brokers; fi
mkdir -p "$state"
chmod 700 "$state"

# The admin credentials, made once: the runner reads them to mint each run's identities.
admin_file="$state/admin.json"
# Each broker's entry is added once, with a random password, and kept from then on.
(umask 077 && node - "$admin_file" "$state" <<'JS'
const fs = require("fs"), { randomBytes } = require("crypto");
const [file, state] = process.argv.slice(2);
let admin = {};
try { admin = JSON.parse(fs.readFileSync(file, "utf8")); } catch {}
const want = {
  redis: { host: "127.0.0.1", port: 6379, user: "airlock-admin" },
  rabbitmq: { host: "127.0.0.1", port: 5672, api: "http://127.0.0.1:15672", user: "airlock-admin" },
  kafka: { host: "127.0.0.1", port: 9092, user: "airlock-admin" },
  nats: { host: "127.0.0.1", port: 4222, monitor: "http://127.0.0.1:8222", user: "airlock-admin" },
  mqtt: { host: "127.0.0.1", port: 1883, user: "airlock-admin" },
};
// Where each broker this script starts writes its log: the runner reads a run's refusals there.
const logs = { rabbitmq: "/var/log/rabbitmq/airlock-console.log", kafka: `${state}/kafka/kafka.log`, nats: `${state}/nats.log` };
let changed = false;
for (const [k, v] of Object.entries(want)) if (!admin[k]) { admin[k] = { ...v, password: randomBytes(24).toString("base64url") }; changed = true; }
for (const [k, log] of Object.entries(logs)) if (admin[k].log !== log) { admin[k].log = log; changed = true; }
if (changed) { fs.writeFileSync(file + ".tmp", JSON.stringify(admin, null, 1) + "\n", { mode: 0o600 }); fs.renameSync(file + ".tmp", file); }
JS
)
admin_field() { # broker field
  node -e 'const a=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")); process.stdout.write(String(a[process.argv[2]][process.argv[3]]))' "$admin_file" "$1" "$2"
}
log() { printf '[airlock] %s\n' "$*" >&2; }

REDIS_PORT=6379
AMQP_PORT=5672
AMQP_API_PORT=15672
KAFKA_PORT=9092
KAFKA_CONTROLLER_PORT=9093
NATS_PORT=4222
NATS_MONITOR_PORT=8222
MQTT_PORT=1883

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# Any RESP answer counts (+PONG, or -NOAUTH from a locked-down Redis).
redis_up() { (exec 3<>/dev/tcp/127.0.0.1/$REDIS_PORT && printf 'PING\r\n' >&3 && timeout 2 head -c 1 <&3 | grep -q '[-+]') 2>/dev/null; }
# An AMQP 0-9-1 server answers the protocol header with connection.start (a method frame, type 1).
rabbitmq_up() { (exec 3<>/dev/tcp/127.0.0.1/$AMQP_PORT && printf 'AMQP\x00\x00\x09\x01' >&3 && timeout 3 head -c 1 <&3 | od -An -tx1 | grep -q 01) 2>/dev/null; }
kafka_up() { port_open $KAFKA_PORT; }
# A NATS server greets every connection with an INFO line.
nats_up() { (exec 3<>/dev/tcp/127.0.0.1/$NATS_PORT && timeout 2 head -c 4 <&3 | grep -q INFO) 2>/dev/null; }
# An MQTT broker answers CONNECT (v3.1.1, no credentials) with CONNACK (0x20), refusing it here.
mqtt_up() { (exec 3<>/dev/tcp/127.0.0.1/$MQTT_PORT && printf '\x10\x10\x00\x04MQTT\x04\x02\x00\x3c\x00\x04test' >&3 && timeout 2 head -c 1 <&3 | od -An -tx1 | grep -q 20) 2>/dev/null; }

wait_for() { # name check seconds logfile
  local i
  for i in $(seq 1 $(($3 * 4))); do "$2" && { log "$1 is up"; return 0; }; sleep 0.25; done
  log "$1 did not come up within $3s; last lines of $4:"; tail -n 20 "$4" >&2 || true; return 1
}

need_root_to_install() {
  [ "$(id -u)" = 0 ] || { log "$1 is missing: install it ($2) or start the broker yourself"; exit 1; }
}

apt_install() {
  [ -f "$state/.apt-updated" ] || { apt-get update -qq; touch "$state/.apt-updated"; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

start_redis() {
  if redis_up; then log "redis already answers on 127.0.0.1:$REDIS_PORT"; return; fi
  if ! command -v redis-server >/dev/null 2>&1; then need_root_to_install redis-server "apt-get install redis-server"; log "installing redis-server"; apt_install redis-server; fi
  # No anonymous access: `default` is off; the runner's admin user mints one ACL user per run.
  (umask 077 && printf '%s\n' "bind 127.0.0.1" "port $REDIS_PORT" 'save ""' "appendonly no" "daemonize yes" \
    "pidfile $state/redis.pid" "logfile $state/redis.log" "user default off" \
    "user $(admin_field redis user) on >$(admin_field redis password) ~* &* +@all" > "$state/redis.conf")
  redis-server "$state/redis.conf"
  wait_for redis redis_up 10 "$state/redis.log"
}

start_rabbitmq() {
  if rabbitmq_up; then log "rabbitmq already answers on 127.0.0.1:$AMQP_PORT"; return; fi
  if [ ! -x /usr/lib/rabbitmq/bin/rabbitmq-server ]; then need_root_to_install rabbitmq-server "apt-get install rabbitmq-server"; log "installing rabbitmq-server"; apt_install rabbitmq-server; fi
  need_root_to_install "permission to start rabbitmq" "run as root"
  log "starting rabbitmq on 127.0.0.1:$AMQP_PORT (about 10s)"
  # The management API (the runner mints each run's user through it), on the loopback only. The
  # files live where the rabbitmq user can read them.
  local conf=/var/lib/rabbitmq/airlock
  mkdir -p "$conf"
  # Its log on the console too (into airlock-console.log, line by line): the file log is written in
  # batches up to seconds late, and the runner reads each run's refusals from the log as the run ends.
  printf '%s\n' "management.tcp.ip = 127.0.0.1" "management.tcp.port = $AMQP_API_PORT" "loopback_users.guest = true" \
    "log.console = true" "log.console.level = info" > "$conf/rabbitmq.conf"
  printf '[rabbitmq_management].\n' > "$conf/enabled_plugins"
  chown -R rabbitmq:rabbitmq "$conf"
  # Debian's package runs the node as the rabbitmq user; keep it (and epmd) on the loopback.
  su rabbitmq -s /bin/sh -c "cd /var/lib/rabbitmq && HOME=/var/lib/rabbitmq ERL_EPMD_ADDRESS=127.0.0.1 \
    RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT=$AMQP_PORT RABBITMQ_NODENAME=rabbit@localhost \
    RABBITMQ_CONFIG_FILE=$conf/rabbitmq.conf RABBITMQ_ENABLED_PLUGINS_FILE=$conf/enabled_plugins \
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS='-kernel inet_dist_use_interface {127,0,0,1}' \
    nohup /usr/lib/rabbitmq/bin/rabbitmq-server > /var/log/rabbitmq/airlock-console.log 2>&1 & echo \$! > /tmp/airlock-rabbitmq.pid"
  mv /tmp/airlock-rabbitmq.pid "$state/rabbitmq.pid"
  wait_for rabbitmq rabbitmq_up 60 /var/log/rabbitmq/airlock-console.log
  wait_for "rabbitmq management API" rabbitmq_api_up 60 /var/log/rabbitmq/airlock-console.log
  lock_down_rabbitmq
}

rabbitmq_api_up() { port_open $AMQP_API_PORT; }

# The runner's admin user in, guest out: after this, only credentials get in.
lock_down_rabbitmq() {
  node - "$admin_file" "$AMQP_API_PORT" <<'JS' || { log "could not lock rabbitmq down"; return 1; }
const [file, port] = process.argv.slice(2);
const admin = JSON.parse(require("fs").readFileSync(file, "utf8")).rabbitmq;
const call = (auth, method, path, body) => fetch(`http://127.0.0.1:${port}/api/${path}`, {
  method, body: body && JSON.stringify(body),
  headers: { authorization: "Basic " + Buffer.from(auth).toString("base64"), "content-type": "application/json" },
});
(async () => {
  const me = `${admin.user}:${admin.password}`;
  if ((await call(me, "GET", "whoami")).status !== 200) {
    // First start: guest (loopback only) creates the admin user.
    const put = await call("guest:guest", "PUT", `users/${admin.user}`, { password: admin.password, tags: "administrator" });
    if (!put.ok) throw new Error(`creating ${admin.user}: ${put.status} ${await put.text()}`);
    await call("guest:guest", "PUT", `permissions/%2F/${admin.user}`, { configure: ".*", write: ".*", read: ".*" });
  }
  const del = await call(me, "DELETE", "users/guest");
  if (![204, 404].includes(del.status)) throw new Error(`deleting guest: ${del.status}`);
})().catch((e) => { console.error(e.message); process.exit(1); });
JS
}

start_kafka() {
  if kafka_up; then log "kafka already answers on 127.0.0.1:$KAFKA_PORT"; return; fi
  if ! command -v java >/dev/null 2>&1 || ! command -v mvn >/dev/null 2>&1; then
    need_root_to_install "java or maven" "apt-get install openjdk-17-jre-headless maven"; log "installing java and maven"; apt_install openjdk-17-jre-headless maven
  fi
  local dir="$state/kafka" lib="$state/kafka/lib"
  mkdir -p "$dir"
  if [ ! -f "$lib/.complete" ] || [ "$root/brokers/kafka/pom.xml" -nt "$lib/.complete" ]; then
    log "resolving the Apache Kafka broker from Maven Central (once)"
    rm -rf "$lib"
    mvn -q -B -f "$root/brokers/kafka/pom.xml" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$lib" >"$dir/maven.log" 2>&1 \
      || { tail -n 30 "$dir/maven.log" >&2; exit 1; }
    touch "$lib/.complete"
  fi
  local admin_user admin_password
  admin_user=$(admin_field kafka user)
  admin_password=$(admin_field kafka password)
  (umask 077 && sed -e "s|@DATA@|$dir/data|" -e "s|@PORT@|$KAFKA_PORT|g" -e "s|@CONTROLLER_PORT@|$KAFKA_CONTROLLER_PORT|g" \
    -e "s|@ADMIN_USER@|$admin_user|g" -e "s|@ADMIN_PASSWORD@|$admin_password|g" \
    "$root/brokers/kafka/server.properties" > "$dir/server.properties")
  sed -e "s|@LOG@|$dir/kafka.log|" "$root/brokers/kafka/log4j.properties" > "$dir/log4j.properties"
  local java=(java -Xms256m -Xmx512m -XX:+UseG1GC -cp "$lib/*" -Dlog4j.configuration="file:$dir/log4j.properties")
  if [ ! -f "$dir/data/meta.properties" ]; then
    rm -rf "$dir/data"
    # The runner's admin user exists from the first start (SCRAM credentials live in the metadata log).
    "${java[@]}" kafka.tools.StorageTool format -t "$("${java[@]}" kafka.tools.StorageTool random-uuid | tail -n1)" -c "$dir/server.properties" \
      --add-scram "SCRAM-SHA-512=[name=$admin_user,password=$admin_password]" >/dev/null
  fi
  log "starting kafka (KRaft) on 127.0.0.1:$KAFKA_PORT"
  nohup "${java[@]}" kafka.Kafka "$dir/server.properties" >"$dir/stdout.log" 2>&1 &
  echo $! > "$state/kafka.pid"
  wait_for kafka kafka_up 60 "$dir/kafka.log"
  # Tell the runner that this broker takes its admin's SCRAM login (it then mints users with ACLs).
  node -e 'const fs=require("fs"),f=process.argv[1],a=JSON.parse(fs.readFileSync(f,"utf8")); a.kafka.sasl=true; fs.writeFileSync(f+".tmp",JSON.stringify(a,null,1)+"\n",{mode:0o600}); fs.renameSync(f+".tmp",f)' "$admin_file"
}

start_nats() {
  if nats_up; then log "nats already answers on 127.0.0.1:$NATS_PORT"; return; fi
  if ! command -v nats-server >/dev/null 2>&1; then need_root_to_install nats-server "apt-get install nats-server"; log "installing nats-server"; apt_install nats-server; fi
  local dir="$state/nats"
  mkdir -p "$dir"
  # Users live in users.conf, which the runner rewrites (one entry per live run) and reloads with
  # SIGHUP. Without an authorization block NATS lets anyone in: this one lets in only those users.
  (umask 077 && printf '%s\n' "listen: 127.0.0.1:$NATS_PORT" "http: 127.0.0.1:$NATS_MONITOR_PORT" "pid_file: \"$state/nats.pid\"" \
    "log_file: \"$state/nats.log\"" "authorization {" "  include \"users.conf\"" "}" > "$dir/nats.conf")
  if [ ! -s "$dir/users.conf" ]; then
    (umask 077 && printf 'users = [\n  { user: "%s", password: "%s" }\n]\n' "$(admin_field nats user)" "$(admin_field nats password)" > "$dir/users.conf")
  fi
  log "starting nats on 127.0.0.1:$NATS_PORT"
  nohup nats-server -c "$dir/nats.conf" >"$dir/stdout.log" 2>&1 &
  wait_for nats nats_up 10 "$state/nats.log"
  # Where the runner finds what it needs to mint users: the file and the server's pid.
  node -e 'const fs=require("fs"),[f,conf,pid]=process.argv.slice(1),a=JSON.parse(fs.readFileSync(f,"utf8")); Object.assign(a.nats,{users:conf,pid}); fs.writeFileSync(f+".tmp",JSON.stringify(a,null,1)+"\n",{mode:0o600}); fs.renameSync(f+".tmp",f)' "$admin_file" "$dir/users.conf" "$state/nats.pid"
}

start_mqtt() {
  if mqtt_up; then log "mqtt already answers on 127.0.0.1:$MQTT_PORT"; return; fi
  if ! command -v mosquitto >/dev/null 2>&1; then need_root_to_install mosquitto "apt-get install mosquitto"; log "installing mosquitto"; apt_install mosquitto; fi
  local dir="$state/mosquitto" plugin
  plugin=$(find /usr/lib /usr/local/lib -name mosquitto_dynamic_security.so 2>/dev/null | head -n1)
  [ -n "$plugin" ] || { log "mosquitto's dynamic-security plugin (mosquitto_dynamic_security.so) is missing"; exit 1; }
  mkdir -p "$dir"
  # The dynamic-security plugin keeps clients and roles in dynsec.json: the admin first, the runner
  # adds one client and role per run over MQTT ($CONTROL/dynamic-security/v1) and deletes them.
  if [ ! -s "$dir/dynsec.json" ]; then
    (umask 077 && node - "$dir/dynsec.json" "$(admin_field mqtt user)" "$(admin_field mqtt password)" <<'JS'
const fs = require("fs"), { pbkdf2Sync, randomBytes } = require("crypto");
const [file, user, password] = process.argv.slice(2);
// mosquitto's own format: PBKDF2-SHA512, 101 iterations, base64 salt and hash (what `mosquitto_ctrl dynsec init` writes).
const salt = randomBytes(12), iterations = 101;
const hash = pbkdf2Sync(password, salt, iterations, 64, "sha512");
const config = {
  defaultACLAccess: { publishClientSend: false, publishClientReceive: true, subscribe: false, unsubscribe: true },
  clients: [{ username: user, textName: "airlock runner", password: hash.toString("base64"), salt: salt.toString("base64"), iterations, roles: [{ rolename: "airlock-admin" }] }],
  groups: [],
  roles: [{ rolename: "airlock-admin", acls: [
    { acltype: "publishClientSend", topic: "$CONTROL/dynamic-security/#", allow: true },
    { acltype: "publishClientReceive", topic: "$CONTROL/dynamic-security/#", allow: true },
    { acltype: "subscribePattern", topic: "$CONTROL/dynamic-security/#", allow: true },
    { acltype: "publishClientSend", topic: "#", allow: true },
    { acltype: "publishClientReceive", topic: "#", allow: true },
    { acltype: "subscribePattern", topic: "#", allow: true },
    { acltype: "unsubscribePattern", topic: "#", allow: true } ] }],
};
fs.writeFileSync(file, JSON.stringify(config, null, 1) + "\n", { mode: 0o600 });
JS
    )
  fi
  (umask 077 && printf '%s\n' "per_listener_settings false" "listener $MQTT_PORT 127.0.0.1" "allow_anonymous false" \
    "plugin $plugin" "plugin_opt_config_file $dir/dynsec.json" "persistence false" "set_tcp_nodelay true" "max_queued_messages 100000" \
    "user $(id -un)" "pid_file $state/mqtt.pid" "log_dest file $state/mqtt.log" "log_type error" "log_type warning" "log_type notice" > "$dir/mosquitto.conf")
  log "starting mosquitto on 127.0.0.1:$MQTT_PORT"
  nohup mosquitto -c "$dir/mosquitto.conf" >"$dir/stdout.log" 2>&1 &
  wait_for mqtt mqtt_up 10 "$state/mqtt.log"
}

# The process this script started and everything below it (rabbitmq-server's wrapper starts the
# Erlang VM as a child): nothing that this script did not start.
kill_tree() {
  local child
  for child in $(pgrep -P "$1" 2>/dev/null); do kill_tree "$child"; done
  kill -TERM "$1" 2>/dev/null || true
}

stop_one() {
  local pidfile="$state/$1.pid"
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    local pid; pid=$(cat "$pidfile")
    kill_tree "$pid"
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    log "stopped $1"
  fi
  rm -f "$pidfile"
}

cmd=${1:-start}; shift || true
services=${*:-redis rabbitmq kafka nats mqtt}
for s in $services; do
  case "$s" in redis|rabbitmq|kafka|nats|mqtt) ;; *) echo "unknown broker: $s (redis, rabbitmq, kafka, nats, mqtt)" >&2; exit 2 ;; esac
done
case "$cmd" in
  start) for s in $services; do "start_$s"; done ;;
  stop) for s in $services; do stop_one "$s"; done ;;
  status)
    for s in $services; do
      if "${s}_up"; then printf '%-9s up\n' "$s"; else printf '%-9s down\n' "$s"; fi
    done ;;
  *) echo "usage: $0 start|stop|status [redis|rabbitmq|kafka|nats|mqtt ...]" >&2; exit 2 ;;
esac
