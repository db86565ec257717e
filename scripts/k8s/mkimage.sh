#!/bin/sh
# mkimage.sh ROOTFS NAME:TAG OUT.tar ENTRYPOINT...: a one-layer docker-archive from a folder, which
# `ctr images import` takes: images without a registry, and without Docker.
set -e
ROOTFS=$1; REF=$2; OUT=$3; shift 3
W=$(mktemp -d)
tar -C "$ROOTFS" --numeric-owner --owner=0 --group=0 -cf "$W/layer.tar" .
DIFF=$(sha256sum "$W/layer.tar" | cut -d' ' -f1)
EP=$(printf '"%s",' "$@"); EP="[${EP%,}]"
printf '{"architecture":"amd64","os":"linux","config":{"Entrypoint":%s,"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' "$EP" "$DIFF" > "$W/config.json"
CFG=$(sha256sum "$W/config.json" | cut -d' ' -f1)
mv "$W/config.json" "$W/$CFG.json"; mkdir "$W/$DIFF"; mv "$W/layer.tar" "$W/$DIFF/layer.tar"
printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["%s/layer.tar"]}]' "$CFG" "$REF" "$DIFF" > "$W/manifest.json"
tar -C "$W" -cf "$OUT" manifest.json "$CFG.json" "$DIFF"
rm -rf "$W"
