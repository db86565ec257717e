#!/bin/sh
# airlock's gate in a Kubernetes Pod (runner/backends/kubernetes/pod-spec.ts). Two roles:
#
#   apply SECONDS  the Pod's init container, root with NET_ADMIN/NET_RAW only, in the Pod's network
#                  namespace before any agent container exists: loads /etc/airlock-gate/v4 and v6
#                  (the run's rules, from its ConfigMap), says "applied" (with the x_tables backend
#                  and the Pod's address), then waits until the runner
#                  has read the rules back over exec and created /run/airlock-gate/go. Exits 0 then,
#                  which lets the kubelet start the agent; gives up (exit 3) after SECONDS.
#   keep SECONDS   a container beside the agent with no capability (the keeper, as the agent's uid,
#                  holding /output; the reporter, as uid 0, for the denied-connection tables that
#                  only uid 0 may read): answers the runner's exec until the run is over, at most
#                  SECONDS. It ignores SIGTERM (the runner deletes the Pod when it is done).
#   signal SIG     over exec in the keeper: sends SIG to every process of the Pod that is not in the
#                  keeper's own container (its cgroup) and that its uid may signal: the agent's. This
#                  is how the runner stops the agent (SIGTERM, then SIGKILL after the grace) without
#                  ending the Pod, so that its output can still be read.
set -eu
role=${1:-}
seconds=${2:-600}
case "$role" in
apply)
  iptables-restore </etc/airlock-gate/v4
  ip6tables-restore </etc/airlock-gate/v6
  # The x_tables backend (the runner reads the rules back with the same) and the Pod's address.
  if iptables -V 2>/dev/null | grep -q nf_tables; then backend=nft; else backend=legacy; fi
  address=$(hostname -I | cut -d' ' -f1)
  echo "airlock-gate: applied $backend $address"
  end=$(( $(date +%s) + seconds ))
  while [ ! -e /run/airlock-gate/go ]; do
    [ "$(date +%s)" -lt "$end" ] || { echo "airlock-gate: the runner did not release the gate within ${seconds}s" >&2; exit 3; }
    sleep 0.05
  done
  echo "airlock-gate: released"
  ;;
keep)
  grep -q "^CapEff:[[:space:]]*0000000000000000$" /proc/self/status || { echo "airlock-keeper: capabilities left" >&2; exit 3; }
  trap '' TERM
  echo "airlock-keeper: holding"
  end=$(( $(date +%s) + seconds ))
  while now=$(date +%s); [ "$now" -lt "$end" ]; do sleep 1; done
  ;;
signal)
  own=$(cat /proc/self/cgroup)
  for dir in /proc/[0-9]*; do
    pid=${dir#/proc/}
    [ "$pid" != "$$" ] || continue
    cg=$(cat "$dir/cgroup" 2>/dev/null) || continue
    [ "$cg" != "$own" ] || continue
    kill "-${2:-TERM}" "$pid" 2>/dev/null || true
  done
  ;;
report)
  # Run over exec in the keeper: the tables in the format of gate.sh's report.
  for t in airlock_tcp airlock_udp airlock_other airlock_lo; do echo "== $t"; cat "/proc/net/ipt_hashlimit/$t" 2>/dev/null || true; done
  echo "airlock-gate: end of report"
  ;;
*)
  echo "usage: airlock-pod-gate apply SECONDS | keep SECONDS | signal SIG | report" >&2
  exit 2
  ;;
esac
