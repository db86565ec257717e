#!/bin/sh
# airlock egress gate. Starts as root with CAP_NET_ADMIN (plus SETUID/SETGID/SETPCAP, only to give
# everything up), in the network namespace that the agent container will join. It waits for its
# rules on stdin (one line: base64 of the IPv4 rules, base64 of the IPv6 rules, seconds to hold),
# applies them, then drops every capability and the bounding set (no-new-privileges is set on the
# container), checks that none is left, and only then says "ready". No agent is in the namespace
# before "ready". It holds the namespace until the run ends or its deadline passes, and on SIGUSR1
# prints the denied-connection tables (kernel files only root can see, hence uid 0 without any
# capability). A gate that gets no rules within AIRLOCK_GATE_IDLE_SECONDS exits.
set -eu
line=$(timeout "${AIRLOCK_GATE_IDLE_SECONDS:-600}" head -n 1) || { echo "airlock-gate: no rules arrived" >&2; exit 2; }
set -- $line
[ "$#" -eq 3 ] || { echo "airlock-gate: malformed rules" >&2; exit 2; }
# The legacy (x_tables) backend loads rules in a few ms, nf_tables in tens; where the kernel has no
# x_tables, nf_tables it is. (The runner reads the rules back from both.)
backend=legacy
printf '%s' "$1" | base64 -d | iptables-legacy-restore 2>/dev/null || { backend=nft; printf '%s' "$1" | base64 -d | iptables-nft-restore; }
printf '%s' "$2" | base64 -d | "ip6tables-$backend-restore"
exec setpriv --clear-groups --inh-caps=-all --bounding-set=-all sh -c '
  grep -q "^CapEff:[[:space:]]*0000000000000000$" /proc/self/status || { echo "airlock-gate: capabilities left" >&2; exit 3; }
  report() {
    for t in airlock_tcp airlock_udp airlock_other airlock_lo; do echo "== $t"; cat "/proc/net/ipt_hashlimit/$t" 2>/dev/null || true; done
    echo "airlock-gate: end of report"
  }
  trap report USR1
  echo "airlock-gate: ready"
  end=$(( $(date +%s) + $1 ))
  while now=$(date +%s); [ "$now" -lt "$end" ]; do
    sleep $(( end - now )) & pid=$!
    wait "$pid" || kill "$pid" 2>/dev/null || true
  done' airlock-gate "$3"
