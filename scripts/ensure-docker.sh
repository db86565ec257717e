#!/usr/bin/env bash
# Make sure a Docker engine answers. A machine that already has one is left alone;
# otherwise, where we are root on Debian/Ubuntu, install docker.io and start dockerd.
set -euo pipefail

log() { printf '[airlock] %s\n' "$*" >&2; }

if docker info >/dev/null 2>&1; then
  exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    log "No Docker engine answers and I can't install one here (need root and apt-get)."
    log "Install Docker (https://docs.docker.com/engine/install/) and start it, then run this again."
    exit 1
  fi
  log "installing docker.io from Debian packages"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io iptables >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then
    log "dockerd is installed but not running, and starting it needs root: sudo dockerd &"
    exit 1
  fi
  if command -v systemctl >/dev/null 2>&1 && systemctl is-system-running >/dev/null 2>&1; then
    systemctl start docker || true
  fi
fi

if ! docker info >/dev/null 2>&1; then
  log "starting dockerd (log: /var/log/airlock-dockerd.log)"
  nohup dockerd >/var/log/airlock-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 0.5
  done
fi

if ! docker info >/dev/null 2>&1; then
  log "dockerd did not come up; last lines of its log:"
  tail -n 20 /var/log/airlock-dockerd.log >&2 || true
  exit 1
fi
log "Docker engine $(docker version --format '{{.Server.Version}}') is up"
