# -*- coding: utf-8 -*-
"""Python test target for --native: Python and C frames interleaved.

    python py_native.py MODE EXT_DIR FAULT_FILE

EXT_DIR holds the fhext extension (tests/targets/fhext.c) built for this
interpreter.  Its own faulthandler writes to FAULT_FILE: the oracle of the
Python frames.

  crash    via_callback -> fhext.call (C) -> callback -> make_thumbnail ->
           fhext.crash (C): a store through NULL in C, three levels down.
  crash_on_go  the same crash once "go" is read on stdin ("ready 0" first).
  deep     recurse(60): 60 Python frames deep, then the crash in C.
  block    a thread named fh-reader (its OS name) reads a pipe in C with the
           GIL released; once it sits in read(), every thread's traceback
           goes to FAULT_FILE (faulthandler.dump_traceback), "ready" to
           stdout; a line on stdin lets the reader go, and it exits.
           SIGUSR1 dumps every thread to FAULT_FILE.usr1
           (faulthandler.register).
  sqlite   (needs the sqlite3 module) a thread named fh-query waits in
           SQLite's busy handler for a lock the main thread holds; "ready",
           then a line on stdin ends it.
"""
import faulthandler
import os
import signal
import sys
import threading

sys.path.insert(0, sys.argv[2])
import fhext  # noqa: E402
from fhtarget import blocked, expect, gettid, libc  # noqa: E402

fault_file = open(sys.argv[3], 'w')
faulthandler.enable(file=fault_file, all_threads=True)

PR_SET_NAME = 15
SYS_READ, SYS_NANOSLEEP, SYS_CLOCK_NANOSLEEP = 0, 35, 230  # x86-64


def make_thumbnail(depth):
    return fhext.crash(depth)


def callback():
    make_thumbnail(2)


def via_callback():
    return fhext.call(callback)


def recurse(n):
    if n == 0:
        return make_thumbnail(0)
    return recurse(n - 1)


def reader(fd, tids):
    libc.prctl(PR_SET_NAME, b'fh-reader', 0, 0, 0)
    tids.append(gettid())
    fhext.block(fd)


def in_syscall(tid, numbers):
    """True when the thread sleeps in one of these system calls."""
    if not blocked(tid):
        return False
    try:
        with open('/proc/self/task/%d/syscall' % tid) as f:
            return int(f.read().split()[0]) in numbers
    except (OSError, ValueError):
        return False


def wait_blocked(tids, numbers):
    """Until the thread that appends its id to tids sleeps in one of
    these system calls (polled: the state is the kernel's to tell), for
    at most 20 s; else the target exits with the reason."""
    for _ in range(20000):
        if tids and in_syscall(tids[0], numbers):
            return
        threading.Event().wait(0.001)
    sys.exit('the thread did not block in %r' % (numbers,))


def block():
    usr1_file = open(sys.argv[3] + '.usr1', 'w')
    faulthandler.register(signal.SIGUSR1, file=usr1_file, all_threads=True)
    r, w = os.pipe()
    tids = []
    t = threading.Thread(target=reader, args=(r, tids))
    t.start()
    wait_blocked(tids, (SYS_READ,))
    faulthandler.dump_traceback(file=fault_file, all_threads=True)
    fault_file.flush()
    print('ready %d' % tids[0], flush=True)
    expect(sys.stdin, 'go')
    os.write(w, b'x')
    t.join()


def query(path, tids):
    import sqlite3
    libc.prctl(PR_SET_NAME, b'fh-query', 0, 0, 0)
    tids.append(gettid())
    conn = sqlite3.connect(path, timeout=120)
    try:
        conn.execute("SELECT count(*) FROM t").fetchall()  # /* @query */
    except sqlite3.OperationalError:
        pass


def sqlite():
    import sqlite3
    path = sys.argv[3] + '.db'
    owner = sqlite3.connect(path, isolation_level=None)
    owner.execute('CREATE TABLE IF NOT EXISTS t (x)')
    owner.execute('BEGIN EXCLUSIVE')
    tids = []
    t = threading.Thread(target=query, args=(path, tids))
    t.start()
    wait_blocked(tids, (SYS_NANOSLEEP, SYS_CLOCK_NANOSLEEP))
    print('ready %d' % tids[0], flush=True)
    expect(sys.stdin, 'go')
    owner.execute('ROLLBACK')
    t.join()


def main():
    mode = sys.argv[1]
    if mode == 'crash':
        via_callback()
    elif mode == 'deep':
        recurse(60)
    elif mode == 'crash_on_go':
        print('ready 0', flush=True)
        expect(sys.stdin, 'go')
        via_callback()
    elif mode == 'block':
        block()
    elif mode == 'sqlite':
        sqlite()
    else:
        sys.exit('unknown mode %r' % mode)


main()
