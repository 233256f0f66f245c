"""Python test target: a multiprocessing worker that aborts.

    python py_mp.py METHOD FAULT_FILE IN_FIFO OUT_FIFO

METHOD is a multiprocessing start method: "spawn" (the worker is a fresh
interpreter the master forks and execs) or "forkserver" (the master forks
and execs a fork server, which forks the worker).  The master reads lines
from IN_FIFO and writes lines to OUT_FIFO (the test holds both open, so
neither open blocks).

The worker enables its own faulthandler, writing to FAULT_FILE: that
output is the oracle fh-bpf must match byte for byte.  It sends the master
its pid and its parent's, then calls os.abort() when the master says so.

The master says, on OUT_FIFO:

    master PID              first thing; then it waits for "start"
    worker PID PPID         the worker runs, its faulthandler on
    exitcode N              after "go": the worker was told to abort and
                            joined (N: -6, killed by SIGABRT); the master
                            then exits 0

The master starts a process group of its own: the test ends the whole tree
with one signal if it fails half-way.
"""
import faulthandler
import multiprocessing
import os
import sys
from fhtarget import expect


def worker(fault_path, conn):
    faulthandler.enable(file=open(fault_path, 'w'), all_threads=True)
    conn.send((os.getpid(), os.getppid()))
    if conn.recv() == 'abort':
        os.abort()


def main():
    method, fault_path, in_path, out_path = sys.argv[1:5]
    os.setpgid(0, 0)
    inp = open(in_path)
    out = open(out_path, 'w', buffering=1)
    out.write('master %d\n' % os.getpid())
    expect(inp, 'start')
    ctx = multiprocessing.get_context(method)
    mine, theirs = ctx.Pipe()
    process = ctx.Process(target=worker, args=(fault_path, theirs))
    process.start()
    theirs.close()
    pid, ppid = mine.recv()
    out.write('worker %d %d\n' % (pid, ppid))
    expect(inp, 'go')
    mine.send('abort')
    process.join()
    out.write('exitcode %d\n' % process.exitcode)


if __name__ == '__main__':
    main()
