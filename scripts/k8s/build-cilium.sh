#!/usr/bin/env bash
# Build Cilium (agent, CNI plugin, operator) from the Go module proxy, for the NetworkPolicy proof
# cluster (cluster.sh up with AIRLOCK_K8S_CNI=cilium). Cached under $AIRLOCK_K8S_DIR/cilium, keyed by
# the version and this script: a second run builds nothing. Two workarounds, from
# ../shared/design/kubernetes-cluster.md: Cilium's replace of k8s.io/apimachinery with its own fork is
# dropped (the fork is not served: 403), and github.com/cilium/gobgp skips the checksum database (404).
#   bash scripts/k8s/build-cilium.sh      about 6-12 min on 2 cores, once
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
K=${AIRLOCK_K8S_DIR:-$here/../../.cache/k8s}
V=${AIRLOCK_CILIUM_VERSION:-1.18.6}
C=$K/cilium
log() { printf '[airlock k8s] %s\n' "$*" >&2; }
key=$(sha256sum "$0" | cut -c1-16)-$V
if [ -x "$C/bin/cilium-agent" ] && [ "$(cat "$C/bin/.key" 2>/dev/null)" = "$key" ]; then
  log "cilium $V already built ($C/bin)"
  exit 0
fi
mkdir -p "$C/build" "$C/bin"
cd "$C/build"
cat >go.mod <<EOG
module ciliumbuild

go 1.24

require github.com/cilium/cilium v$V

replace sigs.k8s.io/controller-tools => github.com/cilium/controller-tools v0.16.5-1
replace github.com/osrg/gobgp/v3 => github.com/cilium/gobgp/v3 v3.0.0-20250717193620-26a4abb75464
EOG
printf 'package main\n\nimport (\n\t_ "github.com/cilium/cilium/daemon"\n\t_ "github.com/cilium/cilium/plugins/cilium-cni"\n\t_ "github.com/cilium/cilium/operator"\n)\n\nfunc main() {}\n' >tools.go
export GONOSUMDB=github.com/cilium/gobgp GOFLAGS=-mod=mod CGO_ENABLED=0
log "building cilium $V from the Go module proxy (once: 6-12 min on 2 cores)"
start=$(date +%s)
go build -o "$C/bin/cilium-agent" -ldflags '-s -w' github.com/cilium/cilium/daemon
go build -o "$C/bin/cilium-cni" -ldflags '-s -w' github.com/cilium/cilium/plugins/cilium-cni
go build -tags ipam_provider_operator -o "$C/bin/cilium-operator-generic" -ldflags '-s -w' github.com/cilium/cilium/operator
echo "$key" >"$C/bin/.key"
log "built cilium $V in $(( $(date +%s) - start )) s ($(du -sh "$C/bin" | cut -f1))"
