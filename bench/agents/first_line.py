"""Prints the wall clock as its first line: when a Python agent's code first runs."""
import time

print(f"FIRST_LINE {int(time.time() * 1000)}")
