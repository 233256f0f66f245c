# -*- coding: utf-8 -*-
"""Python test target: threads parked at known lines, then one fatal signal.

    python py_target.py FAULT_FILE MODE [THREADS]

MODE: segv (ctypes.string_at(0)), segvthread (the same in a thread of its
own, once the main thread waits for it in join()), abort (os.abort()), wait (until another
process sends a signal), gc (SIGSEGV in a __del__ run by the garbage
collector: 3.10+ print "  Garbage-collecting"), usr1 (faulthandler.register
for SIGUSR1, then acknowledge each line read with "ack" until "quit"), dump (the main thread writes every thread's traceback
to FAULT_FILE with faulthandler.dump_traceback, prints "dumped" and waits
for a line, on that same line: fh-bpf --dump must then print the same),
timeout (faulthandler.dump_traceback_later(0.5, repeat=True), then 2.2
seconds asleep on one line before exiting 0: four dumps), dumpsegv (the main
thread writes every thread's traceback to FAULT_FILE, disables faulthandler
and dereferences NULL, on one line: fh-bpf must print that dump under the
fatal error's header).  The target
enables its own faulthandler, writing to FAULT_FILE: that output is the
oracle fh-bpf must match byte for byte.

Threads, each parked in a blocking call at a known line: a sleeper, an
Event waiter, a thread spinning in a one-line pure-Python loop, a generator,
an asyncio task, a sort whose key function (called from C) blocks, a
150-deep recursion, functions with non-ASCII and 500+-character names, code
with a non-ASCII filename; THREADS > 9 adds plain sleepers.  Once every
worker but the spinner is blocked in the kernel (the spinner's line is the
same wherever it is), the target prints "ready" and reads a line from stdin
before the fatal act.
"""
import asyncio
import ctypes
import faulthandler
import os
import sys
import threading
import time

fault_file = open(sys.argv[1], 'w')
faulthandler.enable(file=fault_file, all_threads=True)
mode = sys.argv[2]
extra = int(sys.argv[3]) if len(sys.argv) > 3 else 9

# A non-standard extension module, for 3.10+'s "Extension modules" line: the
# standard _json, loaded again under a name of its own.
import importlib.util
from fhtarget import blocked
_origin = importlib.util.find_spec('_json').origin
if _origin and _origin.endswith('.so'):
    _spec = importlib.util.spec_from_file_location('fhfake_ext._json', _origin)
    _mod = importlib.util.module_from_spec(_spec)
    sys.modules[_spec.name] = _mod
    _spec.loader.exec_module(_mod)

libc = ctypes.CDLL(None, use_errno=True)
tids = []
busy = []  # threads that never block: the spinner
tids_lock = threading.Lock()
forever = threading.Event()


def register(spinning=False):
    with tids_lock:
        (busy if spinning else tids).append(libc.syscall(186))  # gettid


def sleeper():
    register()
    time.sleep(3600)


def waiter():
    register()
    forever.wait()


def spinner():
    register(spinning=True)
    x = 0
    while True: x += 1


def generator():
    register()
    time.sleep(3600)
    yield 1


def run_generator():
    for _ in generator():
        pass


async def blocked_task():
    register()
    time.sleep(3600)


def run_asyncio():
    loop = asyncio.new_event_loop()
    loop.run_until_complete(blocked_task())


def key(value):
    register()
    forever.wait()
    return value


def sort_with_key():
    sorted([3, 1, 2], key=key)


def recurse(n):
    if n:
        return recurse(n - 1)
    register()
    time.sleep(3600)


def fünf_λ_ж():
    register()
    time.sleep(3600)


LONG = 'long_' + 'x' * 510
exec('def %s():\n    register()\n    time.sleep(3600)\n' % LONG)
long_name = globals()[LONG]

odd_file = compile('def odd():\n    register()\n    time.sleep(3600)\n',
                   '/tmp/\u00fcn\u00efc\u00f6d\u00e9_\u0444\u0430\u0439\u043b_\U0001f40d.py', 'exec')
exec(odd_file)

workers = [sleeper, waiter, spinner, run_generator, run_asyncio, sort_with_key,
           lambda: recurse(150), fünf_λ_ж, long_name, odd]
workers += [sleeper] * max(0, extra - len(workers))
for target in workers:
    threading.Thread(target=target, daemon=True).start()


for _ in range(20000):
    with tids_lock:
        ready = (len(tids) + len(busy) == len(workers) and
                 all(blocked(t) for t in tids))
    if ready:
        break
    time.sleep(0.001)
else:
    sys.exit('workers did not park')

print('ready', flush=True)
sys.stdin.readline()
if mode == 'segv':
    ctypes.string_at(0)
elif mode == 'segvthread':
    main_tid, main_ident = libc.syscall(186), threading.get_ident()

    def crash_once_main_joins():
        # The main thread's frames stay put from here to its death.
        while not (sys._current_frames()[main_ident].f_code.co_name in
                   ('join', '_wait_for_tstate_lock') and blocked(main_tid)):
            time.sleep(0.001)
        ctypes.string_at(0)

    crasher = threading.Thread(target=crash_once_main_joins)
    crasher.start(); crasher.join()
elif mode == 'abort':
    os.abort()
elif mode == 'wait':
    sys.stdin.readline()
elif mode == 'usr1':
    # faulthandler.register(): a dump at each SIGUSR1, on the main thread
    # (blocked in readline below); each line read is acknowledged.
    import signal
    faulthandler.register(signal.SIGUSR1, file=fault_file, all_threads=True)
    print('registered', flush=True)
    for line in sys.stdin:
        if line == 'quit\n':
            break
        print('ack', flush=True)
elif mode == 'gc':
    import gc

    class Cycle:
        def __del__(self):
            ctypes.string_at(0)

    a, b = Cycle(), Cycle()
    a.other, b.other = b, a
    del a, b
    gc.collect()
elif mode == 'timeout':
    faulthandler.dump_traceback_later(0.5, repeat=True, file=fault_file)
    time.sleep(2.2)
elif mode == 'dump':
    fault_file.flush()
    # One line: the main thread's frame is here for both dumps.
    faulthandler.dump_traceback(fault_file, all_threads=True); print('dumped', flush=True); sys.stdin.readline()
elif mode == 'dumpsegv':
    # What faulthandler's fatal handler would write here is this dump under
    # its header: then a fault its handler does not see (disabled), so the
    # process dies of SIGSEGV's default action, on this same line.
    faulthandler.disable(); faulthandler.dump_traceback(fault_file, all_threads=True); fault_file.flush(); ctypes.memset(0, 0, 1)
