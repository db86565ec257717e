#!/usr/bin/env bash
# `npm run demo:kubernetes`: the quick start's pair on Kubernetes. Sets up what is missing (as the
# Docker demo does), brings up the local single-node cluster (the first time builds it, ~7 min),
# runs example 1 with every agent a Pod, and takes the cluster down again (KEEP_CLUSTER=1 keeps it).
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/setup.sh redis
bash scripts/k8s/cluster.sh up >/dev/null
[ "${KEEP_CLUSTER:-}" = 1 ] || trap 'bash scripts/k8s/cluster.sh down' EXIT
set -a
# shellcheck disable=SC1091
. .cache/k8s/run/airlock.env
set +a
node dist/runner/cli/main.js up examples/redis-pubsub/run.yaml --backend kubernetes
