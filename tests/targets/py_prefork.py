"""Python test target: a prefork server (a master and its forked workers).

    python py_prefork.py FAULT_PREFIX IN_FIFO OUT_FIFO WHEN [WORKERS]

The master reads lines from IN_FIFO and writes lines to OUT_FIFO (the test
holds both open, so neither open blocks); it forks WORKERS workers (default
3) with os.fork() and no exec, as gunicorn or uwsgi do: at once when WHEN is
"now", after a line "fork" when it is "late" (the test attaches first).

Each worker N (1, 2, ...) enables its own faulthandler, writing to
FAULT_PREFIX.N, for all its threads: that output is the oracle fh-bpf must
match byte for byte.  It starts one more thread, which sleeps on one line,
waits until that thread is blocked in the kernel, tells the master, and
then serves its command pipe on one line: "c" makes it crash
(ctypes.string_at(0)), end of file makes it exit 0.

The master says, on OUT_FIFO:

    master PID              first thing
    worker N PID            for each worker, once every worker is parked
    ready
    died N PID SIGNAL       after "go": worker 2 was told to crash, and
                            waitpid says it died of signal SIGNAL
                            ("exited N PID STATUS" if it exited instead)
    bye                     after "quit": the other workers were told to
                            exit and were reaped; the master exits 0

The master starts a process group of its own: the test ends the whole tree
with one signal if it fails half-way.
"""
import ctypes
import faulthandler
import os
import sys
import threading
import time
from fhtarget import blocked, expect

libc = ctypes.CDLL(None, use_errno=True)


def park(tids):
    tids.append(libc.syscall(186))  # gettid
    time.sleep(3600)


def crash():
    ctypes.string_at(0)


def serve(cmd):
    while True:
        c = os.read(cmd, 1)
        if c == b'c':
            crash()
        if not c:
            os._exit(0)


def worker(index, cmd, report, fault_prefix):
    fault = open('%s.%d' % (fault_prefix, index), 'w')
    faulthandler.enable(file=fault, all_threads=True)
    tids = []
    threading.Thread(target=park, args=(tids,), daemon=True).start()
    for _ in range(20000):
        if tids and blocked(tids[0]):
            break
        time.sleep(0.001)
    else:
        os._exit(101)
    os.write(report, b'parked %d %d\n' % (index, os.getpid()))
    serve(cmd)


def main():
    fault_prefix, in_path, out_path, when = sys.argv[1:5]
    count = int(sys.argv[5]) if len(sys.argv) > 5 else 3
    os.setpgid(0, 0)
    inp = open(in_path)
    out = open(out_path, 'w', buffering=1)
    out.write('master %d\n' % os.getpid())
    if when == 'late':
        expect(inp, 'fork')
    report_r, report_w = os.pipe()
    workers = {}  # index: (pid, write end of its command pipe)
    for index in range(1, count + 1):
        cmd_r, cmd_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            # Only the master may hold a worker's command pipe open: its
            # close is the worker's end of file.
            for _, w in workers.values():
                os.close(w)
            os.close(cmd_w)
            os.close(report_r)
            try:
                worker(index, cmd_r, report_w, fault_prefix)
            finally:
                os._exit(102)
        os.close(cmd_r)
        workers[index] = (pid, cmd_w)
    os.close(report_w)
    parked = b''
    while parked.count(b'\n') < count:
        chunk = os.read(report_r, 4096)
        if not chunk:
            sys.exit('a worker died before it parked')
        parked += chunk
    for index, (pid, _) in sorted(workers.items()):
        out.write('worker %d %d\n' % (index, pid))
    out.write('ready\n')

    expect(inp, 'go')
    pid, cmd_w = workers.pop(2)
    os.write(cmd_w, b'c')
    _, status = os.waitpid(pid, 0)
    os.close(cmd_w)
    if os.WIFSIGNALED(status):
        out.write('died 2 %d %d\n' % (pid, os.WTERMSIG(status)))
    else:
        out.write('exited 2 %d %d\n' % (pid, os.WEXITSTATUS(status)))

    expect(inp, 'quit')
    for pid, cmd_w in workers.values():
        os.close(cmd_w)
    for pid, _ in workers.values():
        os.waitpid(pid, 0)
    out.write('bye\n')


if __name__ == '__main__':
    main()
