"""fh-bpf's peak memory, after crash captures and after a one-shot --dump.

max_rss_kb of fh-bpf's "end" object (--stats-fd: getrusage's ru_maxrss,
read by fh-bpf itself as it ends): one sample a session of the capture
figure (after every capture of the session), and one a `fh-bpf -p PID
--dump --max-threads max(256, N)` of a targets/crash --threads N --auto
wait (DUMPS of them on one target).  MB here is 10^6 bytes.  The aim is
set for a 200-thread target; smaller ones are held to it too.
"""

from __future__ import annotations

from ..procs import Setup, crash_waiting, dump_command
from ..results import Aim, Figure, reproduce
from . import Option
from .capture import OPTIONS as CAPTURE_OPTIONS, fault_sessions, session_notes

NAME = "rss"
TITLE = "peak RSS"
OPTIONS = CAPTURE_OPTIONS + [Option("dumps", int, 5, 2, "fh-bpf --dump runs on one target")]
AIM_MB = Aim(40, "fh-bpf's aim: <= 40 MB peak RSS for a crash or a dump of a 200-thread "
                 "target")


def dumps(setup: Setup, n: int, count: int) -> list[dict]:
    """COUNT one-shot dumps of one target of n threads."""
    target = crash_waiting(setup, n)
    try:
        return [dump_command(setup, target.pid, max(256, n), setup.raw("rss-%d.dump.txt" % n))
                for _ in range(count)]
    finally:
        target.end()


def mb(end: dict) -> float:
    return end["max_rss_kb"] * 1024 / 1e6


def run(setup: Setup, opts: dict) -> list[Figure]:
    figures = []
    for n in opts["threads"]:
        repro = reproduce(NAME, setup, threads=n, sessions=opts["sessions"],
                          faults=opts["faults"], dumps=opts["dumps"])
        runs = fault_sessions(setup, n, opts["sessions"], opts["faults"])
        figures.append(Figure(
            NAME, "fh-bpf peak RSS after %d captures" % opts["faults"],
            "max_rss_kb of fh-bpf's end object (--stats-fd), one a session", "MB",
            [mb(r["end"]) for r in runs if r["end"]], params={"threads": n}, aim=AIM_MB,
            notes=session_notes(runs), reproduce=repro))
        done = dumps(setup, n, opts["dumps"])
        bad = sorted({d["rc"] for d in done} - {0})
        figures.append(Figure(
            NAME, "fh-bpf peak RSS, one-shot --dump",
            "max_rss_kb of fh-bpf's end object (--stats-fd), one a --dump", "MB",
            [mb(d["end"]) for d in done if d["end"]], params={"threads": n}, aim=AIM_MB,
            notes=["fh-bpf --dump exited with status %s (0 expected)" % bad] if bad else [],
            reproduce=repro))
    return figures
