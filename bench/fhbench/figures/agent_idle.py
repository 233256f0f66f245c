"""The host agent's cost on a host where nothing crashes.

`fh-bpf -a -o FILE` armed (every process of the host in scope), then
WINDOWS windows of SECONDS: in each, the agent's CPU time (every thread,
the scheduler's own account in ns, /proc/PID/task/*/schedstat) and its BPF
programs' run time (the kernel's BPF statistics, per program from
/proc/PID/fdinfo), each as a percentage of one CPU over the window.  The
host is shared: what other tenants do (signals, forks, execs) is what the
agent's programs see.  Also the agent's start -> armed (armed_ns on
--stats-fd: BPF load and attach, the host's processes read from /proc).
"""

from __future__ import annotations

import signal
import time

from ..agent import Meter, start_agent
from ..procs import BpfStats, Setup
from ..results import Figure, reproduce
from . import Option

NAME = "agent-idle"
TITLE = "host agent, idle"
OPTIONS = [Option("windows", int, 5, 3, "measuring windows"),
           Option("seconds", float, 2.0, 1.0, "seconds a window")]


def run(setup: Setup, opts: dict) -> list[Figure]:
    repro = reproduce(NAME, setup, windows=opts["windows"], seconds=opts["seconds"])
    agent = start_agent(setup, ["-o", setup.temp("idle.incidents")], "agent-idle")
    cpu, bpf, runs = [], [], []
    try:
        armed = agent.armed
        with BpfStats():
            meter = Meter(agent)
            for _ in range(opts["windows"]):
                t0 = time.monotonic()
                time.sleep(opts["seconds"])  # the window measured, not a wait for anything
                c, r, b = meter.read()
                wall = (time.monotonic() - t0) * 1e9
                cpu.append(c * 100 / wall)
                bpf.append(b * 100 / wall)
                runs.append(r)
    finally:
        rc, end = agent.finish(signal.SIGTERM)
    notes = ["BPF program runs a window: %s" % runs,
             "processes known at start: %s" % armed.get("processes")]
    if rc != 0:
        notes.append("fh-bpf -a exited with status %d after SIGTERM" % rc)
    return [
        Figure(NAME, "agent CPU, idle host", "CPU time of fh-bpf -a over each window, "
               "% of one CPU", "%", cpu, notes=notes, reproduce=repro),
        Figure(NAME, "agent's BPF programs, idle host", "run_time_ns of its programs over "
               "each window, % of one CPU", "%", bpf, reproduce=repro),
        Figure(NAME, "agent start -> armed", "armed_ns of the armed object (--stats-fd)",
               "ms", [armed["armed_ns"] / 1e6], reproduce=repro),
        Figure(NAME, "agent peak RSS", "max_rss_kb of the end object", "MB",
               [end["max_rss_kb"] * 1024 / 1e6] if end else [], reproduce=repro),
    ]
