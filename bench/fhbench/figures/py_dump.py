"""Python --dump: reading a live interpreter's threads.

Target: tests/targets/py_target.py FAULT_FILE dump THREADS (pyenv's and
Debian's CPython 3.11): after "ready" and a line on its stdin, it writes its
own faulthandler.dump_traceback to FAULT_FILE, prints "dumped" and waits
on that same line.  Then DUMPS runs of `fh-bpf -p PID --dump -o FILE` on
that live target (never stopped): from the event (--stats-fd), capture_ns
(the threads read from the target's memory with process_vm_readv) and
trigger_to_written_ns (read, render, write); and the wall time of the whole
command, measured by the bench.  Each dump is compared with the target's
own.  The whole command's wall time is aimed at for 10 and 100 threads.
"""

from __future__ import annotations

import os

from ..procs import Setup, oneshot_dump, py_label, py_target
from ..results import Aim, Figure, not_measured, reproduce
from . import Option, ints
from .py_crash import same_text

NAME = "py-dump"
TITLE = "Python --dump"
OPTIONS = [Option("threads", ints, [10, 100], [10], "worker threads of the target (+ main)"),
           Option("dumps", int, 10, 3, "fh-bpf --dump runs on one target")]
AIMS = {10: Aim(2, "fh-bpf's aim: <= 2 ms for a Python --dump of 10 threads (and main)"),
        100: Aim(5, "fh-bpf's aim: <= 5 ms for a Python --dump of 100 threads (and main)")}


def dump_target(setup: Setup, py: str, n: int, tag: str):
    """A py_target.py that has written its own dump and waits: (target,
    the path of its dump)."""
    fault = setup.temp(tag + ".faulthandler")
    target = py_target(setup, py, "dump", n, fault, setup.raw(tag + ".target.stderr"))
    target.send("dump")
    while target.line() != "dumped":
        pass
    return target, fault


def run(setup: Setup, opts: dict) -> list[Figure]:
    figures = []
    for n in opts["threads"]:
        repro = reproduce(NAME, setup, threads=n, dumps=opts["dumps"])
        if not setup.pythons():
            figures.append(not_measured(NAME, "Python --dump", "no CPython 3.11 found", repro,
                                        threads=n))
        for py in setup.pythons():
            label = py_label(py)
            tag = "py-dump-%s-%d" % (label.replace(" ", "-"), n)
            target, own = dump_target(setup, py, n, tag)
            walls, events, same = [], [], 0
            out = setup.raw(tag + ".txt")
            try:
                for _ in range(opts["dumps"]):
                    if os.path.exists(out):
                        os.unlink(out)
                    wall, ev = oneshot_dump(setup, target.pid, 256, out)
                    walls.append(wall)
                    if ev:
                        events.append(ev)
                    same += same_text(out, own, setup.temp(tag + ".cmp"))
                target.send("exit")
                rc = target.end(sig=None)
            finally:
                target.close_input()
            notes = ["%d/%d dumps identical to the target's own faulthandler.dump_traceback"
                     % (same, len(walls))]
            if rc != 0:
                notes.append("the target exited with status %d (0 expected)" % rc)
            p = {"python": label, "threads": "%d+1" % n}
            figures += [
                Figure(NAME, "Python --dump: threads read from memory",
                       "capture_ns of the event (--stats-fd)", "ms",
                       [e["capture_ns"] / 1e6 for e in events], params=p, notes=notes,
                       raw=[setup.rel(out)], reproduce=repro),
                Figure(NAME, "Python --dump: read -> written",
                       "trigger_to_written_ns of the event", "ms",
                       [e["trigger_to_written_ns"] / 1e6 for e in events], params=p,
                       reproduce=repro),
                Figure(NAME, "Python --dump: whole command, wall (no stop)",
                       "the bench's clock around `fh-bpf -p PID --dump`", "ms", walls,
                       params=p, aim=AIMS.get(n), reproduce=repro),
            ]
    return figures
