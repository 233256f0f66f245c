#!/usr/bin/env python3
"""Two fh-bpf builds side by side: is a change slower or bigger?

    sudo python3 bench/ab.py OLD_BUILD NEW_BUILD [--rounds N] [--json FILE]

OLD_BUILD and NEW_BUILD are build directories (each with its fh-bpf); the
targets come from NEW_BUILD/targets.  Each figure alternates old and new on
the same target, round after round, so that the host's noise hits both;
it is reported as both medians and the median of the per-round ratios
new ÷ old.  Only what both builds have is used (--ready-fd, --dump,
--log-dir, wall clocks and getrusage), so a build from before --stats-fd
compares too.

Figures: `fh-bpf -p` start → armed and its peak RSS through one crash (10
and 200 threads); one-shot `--dump` of a native target (10 and 100
threads); the host agent's burst of 200 crashers to the last incident file.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fhbench import procs  # noqa: E402


def armed_and_rss(fh: str, setup: procs.Setup, threads: int) -> tuple[float, float]:
    """ms from starting `fh-bpf -p PID` to its ready fd, and its peak RSS
    (MB) once a SIGSEGV of the target has been written out."""
    target = procs.crash_waiting(setup, threads)
    r, w = os.pipe()
    out = setup.temp("out.txt")
    t0 = time.monotonic()
    p = subprocess.Popen([fh, "-p", str(target.pid), "--ready-fd", str(w), "-o", out],
                         pass_fds=[w], stderr=subprocess.DEVNULL)
    os.close(w)
    os.read(r, 16)
    armed = (time.monotonic() - t0) * 1e3
    os.close(r)
    os.kill(target.pid, signal.SIGSEGV)
    target.end(None)
    _, _, usage = os.wait4(p.pid, 0)
    os.unlink(out)
    return armed, usage.ru_maxrss / 1024


def dump(fh: str, setup: procs.Setup, pid: int) -> float:
    """ms of a whole `fh-bpf -p PID --dump` command."""
    out = setup.temp("dump.txt")
    t0 = time.monotonic()
    subprocess.run([fh, "-p", str(pid), "--dump", "-o", out], stderr=subprocess.DEVNULL,
                   check=True)
    ms = (time.monotonic() - t0) * 1e3
    os.unlink(out)
    return ms


def burst(fh: str, setup: procs.Setup, crashers: int) -> float:
    """ms from starting the first of CRASHERS one-thread crashers under
    `fh-bpf -a` to the last one's incident file in --log-dir."""
    d = tempfile.mkdtemp(prefix="ab-burst-", dir=setup.tmp)
    r, w = os.pipe()
    agent = subprocess.Popen([fh, "-a", "--comm", "crash", "--rate-limit", "0", "--format",
                              "json", "--log-dir", d + "/log", "-o", d + "/out",
                              "--ready-fd", str(w)], pass_fds=[w], stderr=subprocess.DEVNULL)
    os.close(w)
    os.read(r, 16)
    os.close(r)
    t0 = time.monotonic()
    crashers_ = [subprocess.Popen([setup.crash, "--auto", "--threads", "1", "segv"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for _ in range(crashers)]
    pids = {p.pid for p in crashers_}
    for p in crashers_:
        p.wait()
    name = re.compile(r"-(\d+)-SIGSEGV")
    while time.monotonic() - t0 < setup.limit:
        seen = {int(m.group(1)) for f in os.listdir(d + "/log")
                if not f.startswith(".") and (m := name.search(f))}
        if pids <= seen:
            break
        time.sleep(0.002)  # polled: the figure, not a synchronisation
    else:
        raise procs.Guard("burst: incident files missing after %.0f s" % setup.limit)
    ms = (time.monotonic() - t0) * 1e3
    agent.send_signal(signal.SIGTERM)
    agent.wait()
    shutil.rmtree(d)
    return ms


def paired(name: str, unit: str, old: list[float], new: list[float]) -> dict:
    ratio = statistics.median(b / a for a, b in zip(old, new))
    print("%-48s old %8.1f %s  new %8.1f %s  new/old %.2f" % (
        name, statistics.median(old), unit, statistics.median(new), unit, ratio))
    return {"figure": name, "unit": unit, "old": old, "new": new,
            "old_median": statistics.median(old), "new_median": statistics.median(new),
            "pair_ratio_median": ratio}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", help="write the figures here too")
    args = ap.parse_args()
    fh = {k: os.path.join(os.path.abspath(getattr(args, k)), "fh-bpf") for k in ("old", "new")}
    setup = procs.Setup(args.new, False, 60, "ab")
    figures = []
    try:
        for threads in (10, 200):
            runs = {k: [] for k in fh}
            for _ in range(args.rounds):
                for k in fh:
                    runs[k].append(armed_and_rss(fh[k], setup, threads))
            figures.append(paired("-p start -> armed, %d threads" % threads, "ms",
                                  [x[0] for x in runs["old"]], [x[0] for x in runs["new"]]))
            figures.append(paired("-p peak RSS through a crash, %d threads" % threads, "MB",
                                  [x[1] for x in runs["old"]], [x[1] for x in runs["new"]]))
        for threads in (10, 100):
            target = procs.crash_waiting(setup, threads)
            runs = {k: [] for k in fh}
            for _ in range(args.rounds):
                for k in fh:
                    runs[k].append(dump(fh[k], setup, target.pid))
            target.end()
            figures.append(paired("--dump, native, %d threads" % threads, "ms",
                                  runs["old"], runs["new"]))
        runs = {k: [] for k in fh}
        for _ in range(max(3, args.rounds // 2)):
            for k in fh:
                runs[k].append(burst(fh[k], setup, 200))
        figures.append(paired("-a burst of 200 crashers -> last file", "ms",
                              runs["old"], runs["new"]))
    finally:
        setup.cleanup()
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"command": " ".join(["python3"] + sys.argv),
                       "load_average": os.getloadavg(), "figures": figures}, f, indent=1)


if __name__ == "__main__":
    main()
