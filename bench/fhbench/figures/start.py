"""Start -> armed.

STARTS starts of `fh-bpf -p PID` against one target of THREADS threads,
each detached with SIGTERM before the next: a native one (targets/crash
--threads N --auto wait) and a Python one (tests/targets/py_target.py
FAULT_FILE wait N, N workers and the main thread, pyenv's and Debian's
CPython 3.11; one missing is skipped), where fh-bpf loads its Python
programs.  From fh-bpf's "armed" object (--stats-fd): armed_ns (from the
start of the watch to armed: BPF load and attach, debug information
loaded meanwhile, the target's mappings read), bpf_ns (BPF load and
attach alone) and symbols_ns; and the wall time the bench sees, from
launching fh-bpf to "ready" on its --ready-fd (process start and option
parsing included).  The first start is cold (page cache, debug files); all
are samples.
"""

from __future__ import annotations

import signal

from ..procs import FhBpf, Setup, Target, crash_waiting, py_label, py_target
from ..results import Aim, Figure, not_measured, reproduce
from . import Option, ints

NAME = "start"
TITLE = "start -> armed"
OPTIONS = [Option("starts", int, 7, 3, "starts of fh-bpf"),
           Option("threads", ints, [10], [10], "thread counts of the target")]
AIM_NATIVE = Aim(40, "fh-bpf's aim: <= 40 ms from start to armed on a native target")
AIM_PYTHON = Aim(80, "fh-bpf's aim: <= 80 ms from start to armed on a Python target")


def run(setup: Setup, opts: dict) -> list[Figure]:
    figures = []
    for n in opts["threads"]:
        repro = reproduce(NAME, setup, starts=opts["starts"], threads=n)
        figures += starts(setup, crash_waiting(setup, n), {"target": "native", "threads": n},
                          AIM_NATIVE, "start-%d" % n, opts["starts"], repro)
        if not setup.pythons():
            figures.append(not_measured(NAME, "start -> armed", "no CPython 3.11 found", repro,
                                        threads=n))
        for py in setup.pythons():
            label = py_label(py)
            tag = "start-%s-%d" % (label.replace(" ", "-"), n)
            target = py_target(setup, py, "wait", n, setup.temp(tag + ".faulthandler"),
                               setup.raw(tag + ".target.stderr"))
            figures += starts(setup, target, {"python": label, "threads": "%d+1" % n},
                              AIM_PYTHON, tag, opts["starts"], repro)
    return figures


def starts(setup: Setup, target: Target, p: dict, aim: Aim, tag: str, count: int,
           repro: str) -> list[Figure]:
    """COUNT starts of fh-bpf -p on target, which is ended after."""
    armed, wall, notes = [], [], []
    try:
        for i in range(count):
            fh = FhBpf(setup, ["-p", str(target.pid), "--no-signal"], "%s-%d" % (tag, i + 1))
            armed.append(fh.armed)
            wall.append(fh.ready_ms)
            rc, _ = fh.finish(signal.SIGTERM)
            if rc != 0:
                notes.append("fh-bpf exited with status %d after SIGTERM (0 expected)" % rc)
    finally:
        target.end()
    first = "first start (cold) %.1f ms" % (armed[0]["armed_ns"] / 1e6) if armed else ""
    return [
        Figure(NAME, "start -> armed", "armed_ns of the armed object (--stats-fd)", "ms",
               [a["armed_ns"] / 1e6 for a in armed], params=p, aim=aim,
               notes=[first] + sorted(set(notes)), reproduce=repro),
        Figure(NAME, "launch -> ready fd, wall",
               "the bench's clock from launching fh-bpf to \"ready\" on --ready-fd", "ms",
               wall, params=p, aim=aim, reproduce=repro),
        Figure(NAME, "BPF load and attach", "bpf_ns of the armed object", "ms",
               [a["bpf_ns"] / 1e6 for a in armed], params=p, reproduce=repro),
        Figure(NAME, "debug information loaded (beside BPF loading)",
               "symbols_ns of the armed object", "ms",
               [a["symbols_ns"] / 1e6 for a in armed], params=p, reproduce=repro),
    ]
