"""Python crash capture: kernel time, bytes and latency of a SIGSEGV.

Target: tests/targets/py_target.py FAULT_FILE segv THREADS, run by CPython
3.11 twice over (pyenv's build, Debian's /usr/bin/python3.11; a missing one
is skipped and said so): THREADS workers and the main thread, parked at
known lines; "ready", then ctypes.string_at(0) on a line from its stdin.
The target enables its own faulthandler: it prints first, then re-raises
SIGSEGV with the default action, and that signal is the one fh-bpf
captures.  Per crash: a new target and a new `fh-bpf -p PID -o FILE`.

From the event (--stats-fd): capture_ns (here with the Python part: thread
states, frame chains, code objects and their line tables), per event and
per thread; record_bytes (every ring-buffer byte of the event);
trigger_to_written_ns (always cold: each crash is a new fh-bpf).  fh-bpf's
traceback is compared with the target's own (fh-bpf: lines aside), as a
check that the figure is for a complete capture.
"""

from __future__ import annotations

import filecmp

from ..procs import FhBpf, Setup, py_label, py_target
from ..results import Figure, not_measured, reproduce
from . import Option, ints

NAME = "py-crash"
TITLE = "Python crash capture"
OPTIONS = [Option("threads", ints, [10, 100], [10], "worker threads of the target (+ main)"),
           Option("crashes", int, 5, 2, "crashes (targets) an interpreter and thread count")]


def same_text(fh_out: str, own: str, out: str) -> bool:
    """fh-bpf's traceback, its "fh-bpf:" lines aside, equals the target's."""
    with open(fh_out, errors="replace") as f:
        kept = [l for l in f if not l.startswith("fh-bpf:")]
    with open(out, "w") as f:
        f.writelines(kept)
    return filecmp.cmp(out, own, shallow=False)


def one_crash(setup: Setup, py: str, n: int, tag: str) -> tuple[dict, bool, list[str]]:
    fault, tb = setup.temp(tag + ".faulthandler"), setup.raw(tag + ".txt")
    target = py_target(setup, py, "segv", n, fault, setup.raw(tag + ".target.stderr"))
    notes = []
    try:
        fh = FhBpf(setup, ["-p", str(target.pid), "--no-signal", "-o", tb], tag)
        target.send("crash")
        ev = fh.event()
        rc_target = target.end(sig=None)
        rc, _ = fh.finish()
    finally:
        target.close_input()
    if rc_target != -11:
        notes.append("the target exited with status %d (SIGSEGV expected)" % rc_target)
    if rc != 3:
        notes.append("fh-bpf exited with status %d (3 expected)" % rc)
    same = same_text(tb, fault, setup.temp(tag + ".cmp"))
    return ev, same, notes


def run(setup: Setup, opts: dict) -> list[Figure]:
    figures = []
    for n in opts["threads"]:
        repro = reproduce(NAME, setup, threads=n, crashes=opts["crashes"])
        if not setup.pythons():
            figures.append(not_measured(NAME, "Python crash", "no CPython 3.11 found", repro,
                                        threads=n))
        for py in setup.pythons():
            label = py_label(py)
            events, same, notes = [], 0, []
            for i in range(opts["crashes"]):
                ev, ok, why = one_crash(setup, py, n, "py-crash-%s-%d-%d" % (
                    label.replace(" ", "-"), n, i + 1))
                events.append(ev)
                same += ok
                notes += why
            notes.append("%d/%d tracebacks identical to the target's own faulthandler "
                         "output" % (same, len(events)))
            if any(e["threads"] != n + 1 for e in events):
                notes.append("threads captured: %s" % [e["threads"] for e in events])
            p = {"python": label, "threads": "%d+1" % n}
            figures += [
                Figure(NAME, "Python crash: in-kernel capture an event",
                       "capture_ns of the event (--stats-fd), a new target each", "us",
                       [e["capture_ns"] / 1e3 for e in events], params=p,
                       notes=sorted(set(notes)), reproduce=repro),
                Figure(NAME, "Python crash: in-kernel capture per thread",
                       "capture_ns / threads", "us",
                       [e["capture_ns"] / 1e3 / max(e["threads"], 1) for e in events],
                       params=p, reproduce=repro),
                Figure(NAME, "Python crash: record bytes an event",
                       "record_bytes of the event (ring-buffer bytes)", "B",
                       [e["record_bytes"] for e in events], params=p, reproduce=repro),
                Figure(NAME, "Python crash: signal -> written, cold",
                       "trigger_to_written_ns (a new fh-bpf each crash)", "ms",
                       [e["trigger_to_written_ns"] / 1e6 for e in events], params=p,
                       reproduce=repro),
            ]
    return figures
