#!/bin/sh
# airlock's in-container egress gate: the entrypoint of a gated agent container (a "sandbox").
#
# A sandbox is started before anything about its agent is known (kept ready in a warm pool, or
# started while the runner prepares the run), and gets everything agent-specific afterwards on stdin.
# It starts as root with CAP_NET_ADMIN (plus SETUID/SETGID/SETPCAP/KILL, only to hand the agent a
# plain uid) in the container's own network namespace, and:
#   1. drops every packet (a deny-all rule set), before any other process exists;
#   2. starts the rule loader: a process that keeps NET_ADMIN/NET_RAW and nothing else, and waits
#      for the rules on a pipe only this script holds;
#   3. re-executes itself under tini (pid 1: reaps orphans, passes signals on) without NET_ADMIN or
#      any capability but SETUID/SETGID/SETPCAP/KILL, and checks that this is so;
#   4. starts the language runtime on standby as uid:gid (AIRLOCK_SLOT_USER) with no capabilities at
#      all, when the command line names one: it loads itself and waits on a pipe, holding no agent
#      code, no variables of the run and no connection (nothing can leave: step 1);
# then, when the runner claims the sandbox:
#   5. reads one line from the runner: base64 IPv4 rules, base64 IPv6 rules, uid, gid, nonce; the
#      loader puts the rules in force and exits; this says "applied" (the runner then reads the rules
#      back from outside the container and compares them with what it sent);
#   6. waits for the runner's second line ("go", with the agent's command line and variables), then
#      either hands them to the runtime on standby, or (mode exec, or the runtime is gone) starts the
#      command itself as uid:gid with no capabilities (empty bounding set, no-new-privileges is set
#      on the container), stdin from /dev/null;
#   7. forwards SIGTERM/SIGINT to it (SIGUSR2 kills every process of the agent at once), waits,
#      kills whatever the agent left running, prints the denied-connection tables (kernel files only
#      uid 0 can read) and the exit code as lines tagged with the nonce, then holds the namespace
#      until the runner says "done" (a root runner reads the tables itself meanwhile), and exits
#      with the agent's code.
# The runner only ever runs this script from images it built itself (it records their IDs), never
# from an image someone else derived. The agent cannot read the nonce (it never sees this process's
# memory or environment), so it cannot forge or hide report lines. The pipes between these processes
# have no names left once open (step 2), so nothing else can write to them. Everything here uses
# shell builtins once the agent runs, so an agent that uses up its process limit cannot stop the
# report. The line formats and values are shared with runner/gate/protocol.ts (checked by a unit test).
set -eu

case "${1:-}" in
--load)
  # The rule loader: root with NET_ADMIN/NET_RAW only. One line: base64 IPv4 rules, base64 IPv6 rules.
  backend=$2
  read -r v4 v6 || exit 125
  export XTABLES_LOCKFILE=/tmp/.airlock-xtables.lock
  # Both families at once (separate tables, so separate locks).
  printf '%s' "$v6" | base64 -d | XTABLES_LOCKFILE=/tmp/.airlock-xtables6.lock "ip6tables-$backend-restore" &
  v6loader=$!
  ok=loaded
  printf '%s' "$v4" | base64 -d | "iptables-$backend-restore" || ok=failed
  wait "$v6loader" || ok=failed
  rm -f "$XTABLES_LOCKFILE" /tmp/.airlock-xtables6.lock
  echo "$ok $backend"
  exit
  ;;
