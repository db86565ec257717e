#!/bin/sh
# airlock's in-container egress gate: the entrypoint of a gated agent container.
#
# It starts as root with CAP_NET_ADMIN (plus SETUID/SETGID/SETPCAP/KILL, only to hand the agent a
# plain uid) in the container's own network namespace, and before any agent code exists:
#   1. reads one line on stdin from the runner: base64 IPv4 rules, base64 IPv6 rules, uid, gid, nonce;
#   2. applies the rules (default deny), while the runner sets up the host side for this container;
#   3. re-executes itself, under tini (pid 1: reaps orphans, passes signals on), without NET_ADMIN or
#      any capability but SETUID/SETGID/SETPCAP/KILL, and checks that this is so;
#   4. has said "applied" after step 2 (the runner then reads the rules back from outside the
#      container and compares them with what it sent), waits for the runner's second line ("go":
#      rules checked, host side ready), then starts the agent's command as uid:gid with no
#      capabilities at all (empty bounding set, no-new-privileges is set on the container), stdin
#      from /dev/null;
#   5. forwards SIGTERM/SIGINT to it, waits, prints the denied-connection tables (kernel files only
#      uid 0 can read) and the exit code as lines tagged with the nonce, then holds the namespace
#      until the runner says "done" (a root runner reads the tables itself meanwhile), and exits
#      with the agent's code.
# The runner only ever runs this script from images it built itself (it records their IDs), never
# from an image someone else derived. The agent cannot read the nonce (it never sees this process's
# memory or environment), so it cannot forge or hide report lines. Everything here uses shell
# builtins after step 4, so an agent that uses up its process limit cannot stop the report.
# The line formats and values are shared with runner/gate/protocol.ts (checked by a unit test).
set -eu

if [ "${1:-}" = "--supervise" ]; then
  shift
  nonce=$AIRLOCK_INIT_NONCE uid=$AIRLOCK_INIT_UID gid=$AIRLOCK_INIT_GID
  while IFS=" 	" read -r key value; do
    case "$key" in CapEff:|CapBnd:) [ "$value" = "00000000000001e0" ] || { echo "airlock-init: unexpected capabilities ($key $value)" >&2; exit 125; } ;; esac
  done </proc/self/status
  unset AIRLOCK_INIT_NONCE AIRLOCK_INIT_UID AIRLOCK_INIT_GID AIRLOCK_INIT_BACKEND
  read -r go extra || { echo "airlock-init: the runner went away before the start" >&2; exit 125; }
  [ "$go" = go ] || { echo "airlock-init: unexpected start line" >&2; exit 125; }
  # Variables minted while the container started (the run's broker credentials): NAME=base64.
  for kv in $extra; do
    name=${kv%%=*}
    case "$name" in "" | *[!A-Za-z0-9_]*) echo "airlock-init: bad variable name on the start line" >&2; exit 125 ;; esac
    value=$(printf '%s' "${kv#*=}" | base64 -d) || { echo "airlock-init: bad variable value on the start line" >&2; exit 125; }
    export "$name=$value"
  done
  setpriv --reuid="$uid" --regid="$gid" --clear-groups --inh-caps=-all --bounding-set=-all -- "$@" </dev/null &
  child=$!
  trap 'kill -TERM "$child" 2>/dev/null || true' TERM
  trap 'kill -INT "$child" 2>/dev/null || true' INT
  trap 'kill -HUP "$child" 2>/dev/null || true' HUP
  set +e
  while :; do
    wait "$child"
    code=$?
    kill -0 "$child" 2>/dev/null || break
  done
  for table in airlock_tcp airlock_udp airlock_other airlock_lo; do
    printf '\036airlock-gate %s == %s\n' "$nonce" "$table"
    if [ -r "/proc/net/ipt_hashlimit/$table" ]; then
      while IFS= read -r line; do printf '\036airlock-gate %s %s\n' "$nonce" "$line"; done <"/proc/net/ipt_hashlimit/$table"
    fi
  done
  printf '\036airlock-gate %s end %s\n' "$nonce" "$code"
  # The same mark on stderr: once the runner has both, it has every line the agent wrote.
  printf '\036airlock-gate %s end %s\n' "$nonce" "$code" >&2
  # Hold the namespace until the runner has read what it needs (or has gone away: end of stdin).
  read -r _ || true
  exit "$code"
fi

[ "$(id -u)" = 0 ] || { echo "airlock-init: must start as root to apply the egress rules" >&2; exit 125; }
# `read` takes one line and not a byte more: the start line that follows is for the supervisor.
read -r line || { echo "airlock-init: no rules arrived" >&2; exit 125; }
parse() {
  [ "$#" -eq 5 ] || { echo "airlock-init: malformed rules" >&2; exit 125; }
  v4=$1 v6=$2 AIRLOCK_INIT_UID=$3 AIRLOCK_INIT_GID=$4 AIRLOCK_INIT_NONCE=$5
}
# shellcheck disable=SC2086
parse $line
# The legacy (x_tables) backend loads these rules in a few milliseconds, the nf_tables one in tens;
# both are enforced by the same kernel. Where the kernel has no x_tables, nf_tables it is.
# (Its lock file goes to /tmp: the root filesystem is read-only. Nothing else runs yet to contend.)
apply() { # apply FAMILY BASE64 BACKEND
  printf '%s' "$2" | base64 -d | "$1-$3-restore"
}
export XTABLES_LOCKFILE=/tmp/.airlock-xtables.lock
AIRLOCK_INIT_BACKEND=legacy
if ! apply iptables "$v4" legacy 2>/dev/null; then
  AIRLOCK_INIT_BACKEND=nft
  apply iptables "$v4" nft || { echo "airlock-init: iptables-restore failed" >&2; exit 125; }
fi
apply ip6tables "$v6" "$AIRLOCK_INIT_BACKEND" || { echo "airlock-init: ip6tables-restore failed" >&2; exit 125; }
rm -f "$XTABLES_LOCKFILE"
unset XTABLES_LOCKFILE
# The runner reads the rules back from outside while this process drops NET_ADMIN and checks that
# it is gone; the agent starts only once both are done (the start line is read after the check).
printf '\036airlock-gate %s applied %s\n' "$AIRLOCK_INIT_NONCE" "$AIRLOCK_INIT_BACKEND"
export AIRLOCK_INIT_UID AIRLOCK_INIT_GID AIRLOCK_INIT_NONCE AIRLOCK_INIT_BACKEND
exec setpriv --clear-groups --inh-caps=-all --bounding-set=-all,+setuid,+setgid,+setpcap,+kill -- tini -- "$0" --supervise "$@"
