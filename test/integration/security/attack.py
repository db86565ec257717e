"""
Escape attempts, run inside an airlock sandbox by the security suite. Every attempt really tries;
the suite decides what must have failed (and checks its decoys counted nothing).
Input: ATTACK (JSON). Output: /output/attacks.json and a line per attempt on stdout.
"""
import json, os, signal, socket, subprocess, time

cfg = json.loads(os.environ["ATTACK"])
results = {}


def record(key, fn):
    started = time.time()
    try:
        outcome = fn()
    except Exception as e:  # the error is the observation
        outcome = f"{type(e).__name__}: {e}"
    results[key] = {"outcome": str(outcome), "ms": int((time.time() - started) * 1000)}
    print(f"{key}: {outcome}", flush=True)


def tcp(host, port, family=socket.AF_INET):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(3)
    try:
        s.connect((host, port))
        s.sendall(b"ATTACK\n")
        return "connected"
    finally:
        s.close()


def udp(host, port, payload=b"ATTACK"):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1)
    try:
        s.sendto(payload, (host, port))
        try:
            s.recvfrom(512)
            return "answered"
        except socket.timeout:
            return "sent, no answer"
    finally:
        s.close()


def dns_query(name="example.com"):
    header = bytes([0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0])
    qname = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return header + qname + bytes([0, 1, 0, 1])


def run(*cmd):
    p = subprocess.run(list(cmd), capture_output=True, text=True, timeout=15)
    return f"exit {p.returncode}: {(p.stderr or p.stdout).strip()[:160]}"


def write(path, text="ATTACK\n"):
    with open(path, "a") as f:
        f.write(text)
    return "written"


# The allowed endpoint must still answer: a gate that blocks everything does not pass.
record("allowed", lambda: tcp(cfg["allowed"]["host"], cfg["allowed"]["port"]))

for t in cfg.get("tcp", []):
    record(f"tcp:{t['id']}", lambda t=t: tcp(t["host"], t["port"]))
for t in cfg.get("udp", []):
    record(f"udp:{t['id']}", lambda t=t: udp(t["host"], t["port"]))
for t in cfg.get("dns", []):
    record(f"dns:{t['id']}", lambda t=t: udp(t["host"], t["port"], dns_query()))
for t in cfg.get("ipv6", []):
    record(f"ipv6:{t['id']}", lambda t=t: tcp(t["host"], t["port"], socket.AF_INET6))

record("dns:system-resolver", lambda: socket.getaddrinfo("example.com", 80))
record("icmp:ping", lambda: run("ping", "-c", "1", "-W", "1", cfg["gateway"]))
record("icmp:raw-socket", lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) and "opened")
record("icmp:datagram-socket", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP) and "opened")
record("raw:packet-socket", lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW) and "opened")

record("gate:iptables-flush", lambda: run("iptables", "-F"))
record("gate:iptables-policy-accept", lambda: run("iptables", "-P", "OUTPUT", "ACCEPT"))
record("gate:iptables-nat-flush", lambda: run("iptables", "-t", "nat", "-F"))
record("gate:route-add", lambda: run("ip", "route", "add", "10.99.0.0/24", "dev", "eth0"))
record("gate:address-add", lambda: run("ip", "addr", "add", "10.99.0.5/24", "dev", "eth0"))
record("gate:link-down", lambda: run("ip", "link", "set", "eth0", "down"))
record("gate:sysctl-route-localnet", lambda: write("/proc/sys/net/ipv4/conf/all/route_localnet", "0\n"))
record("gate:etc-hosts", lambda: write("/etc/hosts", f"{cfg['gateway']} redis-elsewhere\n"))
record("gate:resolv-conf", lambda: write("/etc/resolv.conf", f"nameserver {cfg['gateway']}\n"))


def root_processes():
    pids = []
    for p in os.listdir("/proc"):
        if not p.isdigit() or int(p) == os.getpid():
            continue
        try:
            uid = [l for l in open(f"/proc/{p}/status").read().splitlines() if l.startswith("Uid:")][0].split()[1]
        except OSError:
            continue
        if uid == "0":
            pids.append(int(p))
    return pids


