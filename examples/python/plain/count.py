"""A plain script that never imports airlock: its lines still reach the runner one by one, as printed."""
import time

for i in range(1, 4):
    print(f"count {i}")
    time.sleep(0.2)
