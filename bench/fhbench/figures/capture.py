"""In-kernel capture time per thread (and the stack bytes of an event).

Target: bench/fault_loop THREADS FAULTS GO_FD: THREADS-1 workers parked in
nanosleep while the main thread takes a SIGSEGV, and recovers from it, once
per byte written to GO_FD.  Watcher: fh-bpf -p PID --handled (the target
catches its SIGSEGVs) -o FILE, armed through --ready-fd.  One byte, then
the event's line on --stats-fd, then the next byte: events never overlap.

capture_ns is the difference of two bpf_ktime_get_ns() stamps taken by the
BPF program itself (event record reserved -> end record submitted): walking
the thread list, reading each thread's registers and copying its stack into
the ring buffer.  The figure is capture_ns / threads over every event of
SESSIONS sessions (a new target and a new fh-bpf each) of FAULTS faults.
The same sessions give crash -> printed (`printed`) and peak RSS (`rss`).
"""

from __future__ import annotations

from ..procs import FhBpf, Guard, Setup, Target
from ..results import Aim, Figure, reproduce
from . import Option, ints

NAME = "capture"
TITLE = "in-kernel capture per thread"
OPTIONS = [
    Option("threads", ints, [1, 10, 100, 200], [1, 10, 100], "thread counts of the target"),
    Option("sessions", int, 3, 2, "sessions a thread count (a new target and fh-bpf each)"),
    Option("faults", int, 11, 6, "faults a session (the first is cold)"),
]
AIM_US = Aim(5, "fh-bpf's aim since its first benchmarks: <= 5 us a thread in the kernel")


def fault_session(setup: Setup, threads: int, faults: int, tag: str) -> dict:
    """One target, one fh-bpf, FAULTS captures: the events, fh-bpf's "end"
    object and exit status."""
    # FAULTS+1 allowed: the target stays alive after the last capture until
    # its go pipe closes (then it exits with status 3).
    target = Target([setup.bin("fault_loop"), str(threads), str(faults + 1), "GO_FD"],
                    "fault_loop", setup, go_fd=True)
    try:
        fh = FhBpf(setup, ["-p", str(target.pid), "--handled", "-o", setup.raw(tag + ".txt")],
                   tag)
        events = []
        for _ in range(faults):
            target.go()
            events.append(fh.event())
        target.close_input()
        rc_target = target.end(sig=None)
        rc, end = fh.finish()
    finally:
        target.close_input()
    notes = []
    if rc_target != 3:
        notes.append("fault_loop exited with status %d (3 expected)" % rc_target)
    if rc != 3:
        notes.append("fh-bpf exited with status %d (3: fatal signals printed)" % rc)
    short = [e["threads"] for e in events if e["threads"] != threads]
    if short:
        notes.append("%d events did not capture %d threads: %s" % (len(short), threads, short))
    return {"events": events, "end": end, "notes": notes, "raw": [setup.rel(fh.err)]}


def fault_sessions(setup: Setup, threads: int, sessions: int, faults: int) -> list[dict]:
    """SESSIONS fault sessions of THREADS threads, measured once a run (the
    capture, printed and rss figures share them)."""
    key = ("fault_sessions", threads, sessions, faults)
    if key not in setup.cache:
        if faults < 1 or sessions < 1:
            raise Guard("--faults and --sessions must be at least 1")
        setup.cache[key] = [fault_session(setup, threads, faults,
                                          "capture-%d-s%d" % (threads, s + 1))
                            for s in range(sessions)]
    return setup.cache[key]


def session_notes(runs: list[dict]) -> list[str]:
    return sorted({n for r in runs for n in r["notes"]})


def run(setup: Setup, opts: dict) -> list[Figure]:
    figures = []
    for n in opts["threads"]:
        runs = fault_sessions(setup, n, opts["sessions"], opts["faults"])
        events = [e for r in runs for e in r["events"]]
        repro = reproduce(NAME, setup, threads=n, sessions=opts["sessions"],
                          faults=opts["faults"])
        raw = [p for r in runs for p in r["raw"]]
        figures.append(Figure(
            NAME, "in-kernel capture per thread",
            "capture_ns / threads of each fatal-signal event (--stats-fd), every event of "
            "%d sessions" % opts["sessions"], "us",
            [e["capture_ns"] / 1e3 / max(e["threads"], 1) for e in events],
            params={"threads": n}, aim=AIM_US, notes=session_notes(runs), raw=raw,
            reproduce=repro))
        figures.append(Figure(
            NAME, "stack bytes an event", "stack_bytes of each event (--stats-fd)", "B",
            [e["stack_bytes"] for e in events], params={"threads": n}, reproduce=repro))
    return figures
