"""What the host agent costs a workload of signals.

bench/signal_loop SIGNALS raises and handles SIGUSR1 SIGNALS times (each
one generated, delivered and handled: both signal tracepoints fire) and
prints "ns X", nanoseconds a signal.  Whole runs, RUNS rounds: no agent,
then under `fh-bpf -a` (armed through --ready-fd, stopped after), then
under a bpftrace one-liner on signal_generate (when bpftrace is installed:
looked for, never installed), interleaved.  Figures: the slowdown of each
round's agent run against the same round's run without it (the per-pair
comparison), and fh-bpf against bpftrace.

Whole runs seconds apart differ here by more than the effect, so the same
signals again, alternated finely by bench/signal_toggle: ROUNDS rounds of
SIGNALS/ROUNDS signals in each of three states, the order random each
round: no program on signal_generate, fh-bpf's own program (a reference
taken while the agent ran, then the agent stopped), and a program that does
nothing (the kernel's call of any program).  Per round: the slowdown of
fh-bpf's program and of the empty one against no program, and fh-bpf's
beyond the empty one; medians and the standard error of the mean.

And the programs' own time a signal: one more agent run with the kernel's
BPF statistics on (which add their own clock reads), run_time_ns of the
agent's programs / SIGNALS.
"""

from __future__ import annotations

import os
import shutil
import signal

from ..agent import Meter, prog_id, start_agent
from ..procs import BpfStats, Guard, LineReader, Setup, Target, start, stop
from ..results import Aim, Figure, Peer, reproduce
from .. import stats
from . import Option

NAME = "agent-signals"
TITLE = "host agent, signal workload"
OPTIONS = [Option("runs", int, 11, 3, "rounds of whole runs"),
           Option("signals", int, 1000000, 200000, "signals a run"),
           Option("toggle_rounds", int, 200, 40, "signal_toggle rounds")]
AIM = Aim(1, "README: 1 % aimed at for a workload of signals")
BT_PROG = 'tracepoint:signal:signal_generate /args->sig == 11/ { printf("%d\\n", args->pid); }'


def signal_run(setup: Setup, signals: int) -> float:
    """One run of signal_loop: ns a signal."""
    target = Target([setup.bin("signal_loop"), str(signals)], "signal_loop", setup,
                    cpu=setup.cpu_target)
    try:
        target.send("go")
        line = target.line()
        while not line.startswith("ns "):
            line = target.line()
    finally:
        target.end(sig=None)
    return float(line.split()[1])


def under_agent(setup: Setup, signals: int, tag: str) -> float:
    agent = start_agent(setup, ["-o", setup.temp("signals.incidents")], tag)
    try:
        return signal_run(setup, signals)
    finally:
        agent.finish(signal.SIGTERM)


def under_bpftrace(setup: Setup, signals: int, tag: str) -> float:
    """A run under bpftrace, once it says it is attaching its probes."""
    r, w = os.pipe()
    bt = start([shutil.which("bpftrace"), "-e", BT_PROG], stdout=w, stderr=w,
               cpu=setup.cpu_watcher)
    os.close(w)
    out = LineReader(r, "bpftrace", setup.raw(tag + ".bpftrace.txt"))
    try:
        while not out.line(setup.limit).startswith("Attaching"):
            pass
        return signal_run(setup, signals)
    finally:
        stop(bt, signal.SIGINT)
        out.close()


def bpf_ns_a_signal(setup: Setup, signals: int) -> tuple[float, int]:
    """The agent's programs' run time over one run, a signal."""
    agent = start_agent(setup, ["-o", setup.temp("signals.incidents")], "agent-signals-bpf")
    try:
        with BpfStats():
            meter = Meter(agent)
            signal_run(setup, signals)
            _, runs, ns = meter.read()
    finally:
        agent.finish(signal.SIGTERM)
    return ns / signals, runs


