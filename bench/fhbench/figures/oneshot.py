"""Native one-shot dumps: fh-bpf --dump against eu-stack -p, in one run.

Target: targets/crash --threads N-1 --spinners 1 --auto wait, on the
targets' CPU: N threads, N-1 parked (nanosleep, futex, read) and one
spinning in a C loop that counts its turns in the global `spins`.  On
it, ROUNDS rounds, each of three states in a random order:

* `fh-bpf -p PID --dump --max-threads max(256, N) -o FILE`: the task
  iterator reads the parked threads, a timer sample the spinning one; the
  target is never stopped;
* `eu-stack -p PID`: ptrace, each thread attached and stopped while it is
  unwound;
* idle: nothing for IDLE_S (0.2 s), the spinning thread's rate without
  any tool.

Both tools run on the watchers' CPU, and so does the bench's own thread
while the figure is taken (a fork of the bench never lands on the
target's CPU).  Right before and right after each state the bench reads
the spinner's count (from the target's memory, /proc/PID/mem: nothing is
stopped), the time it waited for its CPU (run_delay, the second field of
/proc/PID/task/TID/schedstat) and the CPU time of the target's other
threads (the first field of theirs).

Figures, per thread count:

* the wall time of the whole command (start, BPF load or ptrace attach,
  unwinding, print, exit), the bench's clock, fh-bpf against eu-stack;
  and per round, the ratio fh-bpf / eu-stack (the two share the round's
  moment), with the aim for that thread count;
* the spinner's lost progress during each command, in ms: the time it
  could have run in the window less the time its count took at the same
  round's idle rate, C - count / (idle count / idle C).  C is the window
  less the spinner's wait for a CPU held by another process: its wait
  less the CPU time of the target's other threads, which share its CPU
  (a tool that makes them run takes that time from the spinner).  Other
  tenants of a shared host, whose work a tool's own CPU time may push
  onto the target's CPU, are so left out; the same on the wall clock (C
  the whole window) is in the notes.  And per round, fh-bpf's lost
  progress less eu-stack's, aimed at no more than eu-stack's (<= 0).
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import time

from ..procs import Guard, Setup, Target, dump_command, timed
from ..results import Aim, Figure, Peer, not_measured, reproduce
from .. import stats
from . import Option, ints
from .native import med_ms, ms_text, ratio
from .ptrace import count_lines

NAME = "oneshot"
TITLE = "native one-shot --dump against eu-stack"
OPTIONS = [Option("threads", ints, [10, 100, 1000], [10, 100],
                  "threads of the target, one of them spinning"),
           Option("rounds", int, 11, 3, "rounds of the three states on one target")]
STATES = ("fh-bpf", "eu-stack", "idle")
TOOLS = STATES[:2]
EU_STACK = ["eu-stack", "-p"]
IDLE_S = 0.2
SHOWN = {"fh-bpf": r"^(Current thread|Thread) 0x", "eu-stack": r"^TID "}  # a thread's header
AIMS = {10: Aim(1, "fh-bpf's aim: --dump no slower than eu-stack -p at 10 threads"),
        100: Aim(0.5, "fh-bpf's aim: --dump in at most half of eu-stack -p's wall time at "
                      "100 threads"),
        1000: Aim(0.1, "fh-bpf's aim: --dump in at most a tenth of eu-stack -p's wall time at "
                       "1,000 threads")}
AIM_LOST = Aim(0, "fh-bpf's aim: a one-shot dump costs the target no more progress than "
                  "eu-stack -p")


def symbol(path: str, name: str) -> int:
    """A symbol's value in an executable's symbol table (nm)."""
    out = subprocess.run(["nm", path], capture_output=True, text=True).stdout
    for line in out.splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[2] == name:
            return int(fields[0], 16)
    raise Guard("%s has no symbol %s (nm)" % (path, name))


def load_base(pid: int, path: str) -> int:
    """Where pid mapped the executable: its mapping of file offset 0."""
    real = os.path.realpath(path)
    with open("/proc/%d/maps" % pid) as f:
        for line in f:
            fields = line.split()
            if len(fields) >= 6 and fields[5] == real and int(fields[2], 16) == 0:
                return int(fields[0].split("-")[0], 16)
    raise Guard("%s is not mapped in pid %d" % (real, pid))


class Spinner:
    """The target's spinning thread, and the target's other threads, read
    without stopping them."""

    def __init__(self, setup: Setup, pid: int, tid: int):
        self.pid, self.tid = pid, tid
        self.addr = load_base(pid, setup.crash) + symbol(setup.crash, "spins")
        self.schedstat = "/proc/%d/task/%d/schedstat" % (pid, tid)
        self.mem = os.open("/proc/%d/mem" % pid, os.O_RDONLY)

    def others_ns(self) -> int:
        """CPU time of the target's other threads so far (their schedstat)."""
        total = 0
        for tid in os.listdir("/proc/%d/task" % self.pid):
            if int(tid) == self.tid:
                continue
            try:
                with open("/proc/%d/task/%s/schedstat" % (self.pid, tid)) as f:
                    total += int(f.read().split()[0])
            except (OSError, IndexError, ValueError):
                pass
        return total

    def read(self, before: bool) -> tuple[int, int, int, int]:
        """(now in ns, its count, ns it waited for its CPU so far, CPU ns of
        the other threads so far): the spinner read inside the window, the
        slower walk of the other threads outside it."""
        others = self.others_ns() if before else 0
        with open(self.schedstat) as f:
            waited = int(f.read().split()[1])
        count = int.from_bytes(os.pread(self.mem, 8, self.addr), "little")
        now = time.monotonic_ns()
        if not before:
            others = self.others_ns()
        return now, count, waited, others

    def close(self) -> None:
        os.close(self.mem)


