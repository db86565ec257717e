# An agent that tries to fill the host's disk through /output: it ignores SIGTERM and writes 1 MiB
# files (and fallocates others) from 4 threads until it is stopped. The policy allows 1 MiB.
import os, signal, subprocess, threading, time

signal.signal(signal.SIGTERM, signal.SIG_IGN)
refused = [0]

def writes(k):
    for i in range(1_000_000):
        try:
            with open(f"/output/w{k}-{i}", "wb") as f:
                f.write(b"x" * (1 << 20))
        except OSError:
            refused[0] += 1
            time.sleep(0.001)

def fallocates(k):
    for i in range(1_000_000):
        if subprocess.run(["fallocate", "-l", "1M", f"/output/f{k}-{i}"], stderr=subprocess.DEVNULL).returncode:
            refused[0] += 1

threads = [threading.Thread(target=writes, args=(k,), daemon=True) for k in range(2)] + [threading.Thread(target=fallocates, args=(k,), daemon=True) for k in range(2)]
for t in threads:
    t.start()
while True:
    print("refused", refused[0], flush=True)
    time.sleep(1)
