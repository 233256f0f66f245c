"""Host agent: a burst of crashers started at once.

`fh-bpf -a --comm crash --rate-limit 0 --format json --log-dir DIR -o FILE`
armed, then CRASHERS `crash --auto --threads 1 segv` started as fast as the
bench can (each crashes about 2 ms after its exec), BURSTS times (a new
agent each).  Per burst: the wall time from the first start to the last of
their events on --stats-fd; what each event's writing took (write_ns:
incidents are handled one after another, and each log file is synced
before it is renamed into place); the records written (their files in DIR,
by pid); what the agent lost (its "end" object); and the share of frames
symbolized (a function name) over every frame of every record.  Other
tenants' crashers of that name are left out (by pid).
"""

from __future__ import annotations

import glob
import json
import os
import re
import signal
import time

from ..agent import start_agent
from ..procs import Setup, start, wait
from .. import stats
from ..results import Figure, reproduce
from . import Option

NAME = "burst"
TITLE = "host agent, burst of crashes"
OPTIONS = [Option("crashers", int, 200, 50, "crashers a burst"),
           Option("bursts", int, 3, 1, "bursts (a new agent each)")]


def frames_symbolized(log_dir: str, pids: set[int]) -> tuple[int, int, int]:
    """(records of these pids, frames with a function name, frames)."""
    records = named = frames = 0
    for path in glob.glob(os.path.join(log_dir, "*.json")):
        m = re.search(r"-(\d+)-SIG[A-Z]+(-\d+)?\.json$", path)
        if not m or int(m.group(1)) not in pids:
            continue
        with open(path) as f:
            for line in f:
                records += 1
                for t in json.loads(line).get("threads", []):
                    for fr in t.get("frames", []):
                        frames += 1
                        named += fr.get("function") is not None
    return records, named, frames


def burst(setup: Setup, crashers: int, tag: str) -> dict:
    log_dir = setup.temp(tag + ".log")
    agent = start_agent(setup, ["--comm", "crash", "--rate-limit", "0", "--format", "json",
                                "--log-dir", log_dir, "-o", setup.temp(tag + ".out")], tag)
    try:
        t0 = time.monotonic()
        procs = [start([setup.crash, "--auto", "--threads", "1", "segv"])
                 for _ in range(crashers)]
        started = (time.monotonic() - t0) * 1e3
        pids = {p.pid for p in procs}
        for p in procs:
            wait(p, setup.limit, "crash")
        waiting, events = set(pids), []
        while waiting:
            events.append(agent.event(lambda e: e["pid"] in waiting))
            waiting.discard(events[-1]["pid"])
        written = (time.monotonic() - t0) * 1e3
    finally:
        _, end = agent.finish(signal.SIGTERM)
    records, named, frames = frames_symbolized(log_dir, pids)
    return {"started_ms": started, "written_ms": written, "records": records,
            "named": named, "frames": frames, "losses": (end or {}).get("losses"),
            "write_ms": [e["write_ns"] / 1e6 for e in events],
            "symbolize_ms": [e["symbolize_ns"] / 1e6 for e in events]}


def run(setup: Setup, opts: dict) -> list[Figure]:
    n = opts["crashers"]
    repro = reproduce(NAME, setup, crashers=n, bursts=opts["bursts"])
    runs = [burst(setup, n, "burst-%d" % (i + 1)) for i in range(opts["bursts"])]
    p = {"crashers": n, "threads": 1}
    return [
        Figure(NAME, "burst: first start -> last incident written",
               "the bench's clock from starting the first crasher to the last one's event "
               "on --stats-fd", "ms", [r["written_ms"] for r in runs], params=p,
               notes=["crashers started in %s ms" % ["%.0f" % r["started_ms"] for r in runs],
                      "losses: %s" % [r["losses"] or "none" for r in runs]],
               reproduce=repro),
        Figure(NAME, "burst: one incident written out",
               "write_ns of each event (--stats-fd): its outputs, the log file written, "
               "synced and renamed", "ms", [x for r in runs for x in r["write_ms"]], params=p,
               notes=["symbolize_ns of each: median %.2f ms" % stats.median(
                   [x for r in runs for x in r["symbolize_ms"]])], reproduce=repro),
        Figure(NAME, "burst: records written", "incident files of the burst's pids in the "
               "log directory, % of the crashers", "%",
               [r["records"] * 100 / n for r in runs], params=p, reproduce=repro),
        Figure(NAME, "burst: frames symbolized", "frames with a function name over every "
               "frame of every record, %", "%",
               [r["named"] * 100 / r["frames"] if r["frames"] else None for r in runs],
               params=p, notes=["frames: %s" % [r["frames"] for r in runs]],
               reproduce=repro),
    ]
