"""Benchmark target: how much work a Python process gets done while watched.

    python count_loop.py SECONDS THREADS

Starts THREADS-1 threads asleep, prints "ready", waits for a line on stdin,
then counts loop iterations in the main thread for SECONDS (reading the
clock every 10000 iterations), prints "rate N" (iterations per second) and
waits for its stdin to close.
With THREADS=N and no line read, it stays parked: the live-dump target.
"""
import sys
import threading
import time


def park():
    time.sleep(3600)


seconds = float(sys.argv[1])
for _ in range(int(sys.argv[2]) - 1):
    threading.Thread(target=park, daemon=True).start()
print('ready', flush=True)
sys.stdin.readline()
start = time.monotonic()
end = start + seconds
n = 0
while True:
    for _ in range(10000):
        n += 1
    if time.monotonic() >= end:
        break
print('rate %.0f' % (n / (time.monotonic() - start)), flush=True)
sys.stdin.read()
