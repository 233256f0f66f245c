"""The target's own throughput while it is dumped every 10 ms.

Targets: bench/count_loop SECONDS 4 (native) and bench/count_loop.py
SECONDS 4 (pyenv's CPython 3.11): 3 threads parked, the main one counting
loop iterations for SECONDS once released, then "rate N" (iterations a
second).  Each round runs the target four times, one after another, in
the same order: not watched; watched by `fh-bpf -p PID --no-signal
--timeout 0.01 --repeat -o FILE`; with `eu-stack -p PID` run back to back
on it; with gdb `thread apply all bt` run back to back.  With two CPUs or
more the target runs on CPU 1 and fh-bpf or the peer on CPU 0.  On a
shared host the watcher's own CPU time (given beside, every dump is
unwound, symbolized and written) pushes other tenants' work onto the
target's CPU: there the slowdown is the host's, not the target's being
interrupted.

Figures: the slowdown of each round's watched run against the same
round's unwatched one (the per-pair comparison: a round's runs are seconds
apart, rounds minutes apart); the watched rate against each peer's
(interleaved in the same rounds); and the samplers' BPF time (the
live_sample programs, which run on the target's CPU: an upper bound of
what fh-bpf took from the target), from the kernel's BPF statistics.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time

from ..procs import (PYTHONS, BpfStats, FhBpf, Setup, Target, bpf_prog_names, bpf_progs,
                     cpu_ns, py_label, start)
from ..results import Aim, Figure, Peer, reproduce
from .. import stats
from . import Option

NAME = "throughput"
TITLE = "target throughput while dumped"
OPTIONS = [Option("rounds", int, 7, 2, "rounds (each: not watched, fh-bpf, eu-stack, gdb)"),
           Option("seconds", float, 3.0, 1.0, "seconds a counting run")]
AIM = Aim(1, "fh-bpf's aim since its first benchmarks: <= 1 % slowdown while dumped every 10 ms")
PEERS = {"eu-stack": ["eu-stack", "-p"],
         "gdb": ["gdb", "-batch", "-ex", "thread apply all bt", "-p"]}


class PeerLoop:
    """A ptrace peer run back to back on a target until it exits (a shell
    loop: one process to start and end)."""

    def __init__(self, setup: Setup, argv: list[str], pid: int):
        loop = 'while kill -0 %d 2>/dev/null; do "$@" %d >/dev/null 2>&1; done' % (pid, pid)
        self.proc = start(["sh", "-c", loop, "sh"] + argv, cpu=setup.cpu_watcher)


def counting_run(setup: Setup, argv: list[str], watch: str | None, tag: str) -> dict:
    """One run of a counting target: its rate, and with fh-bpf watching,
    the dumps written and the samplers' BPF time."""
    target = Target(argv, os.path.basename(argv[-3]), setup, cpu=setup.cpu_target)
    fh = peer = None
    out = {"rate": None}
    try:
        if watch == "fh-bpf":
            fh = FhBpf(setup, ["-p", str(target.pid), "--no-signal", "--timeout", "0.01",
                               "--repeat", "-o", setup.temp(tag + ".dumps")], tag,
                       cpu=setup.cpu_watcher)
        elif watch:
            peer = PeerLoop(setup, PEERS[watch], target.pid)
        with BpfStats() if fh else contextlib.nullcontext():
            before = bpf_progs(fh.pid) if fh else {}
            cpu0 = cpu_ns(fh.pid) if fh else 0
            t0 = time.monotonic()
            target.send("go")
            line = target.line()
            wall = time.monotonic() - t0
            after = bpf_progs(fh.pid) if fh else {}
            if fh:
                out["watcher_cpu_pct"] = (cpu_ns(fh.pid) - cpu0) / 1e7 / wall
        out["rate"] = float(line.split()[1]) if line.startswith("rate ") else None
        if fh:
            names = bpf_prog_names()
            out["sampler_ns"] = sum(after[i][1] - before.get(i, (0, 0))[1] for i in after
                                    if names.get(i) == "live_sample")
    finally:
        target.end(sig=None)
        if fh:
            rc, end = fh.finish()
            out["dumps"] = end["incidents"] if end else None
        if peer:
            try:
                peer.proc.wait(setup.limit)
            except subprocess.TimeoutExpired:
                peer.proc.kill()
    return out


def kind(setup: Setup, label: str, argv: list[str], opts: dict, repro: str) -> list[Figure]:
    peers = [p for p in PEERS if shutil.which(PEERS[p][0])]
    runs: dict[str, list] = {k: [] for k in ["none", "fh-bpf"] + peers}
    for r in range(opts["rounds"]):
        for watch in runs:
            tag = "throughput-%s-%s-%d" % (label.split()[0].lower(), watch, r + 1)
            runs[watch].append(counting_run(setup, argv, None if watch == "none" else watch,
                                            tag))
    base = [x["rate"] for x in runs["none"]]
    fh = [x["rate"] for x in runs["fh-bpf"]]
    p = {"target": label}
    timeouts = int(opts["seconds"] * 100)
    figures = [
        Figure(NAME, "throughput dumped every 10 ms: slowdown",
               "per round: (not watched - watched) / not watched, iterations a second", "%",
               [stats.slowdown_pct(b, w) for b, w in zip(base, fh)], params=p, aim=AIM,
               notes=["rates: not watched median %.4g/s (spread %s %%), watched %.4g/s" % (
                   stats.median(base), (stats.spread(base) or {}).get("rel_spread_pct"),
                   stats.median(fh)),
                   "dumps a watch: %s; the counting takes %d timeouts of 10 ms, the watch "
                   "a little longer (a timeout that falls during a dump is skipped)" % (
                       [x.get("dumps") for x in runs["fh-bpf"]], timeouts)],
               reproduce=repro),
        Figure(NAME, "fh-bpf's CPU while dumping every 10 ms",
               "CPU time of the watcher (every thread) over a counting run, % of one CPU",
               "%", [x.get("watcher_cpu_pct") for x in runs["fh-bpf"]], params=p,
               reproduce=repro),
    ]
    if label == "native":  # a Python dump reads memory: no sampler runs
        figures.append(Figure(
            NAME, "samplers' BPF time while dumped every 10 ms",
            "run_time_ns of fh-bpf's live_sample programs over a run (kernel BPF "
            "statistics), % of one CPU", "%",
            [x["sampler_ns"] / (opts["seconds"] * 1e9) * 100 for x in runs["fh-bpf"]],
            params=p, reproduce=repro))
    for name in peers:
        rates = [x["rate"] for x in runs[name]]
        figures.append(Figure(
            NAME, "throughput: fh-bpf every 10 ms vs %s back to back" % name,
            "iterations a second of the target (higher is better)", "/s", fh, params=p,
            peer=Peer(name + " back to back", " ".join(PEERS[name]) + " PID, in a loop",
                      rates, ["stops the target each time; slowdown against not watched: "
                              "%.1f %%" % stats.slowdown_pct(stats.median(base),
                                                             stats.median(rates))]),
            reproduce=repro))
    return figures


def run(setup: Setup, opts: dict) -> list[Figure]:
    repro = reproduce(NAME, setup, rounds=opts["rounds"], seconds=opts["seconds"])
    seconds = "%g" % opts["seconds"]
    figures = kind(setup, "native", [setup.bin("count_loop"), seconds, "4"], opts, repro)
    if os.access(PYTHONS[0], os.X_OK):
        figures += kind(setup, "Python " + py_label(PYTHONS[0]),
                        [PYTHONS[0], setup.count_py, seconds, "4"], opts, repro)
    return figures