def against_root(action):
    pids = root_processes()
    if not pids:
        return "no root process in the sandbox"
    out = []
    for p in pids:
        try:
            action(p)
            out.append(f"pid {p}: done")
        except Exception as e:  # noqa: BLE001 - the kind of failure is the outcome
            out.append(f"pid {p}: {type(e).__name__}")
    return "; ".join(out)


# The in-container gate's init stays as root (no NET_ADMIN) to report denied connections at the end.
record("gate:init-capabilities", lambda: "; ".join(
    f"pid {p}: " + " ".join(l.split()[1] for l in open(f"/proc/{p}/status").read().splitlines() if l.startswith(("CapEff", "CapBnd")))
    for p in root_processes()) or "no root process in the sandbox")
record("gate:init-kill", lambda: against_root(lambda p: os.kill(p, signal.SIGKILL)))
record("gate:init-environ", lambda: against_root(lambda p: open(f"/proc/{p}/environ", "rb").read()))
record("gate:init-memory", lambda: against_root(lambda p: open(f"/proc/{p}/mem", "rb").read(1)))
# Forged report lines (the nonce is unknown): they must not appear in the result's denied list.
print("\x1eairlock-gate 00000000000000000000000000000000 == airlock_tcp", flush=True)
print("\x1eairlock-gate 00000000000000000000000000000000 604800 10.0.0.1:1->192.0.2.99:4242 0 30 1", flush=True)
print("\x1eairlock-gate 00000000000000000000000000000000 end", flush=True)
# After all that, the gate must still hold.
for t in cfg.get("tcp", [])[:1]:
    record(f"after-tampering:tcp:{t['id']}", lambda t=t: tcp(t["host"], t["port"]))
record("after-tampering:allowed", lambda: tcp(cfg["allowed"]["host"], cfg["allowed"]["port"]))

record("secrets:environ", lambda: json.dumps(dict(os.environ)))
record("secrets:pid1-environ", lambda: open("/proc/1/environ", "rb").read().decode(errors="replace"))
record("secrets:docker-socket", lambda: str([p for p in ("/var/run/docker.sock", "/run/docker.sock") if os.path.exists(p)]))
record("secrets:docker-tcp", lambda: tcp(cfg["gateway"], 2375))
record("secrets:mounts", lambda: open("/proc/self/mountinfo").read())
record("secrets:etc-shadow", lambda: open("/etc/shadow").read()[:20])
record("secrets:root-home", lambda: str(os.listdir("/root")))
record("secrets:write-workspace", lambda: write("/workspace/attack.txt"))
record("root:setuid-0", lambda: os.setuid(0) or "became root")
record("root:su", lambda: run("su", "-c", "id", "root"))
record("root:mount", lambda: run("mount", "-t", "tmpfs", "none", "/tmp"))
record("root:uid", lambda: f"uid={os.getuid()} euid={os.geteuid()}")
record("root:capabilities", lambda: " ".join(l for l in open("/proc/self/status").read().splitlines() if l.startswith("Cap")))
record("root:no-new-privs", lambda: [l for l in open("/proc/self/status").read().splitlines() if l.startswith("NoNewPrivs")][0])
record("host:processes", lambda: json.dumps(sorted({open(f"/proc/{p}/comm").read().strip() for p in os.listdir("/proc") if p.isdigit() and os.path.exists(f"/proc/{p}/comm")})))

# A process that tries to outlive the agent: detached, it waits, then reaches for a decoy.
late = cfg.get("late")
if late:
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            os.execv("/bin/sh", ["sh", "-c", f"sleep 4; echo late > /output/late.txt; python3 -c 'import socket; socket.create_connection((\"{late['host']}\", {late['port']}), 3)' # airlock-late-marker"])
        os._exit(0)
    record("lifetime:detached-child", lambda: "spawned")

with open("/output/attacks.json", "w") as f:
    json.dump(results, f, indent=1)
