# -*- coding: utf-8 -*-
"""Python test target: the main thread runs code in a subinterpreter.

    python py_subinterp.py FAULT_FILE MODE [THREADS]

The main interpreter parks a worker thread and loads a non-standard
extension module; then its main thread runs a plugin in a subinterpreter
(_xxsubinterpreters, 3.8-3.12; _interpreters, 3.13), which parks a thread
of its own and prints "ready", then reads a line.  faulthandler dumps the
threads of the interpreter of the current thread state: from 3.12 that is
the subinterpreter's for its code, before 3.12 the main one's (its thread
state stays the thread's TSS), but for dump_traceback(), which takes the
current thread state.  The oracle is always the target's own faulthandler,
writing to FAULT_FILE:

segv:  the plugin writes faulthandler.dump_traceback(all_threads=True) and
       dereferences NULL, on one line, faulthandler not enabled: its fatal
       handler would have written that dump under the fatal header (the
       process dies of SIGSEGV's default action);
dump:  the plugin writes the same, prints "dumped" and reads a line, on
       one line: fh-bpf --dump must print the same;
usr1:  the main interpreter registers faulthandler for SIGUSR1; the plugin
       acknowledges each line it reads with "ack" until "quit".
"""
import faulthandler
import importlib.util
import os
import signal
import sys
import threading

fault_path, mode = sys.argv[1], sys.argv[2]
fault_file = open(fault_path, 'w')

# A non-standard extension module, for the "Extension modules" line (the
# main interpreter's: faulthandler was enabled there).
_origin = importlib.util.find_spec('_json').origin
if _origin and _origin.endswith('.so'):
    _spec = importlib.util.spec_from_file_location('fhfake_ext._json', _origin)
    _mod = importlib.util.module_from_spec(_spec)
    sys.modules[_spec.name] = _mod
    _spec.loader.exec_module(_mod)

forever = threading.Event()


def main_worker():
    forever.wait()


threading.Thread(target=main_worker, daemon=True).start()

# What runs in the subinterpreter (its file is "<string>").
PLUGIN = r'''
import ctypes, faulthandler, os, sys, threading, time
libc = ctypes.CDLL(None)
mode, fault_path = %r, %r
tids = []

def parked():
    tids.append(libc.syscall(186))
    threading.Event().wait()

def blocked(tid):
    try:
        with open('/proc/self/task/%%d/stat' %% tid) as f:
            state = f.read().rsplit(')', 1)[1].split()[0]
        with open('/proc/self/task/%%d/syscall' %% tid) as f:
            return state == 'S' and f.read().split()[0] != 'running'
    except OSError:
        return False

def plugin_step():
    f = open(fault_path, 'a')
    if mode == 'segv':
        faulthandler.dump_traceback(f, all_threads=True); f.flush(); ctypes.memset(0, 0, 1)
    elif mode == 'dump':
        faulthandler.dump_traceback(f, all_threads=True); f.flush(); print('dumped', flush=True); sys.stdin.readline()
    elif mode == 'usr1':
        print('registered', flush=True)
        for line in sys.stdin:
            if line == 'quit\n':
                break
            print('ack', flush=True)

threading.Thread(target=parked, daemon=True).start()
for _ in range(20000):
    if tids and blocked(tids[0]):
        break
    time.sleep(0.001)
print('ready', flush=True)
sys.stdin.readline()
plugin_step()
os._exit(0)
''' % (mode, fault_path)


def create():
    try:
        import _interpreters
        return _interpreters.create('legacy'), _interpreters.run_string
    except ImportError:
        import _xxsubinterpreters
    try:
        return _xxsubinterpreters.create(isolated=False), _xxsubinterpreters.run_string
    except TypeError:  # before 3.12: every subinterpreter shares the GIL
        return _xxsubinterpreters.create(), _xxsubinterpreters.run_string


def run_plugin(interp, run_string):
    run_string(interp, PLUGIN)


if mode == 'usr1':
    faulthandler.register(signal.SIGUSR1, file=fault_file, all_threads=True)
interp, run_string = create()
run_plugin(interp, run_string)
