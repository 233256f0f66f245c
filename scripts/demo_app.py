"""The Python half of `make demo`: a small service whose main thread crashes.

Two workers wait for jobs; the main thread handles a request and, deep in a
helper, dereferences a null pointer through ctypes.  It prints "ready" once
its workers wait, then reads a line from stdin before handling the request.
"""
import ctypes
import queue
import sys
import threading
import time

jobs = queue.Queue()


def worker():
    while True:
        job = jobs.get()
        job()


def housekeeping():
    while True:
        time.sleep(60)


def parse(payload):
    return ctypes.string_at(payload)


def handle(request):
    return parse(request['payload'])


for target in (worker, worker, housekeeping):
    threading.Thread(target=target, daemon=True).start()
time.sleep(0.2)
print('ready', flush=True)
sys.stdin.readline()
handle({'payload': 0})
