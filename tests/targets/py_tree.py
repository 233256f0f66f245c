"""Python test target: a parked tree of three processes, for live dumps.

    python py_tree.py CRASH FILE_PREFIX IN_FIFO OUT_FIFO [usr1]

A master forks two children: a Python worker (os.fork() and no exec, as a
prefork server does) and a native one (forked, then exec'd: CRASH
--threads 4 ... wait, the crash target, its threads parked at its marker
lines).  The master reads lines from IN_FIFO and writes lines to OUT_FIFO
(the test holds both open, so neither open blocks).

The master and the worker each start one more thread, which sleeps on one
line, and wait until it is blocked in the kernel.  Then each writes every
thread's traceback with faulthandler.dump_traceback(all_threads=True) to
FILE_PREFIX.master or FILE_PREFIX.worker and parks in a blocking read, on
that same line: what fh-bpf dumps of it while it is parked must be that
text (under a header, for a timeout).  With "usr1" the worker registers
faulthandler for SIGUSR1 first, writing to FILE_PREFIX.usr1 (its parked
thread blocks the signal: the main thread receives it).

The master says, on OUT_FIFO:

    master PID                      first thing
    worker PID                      the Python worker, parked
    native PID                      the crash target, parked, then its
    native thread TID 0xPTHREAD ROLE    report: one line per thread
    ready                           the master is parked too
    pong                            after "ping": the worker read a byte
                                    sent after it (any SIGUSR1 sent to it
                                    before has been handled)
    bye WORKER NATIVE               after "quit": both children were told
                                    to exit and reaped (their wait
                                    statuses); the master exits 0

The master starts a process group of its own: the test ends the whole tree
with one signal if it fails half-way.
"""
import ctypes
import faulthandler
import os
import signal
import sys
import threading
import time
from fhtarget import blocked

libc = ctypes.CDLL(None, use_errno=True)


def sleeper(tids):
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    tids.append(libc.syscall(186))  # gettid
    time.sleep(3600)


def start_sleeper():
    tids = []
    threading.Thread(target=sleeper, args=(tids,), daemon=True).start()
    for _ in range(20000):
        if tids and blocked(tids[0]):
            return
        time.sleep(0.001)
    sys.exit('the sleeper did not park')


def worker(cmd, report, prefix, usr1):
    if usr1:
        faulthandler.register(signal.SIGUSR1, file=open(prefix + '.usr1', 'w'),
                              all_threads=True)
    dump = open(prefix + '.worker', 'w')
    start_sleeper()
    # One line: the main thread's frame is here for both dumps.
    faulthandler.dump_traceback(dump, all_threads=True); dump.flush(); os.write(report, b'parked\n'); c = os.read(cmd, 1)
    while c == b'p':
        os.write(report, b'pong\n')
        c = os.read(cmd, 1)
    os._exit(0 if c == b'q' else 103)


def park(inp, out, prefix):
    dump = open(prefix + '.master', 'w')
    # One line: the main thread's frame is here for both dumps.
    faulthandler.dump_traceback(dump, all_threads=True); dump.flush(); out.write('ready\n'); return inp.readline()


def main():
    crash, prefix, in_path, out_path = sys.argv[1:5]
    usr1 = sys.argv[5:] == ['usr1']
    os.setpgid(0, 0)
    inp = open(in_path)
    out = open(out_path, 'w', buffering=1)
    out.write('master %d\n' % os.getpid())

    # Forked before any thread starts: a fork of one thread.
    cmd_r, cmd_w = os.pipe()
    report_r, report_w = os.pipe()
    worker_pid = os.fork()
    if worker_pid == 0:
        os.close(cmd_w)
        os.close(report_r)
        try:
            worker(cmd_r, report_w, prefix, usr1)
        finally:
            os._exit(102)
    os.close(cmd_r)
    os.close(report_w)
    reports = os.fdopen(report_r)

    native_r, native_w = os.pipe()
    go_r, go_w = os.pipe()
    native_pid = os.fork()
    if native_pid == 0:
        try:
            os.set_inheritable(native_w, True)
            os.set_inheritable(go_r, True)
            os.execv(crash, [crash, '--threads', '4', '--report', str(native_w),
                             '--go', str(go_r), 'wait'])
        finally:
            os._exit(102)
    os.close(native_w)
    os.close(go_r)

    if reports.readline() != 'parked\n':
        sys.exit('the worker did not park')
    out.write('worker %d\n' % worker_pid)
    out.write('native %d\n' % native_pid)
    with os.fdopen(native_r) as native:
        for line in native:
            if line == 'ready\n':
                break
            out.write('native ' + line)
        else:
            sys.exit('the native child did not park')

    start_sleeper()
    line = park(inp, out, prefix)
    while line == 'ping\n':
        os.write(cmd_w, b'p')
        if reports.readline() != 'pong\n':
            sys.exit('the worker did not answer')
        out.write('pong\n')
        line = inp.readline()
    if line != 'quit\n':
        sys.exit('expected quit, read %r' % line)
    os.write(cmd_w, b'q')
    os.write(go_w, b'q')
    _, worker_status = os.waitpid(worker_pid, 0)
    _, native_status = os.waitpid(native_pid, 0)
    out.write('bye %d %d\n' % (worker_status, native_status))


if __name__ == '__main__':
    main()
