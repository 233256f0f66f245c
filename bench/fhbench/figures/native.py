"""Python dumps with --native against plain ones, side by side in one run.

Target: tests/targets/py_target.py FAULT_FILE wait THREADS (pyenv's and
Debian's CPython 3.11; a missing one is skipped and said so): THREADS
workers parked at known lines (one spinning in a pure-Python loop) and the
main thread in readline, on the targets' CPU.  Without --native, fh-bpf
dumps a Python process by reading its thread states from its memory (no
BPF for the dump); with --native it also captures each thread's native
stack (the BPF task iterator, and timer samples of the threads running on
a CPU), unwinds it with libdw and merges it with the thread's Python
frames.

ROUNDS rounds on one target, each of four states in a random order:

* a watch, `fh-bpf -p PID --no-signal --max-threads 256 -o FILE`, with
  and without --native, armed through --ready-fd (its programs loaded
  once, at attach), then sent SIGUSR1 DUMPS times, each once the previous
  dump's event is on --stats-fd.  From each event: trigger_to_written_ns
  (the capture's start to the dump written), and capture_ns and
  symbolize_ns (unwinding and symbols) for the breakdown; the bench's
  clock from SIGUSR1 sent to the event read is kept beside it.  A watch's
  first dump is cold (debug information read for the unwinding) and is a
  figure of its own; the round's value is the median of its warm dumps.
* the one-shot `fh-bpf -p PID --dump --max-threads 256 -o FILE`, with and
  without --native: the bench's clock around the whole command (start, the
  BPF programs loaded with --native, capture, unwinding, print, exit);
  bpf_ns, prepare_ns and symbolize_ns of its event for the breakdown.

Per round, the --native value against the same round's plain one: the
ratio native / plain, its median and IQR over the rounds (rounds share
their moment, so the ratio cancels the host's slow drift); and the
absolute figures of both, every sample of the run.
"""

from __future__ import annotations

import os
import random
import signal
import time

from ..procs import FhBpf, Guard, Setup, oneshot_dump, py_label, py_target
from ..results import Figure, not_measured, reproduce
from .. import stats
from . import Option, ints

NAME = "native"
TITLE = "Python dumps: --native against plain"
OPTIONS = [Option("threads", ints, [10, 100], [10], "worker threads of the target (+ main)"),
           Option("rounds", int, 11, 3, "rounds of the four states on one target"),
           Option("dumps", int, 6, 3, "SIGUSR1 dumps a watch (the first is cold)")]
MAX_THREADS = 256
# (kind, --native): a watch sent SIGUSR1, or the one-shot --dump.
STATES = (("watch", False), ("watch", True), ("dump", False), ("dump", True))


def state_name(kind: str, native: bool) -> str:
    return kind + ("-native" if native else "")


def flags(native: bool) -> list[str]:
    return ["--native"] if native else []


def watch(setup: Setup, pid: int, native: bool, dumps: int, tag: str) -> dict:
    """One watch armed on pid and sent SIGUSR1 DUMPS times: its events,
    the bench's clock from each SIGUSR1 to its event (ms), its exit status.
    FILE holds the last round's dumps."""
    out = setup.raw(tag + ".txt")
    if os.path.exists(out):
        os.unlink(out)
    fh = FhBpf(setup, ["-p", str(pid), "--no-signal", "--max-threads", str(MAX_THREADS),
                       "-o", out] + flags(native), tag, cpu=setup.cpu_watcher)
    events, clock = [], []
    try:
        for _ in range(dumps):
            t0 = time.monotonic()
            os.kill(fh.pid, signal.SIGUSR1)
            events.append(fh.event())
            clock.append((time.monotonic() - t0) * 1e3)
    finally:
        rc, _ = fh.finish(signal.SIGTERM)
    return {"events": events, "clock_ms": clock, "rc": rc}


def one_shot(setup: Setup, pid: int, native: bool, tag: str) -> dict:
    """One `fh-bpf -p PID --dump`: its wall time (ms; None if it failed)
    and its event.  FILE holds the last round's dump."""
    out = setup.raw(tag + ".txt")
    if os.path.exists(out):
        os.unlink(out)
    wall, ev = oneshot_dump(setup, pid, MAX_THREADS, out, cpu=setup.cpu_watcher,
                            args=flags(native))
    return {"wall_ms": wall, "event": ev}


def ttw_ms(events: list[dict]) -> list[float]:
    return [e["trigger_to_written_ns"] / 1e6 for e in events]


