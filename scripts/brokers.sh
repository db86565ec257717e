#!/usr/bin/env bash
# The local brokers airlock's demo and tests use. A broker that already answers is left alone;
# a missing one is installed from Debian packages (as root) and started on the loopback only.
#
#   bash scripts/brokers.sh start [redis ...]   start (default: all)
#   bash scripts/brokers.sh status              which answer
#   bash scripts/brokers.sh stop [redis ...]    stop the ones this script started
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
state="$here/.airlock/brokers"
mkdir -p "$state"
log() { printf '[airlock] %s\n' "$*" >&2; }

REDIS_PORT=${REDIS_PORT:-6379}

redis_up() { (exec 3<>/dev/tcp/127.0.0.1/$REDIS_PORT && printf 'PING\r\n' >&3 && timeout 2 head -c 5 <&3 | grep -q PONG) 2>/dev/null; }

start_redis() {
  if redis_up; then log "redis answers on 127.0.0.1:$REDIS_PORT"; return; fi
  if ! command -v redis-server >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] || { log "redis-server is missing: install it (apt-get install redis-server)"; exit 1; }
    log "installing redis-server from Debian packages"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  fi
  log "starting redis on 127.0.0.1:$REDIS_PORT"
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no --daemonize yes \
    --pidfile "$state/redis.pid" --logfile "$state/redis.log" --protected-mode yes
  for _ in $(seq 1 50); do redis_up && return; sleep 0.1; done
  log "redis did not come up; see $state/redis.log"; exit 1
}

stop_pidfile() {
  local name=$1 pidfile="$state/$1.pid"
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    kill "$(cat "$pidfile")" && log "stopped $name"
  fi
  rm -f "$pidfile"
}

cmd=${1:-start}; shift || true
services=${*:-redis}
case "$cmd" in
  start) for s in $services; do "start_$s"; done ;;
  stop) for s in $services; do stop_pidfile "$s"; done ;;
  status)
    if redis_up; then echo "redis    up   127.0.0.1:$REDIS_PORT"; else echo "redis    down 127.0.0.1:$REDIS_PORT"; fi ;;
  *) echo "usage: $0 start|stop|status [redis]" >&2; exit 2 ;;
esac
