#!/usr/bin/env bash
# The proof that airlock's NetworkPolicy is enforced where the network plugin enforces it
# (test/netpol): a single-node cluster with Cilium instead of the bridge plugin (cluster.sh with
# AIRLOCK_K8S_CNI=cilium; the first time builds Cilium from the Go proxy, 6-12 min, and installs
# clang-19), the test, and the cluster down again. Not part of npm test (the Cilium build would nearly
# double a cold CI run). The bridge cluster must be down: one cluster at a time.
#   bash scripts/k8s/netpol.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
log() { printf '[airlock k8s] %s\n' "$*" >&2; }
if bash scripts/k8s/cluster.sh status >/dev/null 2>&1; then
  log "the bridge cluster is up: bring it down first (bash scripts/k8s/cluster.sh down)"
  exit 1
fi
export AIRLOCK_K8S_CNI=cilium
started=$(date +%s)
bash scripts/k8s/cluster.sh up >/dev/null
trap 'bash scripts/k8s/cluster.sh down' EXIT
log "cilium cluster up in $(( $(date +%s) - started )) s"
set -a
# shellcheck disable=SC1091
. .cache/k8s/run-cilium/airlock.env
set +a
npx vitest run --project netpol "$@"
