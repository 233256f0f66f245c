"""Live dumps of running processes, 1 to 1000 threads.

Native: targets/crash --threads N-1 --spinners 1 --auto wait (N-1 threads
blocked, one spinning in a C loop; N=1: the main thread alone).  A watcher
`fh-bpf -p PID --no-signal --max-threads M -o FILE` is sent SIGUSR1 DUMPS
times, each once the previous dump's event is on --stats-fd.  From each
event: iterate_ns (the task iterator over every thread) + sample_ns (the
wait for the timer samples of the threads running on a CPU) = the
capture; trigger_to_written_ns (SIGUSR1 received -> written).  The first
dump is cold (debug information), the figures are the later ones.  Then
`fh-bpf -p PID --dump` (the whole command) against eu-stack -p and gdb
`thread apply all bt` on the same target, interleaved.

Python: bench/count_loop.py 0 N under pyenv's CPython 3.11 (N-1 threads in
time.sleep, the main one in readline), the same SIGUSR1 dumps (capture_ns:
the threads read from memory; trigger_to_written_ns), and the whole
`--dump` command.
"""

from __future__ import annotations

import os
import signal

from ..procs import PYTHONS, FhBpf, Setup, Target, crash_waiting, oneshot_dump, py_label
from ..results import Figure, reproduce
from . import Option, ints
from .ptrace import PEERS, versus

NAME = "live"
TITLE = "live dumps"
OPTIONS = [Option("threads", ints, [1, 10, 100, 1000], [1, 10, 100], "threads of the target"),
           Option("dumps", int, 11, 4, "SIGUSR1 dumps a target (the first is cold)"),
           Option("pairs", int, 3, 2, "fh-bpf --dump / peer pairs, interleaved")]


def sigusr1_dumps(setup: Setup, pid: int, n: int, dumps: int, tag: str) -> tuple[list, list]:
    """DUMPS dumps by a watcher sent SIGUSR1: (events, notes)."""
    fh = FhBpf(setup, ["-p", str(pid), "--no-signal", "--max-threads", str(max(256, n)),
                       "-o", setup.raw(tag + ".txt")], tag, cpu=setup.cpu_watcher)
    events = []
    for _ in range(dumps):
        os.kill(fh.pid, signal.SIGUSR1)
        events.append(fh.event())
    rc, _ = fh.finish(signal.SIGTERM)
    notes = [] if rc == 0 else ["fh-bpf exited with status %d after SIGTERM" % rc]
    counts = sorted({e["threads"] for e in events})
    if counts != [n]:
        notes.append("threads captured: %s of %d" % (counts, n))
    return events, notes


def native(setup: Setup, n: int, opts: dict, repro: str) -> list[Figure]:
    target = crash_waiting(setup, max(1, n - 1), spinners=1 if n > 1 else 0)
    tag = "live-%d" % n
    p = {"threads": n}
    try:
        events, notes = sigusr1_dumps(setup, target.pid, n, opts["dumps"], tag)
        warm = events[1:] or events
        figures = [
            Figure(NAME, "live dump, native: capture (iterator + samples)",
                   "iterate_ns + sample_ns of each warm SIGUSR1 dump (--stats-fd)", "ms",
                   [(e["iterate_ns"] + e["sample_ns"]) / 1e6 for e in warm], params=p,
                   notes=notes + ["running threads sampled a dump: %s" % sorted(
                       {e.get("samples_wanted", 0) for e in events})], reproduce=repro),
            Figure(NAME, "live dump, native: SIGUSR1 -> written, warm",
                   "trigger_to_written_ns of each warm dump", "ms",
                   [e["trigger_to_written_ns"] / 1e6 for e in warm], params=p,
                   notes=["cold (first dump): %.1f ms" % (
                       events[0]["trigger_to_written_ns"] / 1e6)], reproduce=repro),
        ]
        for label, argv, rx in PEERS:
            if label == "eu-stack -s -p":
                continue
            figures.append(versus(setup, target.pid, n, label, argv, rx, opts["pairs"],
                                  tag, repro, figure=NAME))
    finally:
        target.end()
    return figures


def python(setup: Setup, n: int, opts: dict, repro: str) -> list[Figure]:
    py = PYTHONS[0]
    if not os.access(py, os.X_OK):
        return []
    label = py_label(py)
    target = Target([py, setup.count_py, "0", str(n)], "count_loop.py", setup)
    tag = "live-%d-python" % n
    p = {"threads": n, "python": label}
    try:
        events, notes = sigusr1_dumps(setup, target.pid, n, opts["dumps"], tag)
        walls = []
        for _ in range(opts["pairs"]):
            wall, _ = oneshot_dump(setup, target.pid, max(256, n), setup.temp(tag + ".dump"),
                                   cpu=setup.cpu_watcher)
            walls.append(wall)
    finally:
        target.end()
    warm = events[1:] or events
    notes = [x for x in notes if not x.startswith("threads captured")]
    notes.append("Python threads a dump: %s (faulthandler prints at most 100)" % sorted(
        {e["python_threads"] for e in events}))
    return [
        Figure(NAME, "live dump, Python: threads read from memory",
               "capture_ns of each warm SIGUSR1 dump (--stats-fd)", "ms",
               [e["capture_ns"] / 1e6 for e in warm], params=p, notes=notes,
               reproduce=repro),
        Figure(NAME, "live dump, Python: SIGUSR1 -> written, warm",
               "trigger_to_written_ns of each warm dump", "ms",
               [e["trigger_to_written_ns"] / 1e6 for e in warm], params=p, reproduce=repro),
        Figure(NAME, "live dump, Python: fh-bpf --dump, whole command",
               "the bench's clock around `fh-bpf -p PID --dump`", "ms", walls, params=p,
               reproduce=repro),
    ]


def run(setup: Setup, opts: dict) -> list[Figure]:
    figures = []
    for n in opts["threads"]:
        repro = reproduce(NAME, setup, threads=n, dumps=opts["dumps"], pairs=opts["pairs"])
        figures += native(setup, n, opts, repro)
        figures += python(setup, n, opts, repro)
    return figures
