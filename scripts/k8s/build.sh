#!/usr/bin/env bash
# Build what a local single-node Kubernetes cluster needs, without a container registry: one
# multi-call binary of the control plane and node components (Kubernetes built from k8s.io/kubernetes
# on the Go module proxy), and a static pause image. Cached under $AIRLOCK_K8S_DIR (default
# .cache/k8s), keyed by the version and the sources here: a second run builds nothing.
#   bash scripts/k8s/build.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
K=${AIRLOCK_K8S_DIR:-$here/../../.cache/k8s}
V=${AIRLOCK_K8S_VERSION:-1.34.4}
log() { printf '[airlock k8s] %s\n' "$*" >&2; }
mkdir -p "$K/bin" "$K/build/cmd/k8s-all" "$K/pause/rootfs"
key=$(cat "$here/src/k8s-all/main.go" "$0" | sha256sum | cut -c1-16)-$V
if [ -x "$K/bin/k8s-all" ] && [ "$(cat "$K/bin/.key" 2>/dev/null)" = "$key" ]; then
  log "kubernetes $V already built ($K/bin/k8s-all)"
else
  log "building kubernetes $V from the Go module proxy (once: ~7 min of CPU on 2 cores)"
  cd "$K/build"
  cp "$here/src/k8s-all/main.go" cmd/k8s-all/main.go
  # k8s.io/kubernetes replaces its staging modules with local paths: replace each with its published version.
  proxy=$(go env GOPROXY); proxy=${proxy%%,*}; [ "$proxy" = direct ] && proxy=https://proxy.golang.org
  curl -fsS "$proxy/k8s.io/kubernetes/@v/v$V.mod" -o k8s.mod
  { printf 'module k8sbuild\n\ngo 1.24.0\n\ngodebug default=go1.24\n\nrequire k8s.io/kubernetes v%s\n\nreplace (\n' "$V"
    sed -n '/^replace (/,/^)/p' k8s.mod | grep '=>' | awk '{print $1}' | grep -v sample \
      | while read -r m; do printf '\t%s => %s v0.%s\n' "$m" "$m" "${V#1.}"; done
    printf ')\n'; } > go.mod
  rm k8s.mod
  go mod tidy 2>"$K/build/tidy.log" || { tail -n 20 "$K/build/tidy.log" >&2; exit 1; }
  # Without these every component reports v0.0.0-master.
  minor=$(echo "$V" | cut -d. -f2)
  LDF="-s -w -X k8s.io/component-base/version.gitVersion=v$V -X k8s.io/component-base/version.gitMajor=1 \
    -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean \
    -X k8s.io/client-go/pkg/version.gitVersion=v$V"
  CGO_ENABLED=0 go build -o "$K/bin/k8s-all" -ldflags "$LDF" ./cmd/k8s-all
  for c in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy; do ln -sf k8s-all "$K/bin/$c"; done
  echo "$key" > "$K/bin/.key"
  log "built $K/bin/k8s-all ($(du -h "$K/bin/k8s-all" | cut -f1))"
fi
if [ ! -f "$K/pause.tar" ]; then
  cd "$here/src/pause"
  [ -f go.mod ] || printf 'module pause\n\ngo 1.24\n' > go.mod
  CGO_ENABLED=0 go build -ldflags '-s -w' -o "$K/pause/rootfs/pause" .
  bash "$here/mkimage.sh" "$K/pause/rootfs" registry.k8s.io/pause:3.10 "$K/pause.tar" /pause
  log "built the pause image"
fi