def spinning_target(setup: Setup, n: int) -> tuple[Target, int]:
    """targets/crash with n threads, one spinning: (target, spinner's tid)."""
    target = Target([setup.crash, "--threads", str(n - 1), "--spinners", "1", "--auto",
                     "wait"], "crash", setup, cpu=setup.cpu_target, ready="")
    tid = None
    try:
        while (line := target.line()) != "ready":  # "thread TID 0xPTHREAD ROLE" lines first
            fields = line.split()
            if fields[:1] == ["thread"] and fields[-1] == "spin":
                tid = int(fields[1])
        if tid is None:
            raise Guard("crash --spinners 1 reported no spinning thread")
    except BaseException:
        target.end()
        raise
    return target, tid


def state(setup: Setup, spinner: Spinner, name: str, pid: int, n: int, tag: str) -> dict:
    """One state of a round: the command's wall time (ms; None if it
    failed) and the spinner's count and wait over the window around it."""
    out = setup.raw("%s.%s.txt" % (tag, name))
    if name == "fh-bpf" and os.path.exists(out):
        os.unlink(out)  # -o appends
    event = None
    before = spinner.read(before=True)
    if name == "fh-bpf":
        d = dump_command(setup, pid, max(256, n), out, cpu=setup.cpu_watcher)
        wall, event = d["wall_ms"], d["event"]
    elif name == "eu-stack":
        wall = timed(EU_STACK + [str(pid)], out, cpu=setup.cpu_watcher)
    else:
        time.sleep(IDLE_S)
        wall = IDLE_S * 1e3
    after = spinner.read(before=False)
    window, count, waited, others = (b - a for a, b in zip(before, after))
    got = {"wall_ms": wall, "window_ns": window, "count": count, "waited_ns": waited,
           "others_ns": others, "event": event}
    if name in TOOLS:
        got["shown"] = count_lines(out, SHOWN[name]) if os.path.exists(out) else 0
    return got


def ms(ns: int) -> float:
    return ns / 1e6


def could_run_ns(got: dict) -> int:
    """The ns of a window the spinner could have run: the window less its
    wait for a CPU taken by another process (its wait less the time the
    target's other threads ran: they share the target's CPU)."""
    return got["window_ns"] - max(0, got["waited_ns"] - got["others_ns"])


def lost_ms(got: dict, idle: dict, wall_clock: bool = False) -> float | None:
    """The progress the spinner lost in a command's window, in ms at the
    idle window's rate (per ns it could run, or per ns of the wall clock)."""
    span = (lambda g: g["window_ns"]) if wall_clock else could_run_ns
    if got["wall_ms"] is None or not idle["count"] or span(idle) <= 0:
        return None
    return (span(got) - got["count"] * span(idle) / idle["count"]) / 1e6


def session(setup: Setup, n: int, opts: dict, repro: str) -> list[Figure]:
    """One target of n threads, ROUNDS rounds of the three states."""
    tag = "oneshot-%d" % n
    target, tid = spinning_target(setup, n)
    rounds: list[dict] = []
    try:
        spinner = Spinner(setup, target.pid, tid)
        try:
            for _ in range(opts["rounds"]):
                order = list(STATES)
                random.shuffle(order)
                got: dict = {"order": order}
                for name in order:
                    got[name] = state(setup, spinner, name, target.pid, n, tag)
                rounds.append(got)
        finally:
            spinner.close()
    finally:
        target.end()
    return round_figures(setup, rounds, n, tag, repro)


def window_record(got: dict, idle: dict) -> dict:
    """A state's window as the JSON keeps it."""
    doc = {"wall_ms": got["wall_ms"], "window_ms": ms(got["window_ns"]),
           "could_run_ms": ms(could_run_ns(got)), "waited_ms": ms(got["waited_ns"]),
           "others_cpu_ms": ms(got["others_ns"])}
    if got is not idle:
        doc["lost_ms"] = lost_ms(got, idle)
    doc = {k: stats.rounded(v) for k, v in doc.items()}
    return doc | {"count": got["count"]}


