#!/usr/bin/env bash
# Bring a machine up to what airlock's demo and tests need, doing only what is missing:
# a Docker engine, npm dependencies, the compiled package, the images, and the local brokers.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '[airlock] %s\n' "$*" >&2; }

bash scripts/ensure-docker.sh

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "installing npm dependencies"
  npm ci --no-audit --no-fund --loglevel=error
fi
log "compiling"
npx tsc -p tsconfig.json
chmod +x dist/runner/cli/main.js

bash scripts/brokers.sh start "$@"

log "preparing images (the first time builds them: about a minute)"
node dist/runner/cli/main.js build --python --policy policies/*.yaml >/dev/null
