"""Start -> armed.

STARTS starts of `fh-bpf -p PID` against one targets/crash --threads 10
--auto wait, each detached with SIGTERM before the next.  From fh-bpf's
"armed" object (--stats-fd): armed_ns (from the start of the watch to
armed: BPF load and attach, debug information loaded meanwhile, the
target's mappings read), bpf_ns (BPF load and attach alone) and
symbols_ns; and the wall time the bench sees, from launching fh-bpf to
"ready" on its --ready-fd (process start and option parsing included).
The first start is cold (page cache, debug files); all are samples.
"""

from __future__ import annotations

import signal

from ..procs import FhBpf, Setup, crash_waiting
from ..results import Aim, Figure, reproduce
from . import Option, ints

NAME = "start"
TITLE = "start -> armed"
OPTIONS = [Option("starts", int, 7, 3, "starts of fh-bpf"),
           Option("threads", ints, [10], [10], "thread counts of the target")]
AIM = Aim(150, "fh-bpf's aim since its first benchmarks: <= 150 ms to armed")


def run(setup: Setup, opts: dict) -> list[Figure]:
    return [f for n in opts["threads"] for f in starts(setup, n, opts["starts"])]


def starts(setup: Setup, n: int, count: int) -> list[Figure]:
    target = crash_waiting(setup, n)
    armed, wall, notes = [], [], []
    try:
        for i in range(count):
            fh = FhBpf(setup, ["-p", str(target.pid), "--no-signal"], "start-%d-%d" % (n, i + 1))
            armed.append(fh.armed)
            wall.append(fh.ready_ms)
            rc, _ = fh.finish(signal.SIGTERM)
            if rc != 0:
                notes.append("fh-bpf exited with status %d after SIGTERM (0 expected)" % rc)
    finally:
        target.end()
    repro = reproduce(NAME, setup, starts=count, threads=n)
    p = {"threads": n}
    first = "first start (cold) %.1f ms" % (armed[0]["armed_ns"] / 1e6) if armed else ""
    return [
        Figure(NAME, "start -> armed", "armed_ns of the armed object (--stats-fd)", "ms",
               [a["armed_ns"] / 1e6 for a in armed], params=p, aim=AIM,
               notes=[first] + sorted(set(notes)), reproduce=repro),
        Figure(NAME, "launch -> ready fd, wall",
               "the bench's clock from launching fh-bpf to \"ready\" on --ready-fd", "ms",
               wall, params=p, aim=AIM, reproduce=repro),
        Figure(NAME, "BPF load and attach", "bpf_ns of the armed object", "ms",
               [a["bpf_ns"] / 1e6 for a in armed], params=p, reproduce=repro),
        Figure(NAME, "debug information loaded (beside BPF loading)",
               "symbols_ns of the armed object", "ms",
               [a["symbols_ns"] / 1e6 for a in armed], params=p, reproduce=repro),
    ]