--supervise)
  shift
  while IFS=" 	" read -r key value; do
    case "$key" in CapEff:|CapBnd:) [ "$value" = "00000000000001e0" ] || { echo "airlock-init: unexpected capabilities ($key $value)" >&2; exit 125; } ;; esac
  done </proc/self/status
  uid=${AIRLOCK_SLOT_USER%%:*} gid=${AIRLOCK_SLOT_USER#*:}
  unset AIRLOCK_SLOT_USER AIRLOCK_INIT_BACKEND
  child=
  trap '[ -z "$child" ] || kill -TERM "$child" 2>/dev/null || true' TERM
  trap '[ -z "$child" ] || kill -INT "$child" 2>/dev/null || true' INT
  trap '[ -z "$child" ] || kill -HUP "$child" 2>/dev/null || true' HUP
  # The runner's hard stop (the grace is over): every process but this one and tini, at once. The
  # container (and its /output) stays for the runner to copy out.
  trap 'kill -9 -1 2>/dev/null || true' USR2
  standby=
  if [ "$#" -gt 0 ]; then
    # The runtime on standby reads its start line on fd 3 (the only pipe it holds).
    setpriv --reuid="$uid" --regid="$gid" --clear-groups --inh-caps=-all --bounding-set=-all -- "$@" 3<&7 </dev/null 5>&- 6>&- 7>&- &
    standby=$!
  fi
  read -r line || { echo "airlock-init: no rules arrived" >&2; exit 125; }
  parse() {
    [ "$#" -eq 5 ] || { echo "airlock-init: malformed rules" >&2; exit 125; }
    v4=$1 v6=$2 nonce=$5
    [ "$3" = "$uid" ] && [ "$4" = "$gid" ] || { echo "airlock-init: the rules are for another user" >&2; exit 125; }
  }
  # shellcheck disable=SC2086
  parse $line
  printf '%s %s\n' "$v4" "$v6" >&5
  read -r loaded backend <&6 || loaded=
  [ "$loaded" = loaded ] || { echo "airlock-init: iptables-restore failed" >&2; exit 125; }
  printf '\036airlock-gate %s applied %s\n' "$nonce" "$backend"
  read -r go mode extra || { echo "airlock-init: the runner went away before the start" >&2; exit 125; }
  [ "$go" = go ] || { echo "airlock-init: unexpected start line" >&2; exit 125; }
  if [ "$mode" = standby ] && [ -n "$standby" ] && kill -0 "$standby" 2>/dev/null; then
    printf '%s\n' "$extra" >&7
    child=$standby
  else
    [ -z "$standby" ] || { kill -KILL "$standby" 2>/dev/null || true; wait "$standby" 2>/dev/null || true; }
    # The command line (@base64 per argument) and the variables (NAME=base64), in the order given.
    set --
    for kv in $extra; do
      case "$kv" in
      @*)
        arg=$(printf '%s' "${kv#@}" | base64 -d) || { echo "airlock-init: bad argument on the start line" >&2; exit 125; }
        set -- "$@" "$arg"
        ;;
      *)
        name=${kv%%=*}
        case "$name" in "" | *[!A-Za-z0-9_]*) echo "airlock-init: bad variable name on the start line" >&2; exit 125 ;; esac
        value=$(printf '%s' "${kv#*=}" | base64 -d) || { echo "airlock-init: bad variable value on the start line" >&2; exit 125; }
        export "$name=$value"
        ;;
      esac
    done
    [ "$#" -gt 0 ] || { echo "airlock-init: no command on the start line" >&2; exit 125; }
    setpriv --reuid="$uid" --regid="$gid" --clear-groups --inh-caps=-all --bounding-set=-all -- "$@" </dev/null 5>&- 6>&- 7>&- &
    child=$!
  fi
  exec 5>&- 6<&- 7>&-
  set +e
  while :; do
    wait "$child"
    code=$?
    kill -0 "$child" 2>/dev/null || break
  done
  # The agent's run is over: whatever it left running goes before /output is copied out.
  kill -9 -1 2>/dev/null || true
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
  ;;
esac

[ "$(id -u)" = 0 ] || { echo "airlock-init: must start as root to apply the egress rules" >&2; exit 125; }
case "${AIRLOCK_SLOT_USER:-}" in *[!0-9:]* | "" | :* | *:) echo "airlock-init: AIRLOCK_SLOT_USER must be uid:gid" >&2; exit 125 ;; esac
# Deny everything first. The legacy (x_tables) backend loads rules in a few milliseconds, the
# nf_tables one in tens; both are enforced by the same kernel. Where the kernel has no x_tables,
# nf_tables it is. (The lock file goes to /tmp: the root filesystem is read-only.)
DENY_ALL='*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT DROP [0:0]
COMMIT
'
export XTABLES_LOCKFILE=/tmp/.airlock-xtables.lock
AIRLOCK_INIT_BACKEND=legacy
if ! printf '%s' "$DENY_ALL" | iptables-legacy-restore 2>/dev/null; then
  AIRLOCK_INIT_BACKEND=nft
  printf '%s' "$DENY_ALL" | iptables-nft-restore || { echo "airlock-init: iptables-restore failed" >&2; exit 125; }
fi
printf '%s' "$DENY_ALL" | "ip6tables-$AIRLOCK_INIT_BACKEND-restore" || { echo "airlock-init: ip6tables-restore failed" >&2; exit 125; }
rm -f "$XTABLES_LOCKFILE"
unset XTABLES_LOCKFILE
# The pipes: rules (supervisor → loader), loaded (loader → supervisor), start (supervisor → runtime).
# Opened read-write (so no open blocks), then their names are removed.
pipes=/tmp/.airlock-init
mkdir -m 700 "$pipes"
mkfifo -m 600 "$pipes/rules" "$pipes/loaded" "$pipes/start"
exec 5<>"$pipes/rules" 6<>"$pipes/loaded" 7<>"$pipes/start"
rm -r "$pipes"
setpriv --inh-caps=-all --bounding-set=-all,+net_admin,+net_raw -- "$0" --load "$AIRLOCK_INIT_BACKEND" <&5 >&6 5<&- 6>&- 7>&- &
export AIRLOCK_INIT_BACKEND
exec setpriv --clear-groups --inh-caps=-all --bounding-set=-all,+setuid,+setgid,+setpcap,+kill -- tini -- "$0" --supervise "$@"
