#!/usr/bin/env bash
# The kubernetes suite (test/kubernetes and the examples, every agent a Pod) on the local cluster:
# brings it up (building what is missing, once), runs the suite, and brings it down again, also when
# the suite fails, so that the host is left as it was. Extra arguments go to vitest.
#   bash scripts/k8s/test.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
log() { printf '[airlock k8s] %s\n' "$*" >&2; }
started=$(date +%s)
bash scripts/k8s/cluster.sh up >/dev/null
trap 'bash scripts/k8s/cluster.sh down' EXIT
log "cluster up in $(( $(date +%s) - started )) s"
set -a
# shellcheck disable=SC1091
. .cache/k8s/run/airlock.env
set +a
mkdir -p .airlock
npx vitest run --project kubernetes --reporter=default --reporter=json --outputFile.json=.airlock/vitest-kubernetes.json "$@"
