#!/bin/sh
# airlock egress gate. Starts as root with CAP_NET_ADMIN (plus SETUID/SETGID/SETPCAP, only to give
# everything up), in the network namespace that the agent container will join. It waits for its
# rules on stdin (one line: base64 of the IPv4 rules, base64 of the IPv6 rules, seconds to hold),
# applies them, then drops its root uid, every capability and the bounding set, and only then says
# "ready" and holds the namespace until the run ends or its deadline passes. No agent is in the
# namespace before "ready". A gate that gets no rules within AIRLOCK_GATE_IDLE_SECONDS exits.
set -eu
line=$(timeout "${AIRLOCK_GATE_IDLE_SECONDS:-600}" head -n 1) || { echo "airlock-gate: no rules arrived" >&2; exit 2; }
set -- $line
[ "$#" -eq 3 ] || { echo "airlock-gate: malformed rules" >&2; exit 2; }
printf '%s' "$1" | base64 -d | iptables-restore
printf '%s' "$2" | base64 -d | ip6tables-restore
exec setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all --bounding-set=-all \
  sh -c 'grep -q "^CapEff:[[:space:]]*0000000000000000$" /proc/self/status || { echo "airlock-gate: capabilities left" >&2; exit 3; }
         echo "airlock-gate: ready"; exec sleep "$1"' airlock-gate "$3"
