"""Crash -> traceback written, from the capture figure's sessions.

trigger_to_written_ns (--stats-fd) runs from the BPF program's stamp at the
signal to the traceback written by fh-bpf (both CLOCK_MONOTONIC).  The
first event of a session is cold (first unwinding and symbolization: debug
information read); the others are warm.  The aim is set for 10 threads,
warm.  symbolize_ns (unwinding and symbolizing the event) is shown beside.
"""

from __future__ import annotations

from ..procs import Setup
from ..results import Aim, Figure, reproduce
from .capture import OPTIONS as CAPTURE_OPTIONS, fault_sessions, session_notes

NAME = "printed"
TITLE = "crash -> traceback written"
OPTIONS = CAPTURE_OPTIONS
AIM_MS = Aim(20, "fh-bpf's aim since its first benchmarks: <= 20 ms crash -> printed, "
                 "10 threads, warm")


def run(setup: Setup, opts: dict) -> list[Figure]:
    figures = []
    for n in opts["threads"]:
        runs = fault_sessions(setup, n, opts["sessions"], opts["faults"])
        cold = [r["events"][0] for r in runs if r["events"]]
        warm = [e for r in runs for e in r["events"][1:]]
        repro = reproduce(NAME, setup, threads=n, sessions=opts["sessions"],
                          faults=opts["faults"])
        figures.append(Figure(
            NAME, "signal -> written, cold (first event of a watch)",
            "trigger_to_written_ns of each session's first event (--stats-fd)", "ms",
            [e["trigger_to_written_ns"] / 1e6 for e in cold], params={"threads": n},
            notes=session_notes(runs), reproduce=repro))
        figures.append(Figure(
            NAME, "signal -> written, warm",
            "trigger_to_written_ns of every later event (--stats-fd)", "ms",
            [e["trigger_to_written_ns"] / 1e6 for e in warm], params={"threads": n},
            aim=AIM_MS if n == 10 else None, reproduce=repro))
        figures.append(Figure(
            NAME, "unwound and symbolized, warm", "symbolize_ns of every later event", "ms",
            [e["symbolize_ns"] / 1e6 for e in warm], params={"threads": n},
            reproduce=repro))
    return figures