def toggle(setup: Setup, rounds: int, chunk: int) -> list[tuple[float, float, float]]:
    """signal_toggle's rounds: (no program, fh-bpf's, empty) ns a signal."""
    agent = start_agent(setup, ["-o", setup.temp("toggle.incidents")], "agent-signals-toggle")
    try:
        pid = prog_id(agent, "on_signal_generate")
        if pid is None:
            raise Guard("fh-bpf -a: no on_signal_generate program found")
        target = Target([setup.bin("signal_toggle"), str(pid), str(rounds), str(chunk)],
                        "signal_toggle", setup, cpu=setup.cpu_target)
    finally:
        agent.finish(signal.SIGTERM)  # its link goes; the tool holds the program
    rows = []
    try:
        target.send("go")
        while len(rows) < rounds:
            line = target.line()
            if line.startswith("round "):
                rows.append(tuple(float(x) for x in line.split()[1:4]))
    finally:
        target.end(sig=None)
    return rows


def toggle_figures(rows: list, repro: str) -> list[Figure]:
    def pct(a: int, b: int) -> list[float]:
        return [(r[a] - r[b]) * 100 / r[0] for r in rows]

    figures = []
    for name, a, b, aim in (("fh-bpf's signal_generate program, alternated finely", 1, 0, AIM),
                            ("an empty program on signal_generate", 2, 0, None),
                            ("fh-bpf's program beyond the empty one", 1, 2, None)):
        xs = pct(a, b)
        mean, se = stats.mean_se(xs)
        figures.append(Figure(
            NAME, name, "per round of signal_toggle: extra ns a signal, % of a signal with "
            "no program", "%", xs, aim=aim,
            notes=["mean %.2f %%, standard error %.2f %%" % (mean, se or 0),
                   "no program: %.1f ns a signal (median of the rounds)" % stats.median(
                       [r[0] for r in rows])],
            reproduce=repro))
    return figures


def run(setup: Setup, opts: dict) -> list[Figure]:
    n = opts["signals"]
    repro = reproduce(NAME, setup, runs=opts["runs"], signals=n,
                      toggle_rounds=opts["toggle_rounds"])
    has_bt = shutil.which("bpftrace") is not None
    base, agent, bt = [], [], []
    for i in range(opts["runs"]):
        base.append(signal_run(setup, n))
        agent.append(under_agent(setup, n, "agent-signals-%d" % (i + 1)))
        if has_bt:
            bt.append(under_bpftrace(setup, n, "agent-signals-%d" % (i + 1)))
    per, runs = bpf_ns_a_signal(setup, n)
    rows = toggle(setup, opts["toggle_rounds"], max(1, n // opts["toggle_rounds"]))
    p = {"signals": n}
    slow = [(a - b) * 100 / b for a, b in zip(agent, base)]
    figures = [
        Figure(NAME, "signals raised and handled: slowdown under fh-bpf -a, whole runs",
               "per round: (ns a signal under the agent - without) / without", "%", slow,
               params=p, aim=AIM,
               notes=["ns a signal without the agent: median %.1f (spread %s %%); with it: "
                      "median %.1f" % (stats.median(base),
                                       (stats.spread(base) or {}).get("rel_spread_pct"),
                                       stats.median(agent)),
                      "whole runs seconds apart: compare the slowdown with the spread"],
               reproduce=repro),
        Figure(NAME, "the agent's BPF programs, a signal",
               "run_time_ns of its programs over one run / signals (BPF statistics on)",
               "ns", [per], params=p,
               notes=["%d program runs; %.2f %% of a signal without the agent" % (
                   runs, per * 100 / stats.median(base))], reproduce=repro),
    ]
    if has_bt:
        figures.append(Figure(
            NAME, "signals: ns a signal under fh-bpf -a vs a bpftrace one-liner",
            "ns a signal of whole runs, interleaved", "ns", agent, params=p,
            peer=Peer("bpftrace signal_generate one-liner", "bpftrace -e '%s'" % BT_PROG, bt,
                      ["slowdown against no agent: %.2f %%" % (
                          (stats.median(bt) - stats.median(base)) * 100 / stats.median(base))]),
            reproduce=repro))
    else:
        figures[0].notes.append("bpftrace is not installed (looked for, never installed): "
                                "no peer")
    return figures + toggle_figures(rows, repro)