def med_ms(events: list[dict], key: str) -> float | None:
    return stats.median([e.get(key, 0) / 1e6 for e in events])


def ratio(x: float | None, y: float | None) -> float | None:
    return x / y if x is not None and y else None


def ms_text(x: float | None) -> str:
    return "–" if x is None else "%.3g ms" % x


def check(events: list[dict], n: int, native: bool) -> list[str]:
    """What the events missed of the target's n workers and main thread."""
    notes = []
    py = sorted({e["python_threads"] for e in events})
    if py != [n + 1]:
        notes.append("Python threads a dump: %s of %d" % (py, n + 1))
    if native:
        nat = sorted({e["threads"] for e in events})
        if nat != [n + 1]:
            notes.append("native threads a dump: %s of %d" % (nat, n + 1))
    return notes


def session(setup: Setup, py: str, n: int, opts: dict, repro: str) -> list[Figure]:
    """One target, ROUNDS rounds of the four states: its figures."""
    label = py_label(py)
    tag = "native-%s-%d" % (label.replace(" ", "-"), n)
    target = py_target(setup, py, "wait", n, setup.temp(tag + ".faulthandler"),
                       setup.raw(tag + ".target.stderr"), cpu=setup.cpu_target)
    rounds: list[dict] = []
    try:
        for _ in range(opts["rounds"]):
            order = list(STATES)
            random.shuffle(order)
            got: dict = {"order": [state_name(*s) for s in order]}
            for kind, native in order:
                name = state_name(kind, native)
                if kind == "watch":
                    got[name] = watch(setup, target.pid, native, opts["dumps"],
                                      tag + "-" + name)
                else:
                    got[name] = one_shot(setup, target.pid, native, tag + "-" + name)
            rounds.append(got)
    finally:
        target.end()
    p = {"python": label, "threads": "%d+1" % n}
    return (watch_figures(setup, rounds, n, p, tag, repro) +
            dump_figures(setup, rounds, n, p, tag, repro))


def round_pairs(rounds: list[dict], plain: list, native: list) -> list[dict]:
    """The raw record of each round: its order, the plain and the --native figure."""
    return [{"round": i + 1, "order": r["order"],
             "plain_ms": stats.rounded(a), "native_ms": stats.rounded(b)}
            for i, (r, a, b) in enumerate(zip(rounds, plain, native))]


def watch_figures(setup: Setup, rounds: list[dict], n: int, p: dict, tag: str,
                  repro: str) -> list[Figure]:
    def warm(r: dict, name: str) -> list[dict]:
        return r[name]["events"][1:]

    per_round = {name: [stats.median(ttw_ms(warm(r, name))) for r in rounds]
                 for name in ("watch", "watch-native")}
    cold = {name: [e["trigger_to_written_ns"] / 1e6 for r in rounds
                   for e in r[name]["events"][:1]] for name in ("watch", "watch-native")}
    every = {name: [e for r in rounds for e in warm(r, name)]
             for name in ("watch", "watch-native")}
    clock = {name: [c for r in rounds for c in r[name]["clock_ms"][1:]]
             for name in ("watch", "watch-native")}
    notes = {}
    for name, native in (("watch", False), ("watch-native", True)):
        ev = every[name]
        notes[name] = check([e for r in rounds for e in r[name]["events"]], n, native)
        notes[name] += [
            "warm dumps: capture_ns median %s, symbolize_ns median %s, write_ns median %s" % (
                ms_text(med_ms(ev, "capture_ns")), ms_text(med_ms(ev, "symbolize_ns")),
                ms_text(med_ms(ev, "write_ns"))),
            "the bench's clock, SIGUSR1 sent -> event read, warm: median %s" % ms_text(
                stats.median(clock[name])),
        ]
        if native:
            notes[name].append("running threads sampled a dump: %s" % sorted(
                {e.get("samples_wanted", 0) for e in ev}))
        bad = sorted({r[name]["rc"] for r in rounds} - {0})
        if bad:
            notes[name].append("fh-bpf exited with status %s after SIGTERM" % bad)
    raw_logs = [setup.rel(setup.raw("%s-%s.%s" % (tag, name, ext)))
                for name in ("watch", "watch-native") for ext in ("txt", "stats.jsonl")]
    plain_med = stats.median(ttw_ms(every["watch"]))
    native_med = stats.median(ttw_ms(every["watch-native"]))
    return [
        Figure(NAME, "Python watch dump, warm: --native / plain",
               "per round: median trigger_to_written_ns of a --native watch's warm dumps / "
               "the same of a plain watch (--stats-fd)", "x",
               [ratio(a, b) for a, b in zip(per_round["watch-native"], per_round["watch"])],
               params=p,
               notes=["SIGUSR1 -> written, warm, medians: --native %s, plain %s"
                      % (ms_text(native_med), ms_text(plain_med)),
                      "%d rounds, each of 4 states in a random order; %d dumps a watch, the "
                      "first cold" % (len(rounds), len(rounds[0]["watch"]["events"]))],
               raw=round_pairs(rounds, per_round["watch"], per_round["watch-native"]) + raw_logs,
               reproduce=repro),
        Figure(NAME, "Python watch --native: SIGUSR1 -> written, warm",
               "trigger_to_written_ns of every warm dump of the --native watches", "ms",
               ttw_ms(every["watch-native"]), params=p, notes=notes["watch-native"],
               reproduce=repro),
        Figure(NAME, "Python watch, plain: SIGUSR1 -> written, warm",
               "trigger_to_written_ns of every warm dump of the plain watches", "ms",
               ttw_ms(every["watch"]), params=p, notes=notes["watch"], reproduce=repro),
        Figure(NAME, "Python watch --native: first dump (cold)",
               "trigger_to_written_ns of each --native watch's first dump", "ms",
               cold["watch-native"], params=p,
               notes=["a plain watch's first dump: median %s" % ms_text(
                   stats.median(cold["watch"]))],
               reproduce=repro),
    ]


