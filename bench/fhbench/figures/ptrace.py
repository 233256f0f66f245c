"""The same job done by ptrace-based tools: eu-stack and gdb.

On one targets/crash --threads N --auto wait: `fh-bpf -p PID --dump` (the
whole command: start, BPF load, capture, symbols, print, exit; the target
is never stopped) against `eu-stack -p PID`, `eu-stack -s -p PID` (with the
source lines fh-bpf prints) and `gdb -p PID -batch -ex "thread apply all
bt"` (both stop every thread of the target while they run), interleaved:
fh-bpf, the peer, fh-bpf, the peer... so that host noise hits both.

Then fh-bpf's own answer to a crash: armed on a fresh target of N threads,
`kill -SEGV PID`: trigger_to_written_ns (--stats-fd), always cold (the
first event of a watch), one target each.
"""

from __future__ import annotations

import os
import re
import shutil
import signal

from ..procs import FhBpf, Setup, crash_waiting, oneshot_dump, timed
from ..results import Figure, Peer, not_measured, reproduce
from . import Option, ints

NAME = "ptrace"
TITLE = "against eu-stack and gdb"
OPTIONS = [Option("threads", ints, [10, 200], [10, 100], "thread counts of the target"),
           Option("pairs", int, 5, 2, "fh-bpf / peer pairs, interleaved"),
           Option("crashes", int, 3, 1, "targets killed with SIGSEGV under fh-bpf")]

PEERS = [  # name, argv after the tool, how a thread shows in its output
    ("eu-stack -p", ["eu-stack", "-p"], r"^TID "),
    ("eu-stack -s -p", ["eu-stack", "-s", "-p"], r"^TID "),
    ("gdb thread apply all bt", ["gdb", "-batch", "-ex", "thread apply all bt", "-p"],
     r"^Thread \d+ "),
]


def count_lines(path: str, pattern: str) -> int:
    rx = re.compile(pattern)
    with open(path, errors="replace") as f:
        return sum(1 for line in f if rx.search(line))


def versus(setup: Setup, pid: int, n: int, label: str, argv: list[str], thread_re: str,
           pairs: int, tag: str, repro: str, figure: str = NAME) -> Figure:
    """fh-bpf --dump against one peer on the live target pid, interleaved."""
    if not shutil.which(argv[0]):
        return not_measured(figure, "all threads' stacks: fh-bpf --dump vs " + label,
                            argv[0] + " is not installed", repro, threads=n)
    maxt = max(256, n)
    fh, peer, threads_seen, fh_seen = [], [], set(), set()
    out = setup.raw("%s.%s.txt" % (tag, label.split()[0]))
    dump = setup.raw(tag + ".fh-bpf-dump.txt")
    for _ in range(pairs):
        if os.path.exists(dump):
            os.unlink(dump)
        wall, ev = oneshot_dump(setup, pid, maxt, dump, cpu=setup.cpu_watcher)
        fh.append(wall)
        if ev:
            fh_seen.add(max(ev["threads"], ev["python_threads"]))
        peer.append(timed(argv + [str(pid)], out, cpu=setup.cpu_watcher))
        threads_seen.add(count_lines(out, thread_re))
    return Figure(
        figure, "all threads' stacks now: fh-bpf --dump vs " + label,
        "wall time of the whole command, target not stopped", "ms", fh,
        params={"threads": n},
        peer=Peer(label, " ".join(argv) + " PID", peer,
                  ["stops every thread of the target while it runs",
                   "threads in its output: %s of %d" % (sorted(threads_seen), n)]),
        notes=["threads in fh-bpf's dumps: %s of %d" % (sorted(fh_seen), n)],
        raw=[setup.rel(out), setup.rel(dump)], reproduce=repro)


def kill_segv(setup: Setup, n: int, crashes: int, repro: str) -> list[Figure]:
    """fh-bpf armed on a fresh target, then kill -SEGV: signal -> written."""
    events, notes = [], []
    for i in range(crashes):
        target = crash_waiting(setup, n)
        tag = "ptrace-%d-segv-%d" % (n, i + 1)
        try:
            fh = FhBpf(setup, ["-p", str(target.pid), "--no-signal", "--max-threads",
                               str(max(256, n)), "-o", setup.raw(tag + ".txt")], tag)
            os.kill(target.pid, signal.SIGSEGV)
            events.append(fh.event())
            rc, _ = fh.finish()
            if rc != 3:
                notes.append("fh-bpf exited with status %d (3 expected)" % rc)
        finally:
            target.end(sig=None)
    if any(e["threads"] != n for e in events):
        notes.append("threads captured: %s of %d" % ([e["threads"] for e in events], n))
    if any(e["stack_bytes"] == 0 for e in events):
        notes.append("an event copied no stack bytes: not comparable")
    p = {"threads": n}
    return [
        Figure(NAME, "kill -SEGV -> written, cold (no stop)",
               "trigger_to_written_ns of the event (--stats-fd), a new target and fh-bpf "
               "each", "ms", [e["trigger_to_written_ns"] / 1e6 for e in events], params=p,
               notes=notes, reproduce=repro),
        Figure(NAME, "kill -SEGV: in-kernel capture per thread",
               "capture_ns / threads", "us",
               [e["capture_ns"] / 1e3 / max(e["threads"], 1) for e in events], params=p,
               reproduce=repro),
    ]


def run(setup: Setup, opts: dict) -> list[Figure]:
    figures = []
    for n in opts["threads"]:
        repro = reproduce(NAME, setup, threads=n, pairs=opts["pairs"],
                          crashes=opts["crashes"])
        target = crash_waiting(setup, n)
        try:
            for label, argv, rx in PEERS:
                figures.append(versus(setup, target.pid, n, label, argv, rx, opts["pairs"],
                                      "ptrace-%d" % n, repro))
        finally:
            target.end()
        figures += kill_segv(setup, n, opts["crashes"], repro)
    return figures
