"""Host agent: crash -> incident written, one crash at a time.

`fh-bpf -a --comm crash --rate-limit 0 -o FILE` armed, then CRASHES runs of
`crash --auto --threads 4 segv`, one after the other: each a process never
seen before that crashes about 2 ms after its exec.  Per crash, the event
of its pid on --stats-fd (other tenants' crashers of that name are left
out): trigger_to_written_ns, from the BPF stamp at the signal to the
incident written.  The first is cold (the binary's debug information is
read), the others warm.
"""

from __future__ import annotations

import signal

from ..agent import start_agent
from ..procs import Setup, start, wait
from ..results import Figure, reproduce
from . import Option

NAME = "agent-crash"
TITLE = "host agent, crash -> incident"
OPTIONS = [Option("crashes", int, 21, 6, "crashes, one after the other (the first is cold)")]


def run(setup: Setup, opts: dict) -> list[Figure]:
    repro = reproduce(NAME, setup, crashes=opts["crashes"])
    agent = start_agent(setup, ["--comm", "crash", "--rate-limit", "0", "-o",
                                setup.raw("agent-crash.incidents.txt")], "agent-crash")
    events = []
    try:
        for _ in range(opts["crashes"]):
            p = start([setup.crash, "--auto", "--threads", "4", "segv"], cpu=setup.cpu_target)
            wait(p, setup.limit, "crash")
            events.append(agent.event(lambda e, pid=p.pid: e["pid"] == pid))
    finally:
        agent.finish(signal.SIGTERM)
    threads = sorted({e["threads"] for e in events})
    notes = [] if threads == [4] else ["threads captured: %s of 4" % threads]
    p = {"threads": 4}
    return [
        Figure(NAME, "agent: crash -> incident written, cold",
               "trigger_to_written_ns of the first crash (--stats-fd)", "ms",
               [e["trigger_to_written_ns"] / 1e6 for e in events[:1]], params=p, notes=notes,
               reproduce=repro),
        Figure(NAME, "agent: crash -> incident written, warm",
               "trigger_to_written_ns of every later crash", "ms",
               [e["trigger_to_written_ns"] / 1e6 for e in events[1:]], params=p,
               reproduce=repro),
    ]
