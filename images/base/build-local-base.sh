#!/usr/bin/env bash
# Build airlock's offline base image: a Debian bookworm root filesystem (debootstrap, minbase)
# plus this host's Node.js, imported with `docker import`. It stands in for the official
# node:<major>-bookworm-slim image where no container registry is reachable; it keeps the same
# layout (node and npm under /usr/local) so Dockerfile.agent builds FROM either unchanged.
#
# usage: build-local-base.sh IMAGE_TAG
# needs: root, debootstrap, a Debian mirror (apt sources of this host), node and npm on PATH.
set -euo pipefail
tag=${1:?usage: build-local-base.sh IMAGE_TAG}
log() { printf '[airlock] %s\n' "$*" >&2; }

if [ "$(id -u)" != 0 ]; then
  log "building the local base image needs root (debootstrap). Run as root, or make the official node image available."
  exit 1
fi
if ! command -v debootstrap >/dev/null 2>&1; then
  log "installing debootstrap"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi

# Use the mirror this host already uses for Debian packages.
mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
  | grep -E '^[[:space:]]*(URIs:|deb[[:space:]])' | grep -oE 'https?://[^ ]+/debian/?' | grep -v security | head -n1 || true)
mirror=${mirror:-http://deb.debian.org/debian}

work=$(mktemp -d /var/tmp/airlock-base.XXXXXX)
trap 'rm -rf "$work"' EXIT
root="$work/rootfs"

log "debootstrap bookworm (minbase) from $mirror"
debootstrap --variant=minbase --include=ca-certificates,iptables,libstdc++6 bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 || {
  tail -n 30 "$work/debootstrap.log" >&2; exit 1; }

node_bin=$(readlink -f "$(command -v node)")
npm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
log "adding Node.js $("$node_bin" --version) from $node_bin and npm from $npm_dir"
install -D -m 0755 "$node_bin" "$root/usr/local/bin/node"
mkdir -p "$root/usr/local/lib/node_modules"
cp -a "$npm_dir" "$root/usr/local/lib/node_modules/npm"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"

# Keep the image small: apt lists, caches and docs are not needed at run time.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
       "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/locale/*

log "importing as $tag"
tar -C "$root" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV NODE_VERSION='"$("$node_bin" --version | tr -d v)" \
  --change 'CMD ["node"]' \
  --change 'LABEL dev.airlock.managed=true dev.airlock.kind=base-image' \
  - "$tag" >/dev/null
log "built $tag"
