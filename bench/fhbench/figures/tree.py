"""What following a process tree costs, and the agent's memory after many
short-lived processes.

bench/fork_loop runs N children one after the other, each waited for:
`fork` children _exit(0) at once (a prefork server's short-lived worker),
`exec` children exec /bin/true (a wrapper's command); it prints ns a child,
fork to reaped.  ROUNDS rounds, each of three states in a random order:
not watched, under `fh-bpf -p PID` (its descendants followed: the kernel
adds each child to the tree at its fork, fh-bpf reads its mapping records),
and under `fh-bpf -p PID --no-children`.  Per round, each watched state's
time a child against the same round's unwatched one: the slowdown.  Also
fh-bpf's CPU time over the followed runs, per child.

Then the host agent: `fh-bpf -a` armed, its RSS (VmRSS); PROCESSES
fork+exit children and PROCESSES/10 fork+exec ones of fork_loop; its RSS
again, and its peak at the end (--stats-fd).  What it keeps of a process
should go with its exit.
"""

from __future__ import annotations

import random
import signal

from ..agent import Meter, start_agent
from ..procs import FhBpf, Setup, Target
from ..results import Figure, reproduce
from .. import stats
from . import Option

NAME = "tree"
TITLE = "process trees: following children; agent memory"
OPTIONS = [Option("rounds", int, 7, 3, "rounds of the three states"),
           Option("children", int, 1000, 300, "children a run"),
           Option("processes", int, 100000, 20000, "short-lived processes under the agent")]
STATES = ("none", "followed", "alone")


def vm_rss_kb(pid: int) -> int | None:
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def run_children(target: Target, n: int, how: str) -> float:
    """One run of fork_loop: ns a child."""
    target.send("%d %s" % (n, how))
    line = target.line()
    while not line.startswith("ns "):
        line = target.line()
    return float(line.split()[1])


def one_round(setup: Setup, target: Target, state: str, n: int,
              cpu: list[float]) -> dict[str, float]:
    """fork and exec runs in one state; fh-bpf's CPU ns a child when followed."""
    fh = None
    if state != "none":
        args = ["-p", str(target.pid), "-o", setup.temp("tree.out")]
        if state == "alone":
            args.append("--no-children")
        fh = FhBpf(setup, args, "tree-" + state, cpu=setup.cpu_watcher)
    try:
        meter = Meter(fh) if fh and state == "followed" else None
        got = {how: run_children(target, n, how) for how in ("fork", "exec")}
        if meter:
            cpu.append(meter.read()[0] / (2 * n))
    finally:
        if fh:
            fh.finish(signal.SIGTERM)
    return got


def agent_memory(setup: Setup, processes: int) -> tuple[list[float], list[str]]:
    """The agent's RSS before, after PROCESSES short-lived ones, and at peak (MB)."""
    agent = start_agent(setup, ["-o", setup.temp("tree-agent.incidents")], "tree-agent")
    target = None
    try:
        before = vm_rss_kb(agent.pid)
        target = Target([setup.bin("fork_loop")], "fork_loop", setup, cpu=setup.cpu_target)
        run_children(target, processes, "fork")
        run_children(target, max(processes // 10, 1), "exec")
        after = vm_rss_kb(agent.pid)
    finally:
        if target:
            target.end(sig=None)
        rc, end = agent.finish(signal.SIGTERM)
    peak = end["max_rss_kb"] if end else None
    notes = ["fh-bpf -a exited with status %d after SIGTERM" % rc] if rc else []
    return [x / 1024 if x else None for x in (before, after, peak)], notes


def run(setup: Setup, opts: dict) -> list[Figure]:
    n, rounds = opts["children"], opts["rounds"]
    repro = reproduce(NAME, setup, rounds=rounds, children=n, processes=opts["processes"])
    times: dict[str, dict[str, list[float]]] = {s: {"fork": [], "exec": []} for s in STATES}
    cpu: list[float] = []
    target = Target([setup.bin("fork_loop")], "fork_loop", setup, cpu=setup.cpu_target)
    try:
        for _ in range(rounds):
            order = list(STATES)
            random.shuffle(order)
            for state in order:
                for how, ns in one_round(setup, target, state, n, cpu).items():
                    times[state][how].append(ns)
    finally:
        target.end(sig=None)
    figures = []
    for how, what in (("fork", "fork+exit"), ("exec", "fork+exec /bin/true")):
        base = times["none"][how]
        for state, words in (("followed", "-p PID, children followed"),
                             ("alone", "-p PID --no-children")):
            ratio = [w / b for w, b in zip(times[state][how], base) if b]
            figures.append(Figure(
                NAME, "%s of a child under %s" % (what, words),
                "ns a child (fork to reaped) under fh-bpf / the same round's unwatched run",
                "x", ratio, params={"children": n},
                raw=[{"state": s, "ns": times[s][how]} for s in STATES],
                notes=["unwatched, median ns a child: %s" % stats.rounded(stats.median(base))],
                reproduce=repro))
    figures.append(Figure(NAME, "fh-bpf CPU a followed child", "CPU time of fh-bpf -p "
                          "(every thread) over a followed round / children", "us",
                          [c / 1e3 for c in cpu], params={"children": n}, reproduce=repro))
    rss, notes = agent_memory(setup, opts["processes"])
    for label, value in zip(("armed", "after the processes", "peak"), rss):
        figures.append(Figure(NAME, "agent RSS, %s" % label,
                              "VmRSS of fh-bpf -a (peak: max_rss_kb at its end); "
                              "%d fork+exit and %d fork+exec children in between" %
                              (opts["processes"], max(opts["processes"] // 10, 1)),
                              "MB", [value] if value is not None else [], notes=notes,
                              reproduce=repro))
    return figures