def round_figures(setup: Setup, rounds: list[dict], n: int, tag: str,
                  repro: str) -> list[Figure]:
    p = {"target": "native, 1 spinning", "threads": n}
    wall = {k: [r[k]["wall_ms"] for r in rounds] for k in TOOLS}
    lost = {k: [lost_ms(r[k], r["idle"]) for r in rounds] for k in TOOLS}
    lost_wall = {k: [lost_ms(r[k], r["idle"], True) for r in rounds] for k in TOOLS}
    shown = {k: sorted({r[k]["shown"] for r in rounds}) for k in TOOLS}
    events = [r["fh-bpf"]["event"] for r in rounds if r["fh-bpf"]["event"]]
    notes = ["%d rounds on one target, each of fh-bpf, eu-stack and %g s idle in a random "
             "order" % (len(rounds), IDLE_S),
             "threads shown: fh-bpf %s of %d (captured %s), eu-stack %s of %d" % (
                 shown["fh-bpf"], n, sorted({e["threads"] for e in events}),
                 shown["eu-stack"], n)]
    notes += ["%s failed %d of %d runs" % (k, wall[k].count(None), len(rounds))
              for k in TOOLS if None in wall[k]]
    notes.append("fh-bpf's events, medians: " + ", ".join(
        "%s %s" % (key, ms_text(med_ms(events, key))) for key in (
            "bpf_ns", "capture_ns", "sample_ns", "prepare_ns", "symbolize_ns",
            "trigger_to_written_ns")) + "; running threads sampled a dump: %s" % sorted(
        {e.get("samples_wanted", 0) for e in events}))
    per_round = [{"round": i + 1, "order": r["order"]} |
                 {k.replace("-", "_"): window_record(r[k], r["idle"]) for k in STATES}
                 for i, r in enumerate(rounds)]
    waits = {k: stats.median([ms(r[k]["waited_ns"]) for r in rounds]) for k in STATES}
    others = {k: stats.median([ms(r[k]["others_ns"]) for r in rounds]) for k in TOOLS}
    lost_notes = [
        "on the wall clock (every wait for the CPU lost), medians: fh-bpf %s, eu-stack %s" % (
            ms_text(stats.median(lost_wall["fh-bpf"])),
            ms_text(stats.median(lost_wall["eu-stack"]))),
        "the spinner's wait for its CPU in a window, medians: fh-bpf %s, eu-stack %s, idle %s"
        % tuple(ms_text(waits[k]) for k in STATES),
        "CPU time of the target's other threads in a window, medians: fh-bpf %s, eu-stack %s"
        % tuple(ms_text(others[k]) for k in TOOLS)]
    return [
        Figure(NAME, "native --dump vs eu-stack -p, whole command",
               "wall time of the whole command, the bench's clock; target not stopped", "ms",
               wall["fh-bpf"], params=p,
               peer=Peer("eu-stack -p", "eu-stack -p PID", wall["eu-stack"],
                         ["stops each thread while it unwinds it"]),
               notes=notes, raw=[setup.rel(setup.raw("%s.%s.txt" % (tag, k))) for k in TOOLS],
               reproduce=repro),
        Figure(NAME, "native --dump / eu-stack -p, wall, per round",
               "per round: fh-bpf --dump's wall time / eu-stack -p's", "x",
               [ratio(a, b) for a, b in zip(wall["fh-bpf"], wall["eu-stack"])], params=p,
               aim=AIMS.get(n), reproduce=repro),
        Figure(NAME, "spinning thread's progress lost: --dump vs eu-stack -p",
               "per round: the ms the spinner could run during the command less its count "
               "at the round's idle rate", "ms", lost["fh-bpf"], params=p,
               peer=Peer("eu-stack -p", "eu-stack -p PID", lost["eu-stack"]),
               notes=lost_notes, raw=per_round, reproduce=repro),
        Figure(NAME, "progress lost: --dump less eu-stack -p, per round",
               "per round: the spinner's progress lost during fh-bpf --dump less during "
               "eu-stack -p", "ms",
               [a - b if a is not None and b is not None else None
                for a, b in zip(lost["fh-bpf"], lost["eu-stack"])], params=p,
               aim=AIM_LOST, reproduce=repro),
    ]


def run(setup: Setup, opts: dict) -> list[Figure]:
    if opts["rounds"] < 1 or min(opts["threads"], default=0) < 2:
        raise Guard("--rounds must be at least 1, --threads at least 2 (one spins)")
    mask = os.sched_getaffinity(0)
    if setup.cpu_watcher is not None:
        os.sched_setaffinity(0, {setup.cpu_watcher})
    figures = []
    try:
        for n in opts["threads"]:
            repro = reproduce(NAME, setup, threads=n, rounds=opts["rounds"])
            if shutil.which(EU_STACK[0]):
                figures += session(setup, n, opts, repro)
            else:
                figures.append(not_measured(NAME, "native --dump vs eu-stack -p",
                                            "eu-stack is not installed", repro, threads=n))
        return figures
    finally:
        os.sched_setaffinity(0, mask)
