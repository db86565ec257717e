"""A plain script that never imports airlock: it says it is ready with the documented control line, then
prints a line every 300 ms (which must reach the runner as printed, not at exit)."""
import sys
import time

print("\x1eairlock:" + '{"type":"ready"}')
for i in range(4):
    print(f"tick {i}")
    time.sleep(0.3)
print("done", file=sys.stderr)
