# -*- coding: utf-8 -*-
"""Python test target: a crash as soon as it runs, two calls deep.

    python py_crash_now.py FAULT_FILE

Enables its own faulthandler, writing to FAULT_FILE (the oracle), then
dereferences NULL through ctypes from crash(), called by main().  Run behind
wrappers (a pyenv shim, a shell) that exec or fork the interpreter.
"""
import ctypes
import faulthandler
import sys

fault_file = open(sys.argv[1], 'w')
faulthandler.enable(file=fault_file, all_threads=True)


def crash():
    ctypes.string_at(0)


def main():
    crash()


main()
