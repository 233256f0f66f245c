# -*- coding: utf-8 -*-
"""What the Python test targets share: the thread and pipe helpers.

Imported by py_target.py, py_prefork.py, py_tree.py and py_mp.py, from their
own directory (the first entry of sys.path).  Python 3.6 and later.
"""
import ctypes
import sys

libc = ctypes.CDLL(None, use_errno=True)


def gettid():
    """The calling thread's id (the gettid system call, x86-64)."""
    return libc.syscall(186)


def blocked(tid):
    """True when the thread sits in a system call (sleeping, waiting on a
    futex or on the GIL)."""
    try:
        with open('/proc/self/task/%d/stat' % tid) as f:
            state = f.read().rsplit(')', 1)[1].split()[0]
        with open('/proc/self/task/%d/syscall' % tid) as f:
            syscall = f.read().split()[0]
    except OSError:
        return False
    return state == 'S' and syscall != 'running'


def expect(inp, word):
    """The next line of inp is word, else the target exits with a reason."""
    line = inp.readline()
    if line != word + '\n':
        sys.exit('expected %r, read %r' % (word, line))