def dump_figures(setup: Setup, rounds: list[dict], n: int, p: dict, tag: str,
                 repro: str) -> list[Figure]:
    walls = {name: [r[name]["wall_ms"] for r in rounds] for name in ("dump", "dump-native")}
    notes = {}
    for name, native in (("dump", False), ("dump-native", True)):
        ev = [r[name]["event"] for r in rounds if r[name]["event"]]
        failed = sum(w is None for w in walls[name])
        notes[name] = check(ev, n, native)
        if failed:
            notes[name].append("%d of %d runs failed" % (failed, len(rounds)))
        parts = [("bpf_ns", "BPF loaded and attached")] if native else []
        parts += [("capture_ns", "capture"), ("prepare_ns", "process view: mappings, symbols"),
                  ("symbolize_ns", "symbolize"), ("trigger_to_written_ns", "capture -> written")]
        notes[name].append("its events, medians: " + ", ".join(
            "%s (%s) %s" % (key, what, ms_text(med_ms(ev, key))) for key, what in parts))
    raw_logs = [setup.rel(setup.raw("%s-%s.txt" % (tag, name)))
                for name in ("dump", "dump-native")]
    return [
        Figure(NAME, "Python --dump, whole command: --native / plain",
               "per round: the bench's clock around `fh-bpf -p PID --dump --native` / "
               "around `fh-bpf -p PID --dump`", "x",
               [ratio(a, b) for a, b in zip(walls["dump-native"], walls["dump"])], params=p,
               notes=["wall, medians: --native %s, plain %s" % (
                   ms_text(stats.median(walls["dump-native"])),
                   ms_text(stats.median(walls["dump"])))],
               raw=round_pairs(rounds, walls["dump"], walls["dump-native"]) + raw_logs,
               reproduce=repro),
        Figure(NAME, "Python --dump --native, whole command, wall",
               "the bench's clock around `fh-bpf -p PID --dump --native`", "ms",
               walls["dump-native"], params=p, notes=notes["dump-native"], reproduce=repro),
        Figure(NAME, "Python --dump, plain, whole command, wall",
               "the bench's clock around `fh-bpf -p PID --dump`", "ms", walls["dump"],
               params=p, notes=notes["dump"], reproduce=repro),
    ]


def run(setup: Setup, opts: dict) -> list[Figure]:
    if opts["dumps"] < 2 or opts["rounds"] < 1:
        raise Guard("--dumps must be at least 2 (the first is cold), --rounds at least 1")
    figures = []
    for n in opts["threads"]:
        repro = reproduce(NAME, setup, threads=n, rounds=opts["rounds"], dumps=opts["dumps"])
        if not setup.pythons():
            figures.append(not_measured(NAME, "Python dumps, --native against plain",
                                        "no CPython 3.11 found", repro, threads=n))
        for py in setup.pythons():
            figures += session(setup, py, n, opts, repro)
    return figures
