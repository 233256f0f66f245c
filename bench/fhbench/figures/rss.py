"""fh-bpf's peak memory, from the capture figure's sessions.

max_rss_kb of fh-bpf's "end" object (--stats-fd: getrusage's ru_maxrss,
read by fh-bpf itself as it ends, after every capture of the session),
one sample a session.  MB here is 10^6 bytes.
"""

from __future__ import annotations

from ..procs import Setup
from ..results import Aim, Figure, reproduce
from .capture import OPTIONS as CAPTURE_OPTIONS, fault_sessions, session_notes

NAME = "rss"
TITLE = "peak RSS"
OPTIONS = CAPTURE_OPTIONS
AIM_MB = Aim(40, "fh-bpf's aim since its first benchmarks: <= 40 MB peak RSS")


def run(setup: Setup, opts: dict) -> list[Figure]:
    figures = []
    for n in opts["threads"]:
        runs = fault_sessions(setup, n, opts["sessions"], opts["faults"])
        figures.append(Figure(
            NAME, "fh-bpf peak RSS after %d captures" % opts["faults"],
            "max_rss_kb of fh-bpf's end object (--stats-fd), one a session", "MB",
            [r["end"]["max_rss_kb"] * 1024 / 1e6 for r in runs if r["end"]],
            params={"threads": n}, aim=AIM_MB, notes=session_notes(runs),
            reproduce=reproduce(NAME, setup, threads=n, sessions=opts["sessions"],
                                faults=opts["faults"])))
    return figures
