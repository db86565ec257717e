#!/bin/sh
# airlock egress gate. Starts as root with CAP_NET_ADMIN (plus SETUID/SETGID/SETPCAP, only to give
# everything up), in the network namespace that the agent container will join. It applies the
# rules the runner computed, then drops its root uid, every capability and the bounding set, and
# only then says "ready" and holds the namespace until the run ends (or its deadline passes).
set -eu
[ -n "${AIRLOCK_GATE_V4:-}" ] && [ -n "${AIRLOCK_GATE_V6:-}" ] || { echo "airlock-gate: no rules given" >&2; exit 2; }
printf '%s\n' "$AIRLOCK_GATE_V4" | iptables-restore
printf '%s\n' "$AIRLOCK_GATE_V6" | ip6tables-restore
exec setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all --bounding-set=-all \
  sh -c 'grep -q "^CapEff:[[:space:]]*0000000000000000$" /proc/self/status || { echo "airlock-gate: capabilities left" >&2; exit 3; }
         echo "airlock-gate: ready"; exec sleep "$1"' airlock-gate "${AIRLOCK_GATE_HOLD_SECONDS:-3600}"
