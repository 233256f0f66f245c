#!/usr/bin/env python3
"""The root agent against hostile local users: figures.

    bench/hostile.py [BUILD] [--rounds R] [--crashes K] [--dwell S] [--seed N]
                     [--only SCENARIO,...] [--agent-nofile N] [--agent-args ARGS]

BUILD is a build directory (default: build) holding fh-bpf and the test
targets (`make OUT=BUILD all targets`); this script builds nothing.  Run as
root from anywhere; Python 3 standard library only (the helpers are in
bench/hostile/).

For each scenario, `fh-bpf -a --log-dir DIR --ready-fd 3` is started with
no filter (every process on the host in scope: the worst case), DIR a fresh
0700 directory, its descriptor limit 1024 soft and hard (a service's usual
limit; --agent-nofile; set through prlimit, which executes fh-bpf).  Once
it says "ready" (fd 3), the attack is staged by processes running as uid
65534 (nobody, through setpriv), each saying "ready" on a pipe once its
attack is in place:

  quiet          no attack
  fifo-debuglink a copy of targets/crash without DWARF or build id whose
                 .gnu_debuglink leads from /usr/lib/debug to a FIFO; one such
                 lure crashes (as nobody) just before each in-scope crash
  lease          4 `hostile_py lease`: each maps a copy of the fake
                 libpython3.11.so executable and holds a write lease on it
                 (asked at the end whether a lease break was begun)
  amplification  K `hostile_py crash`: a fake libpython with looping thread
                 and frame chains and names of 500 U+10FFFF; one crashes
                 just before each in-scope crash
  descriptors    `hostile_park 1100`: 1,100 processes, each in a user and
                 mount namespace of its own
  sysdict        150 `hostile_py live`: sys dicts of 4,096 keys
  lures          3,000 distinct files named libpython3.5m.so (copies of the
                 one in BUILD/targets), all mapped by one `hostile_py map`
  names          one `crash --name "a<LF>Fatal<ESC>[2Kxyz"` (as nobody)
                 crashes just before each in-scope crash

Then a measuring window of --dwell seconds (default 4, in two halves: a
time measured, not a wait for anything): the agent's CPU under the attack
alone, first its reaction to the staging, then its steady cost.  Then K
(5) in-scope crashes, one after another: `crash --threads 4 --report 3 --go
4 segv` as root, parked, then let go (the attacker's action, if any, comes
between).  Latency of each: from waitpid() returning the crasher's death (a
pidfd says when) to its incident file (...-PID-SIGSEGV.txt) appearing in
DIR (inotify, read by a thread that stamps each name as it comes); also
from the go byte written to the file (the whole way: fault, capture,
unwinding, file).  The file can appear before the reaping (the agent
writes while the dying process's threads still exit): then the first
figure is negative.  Then the agent's peak RSS (VmHWM, /proc/PID/status)
and CPU time (utime+stime, /proc/PID/stat) over the scenario (its start to
this point), as a percentage of one CPU over the scenario's wall time.
Then SIGTERM: the agent must exit 0 within --stop-timeout seconds
(reported if not, then killed).  Attackers are then let go (stdin closed)
and their process groups killed.

The whole set runs --rounds times (3), the scenarios in a shuffled order in
each round (the host is shared and noisy).  Reported per scenario: the
latencies (go -> file: median and maximum of the warm crashes, the 2nd to
Kth of each round, and the median of the first, cold ones; death -> file:
median of the warm ones), median peak RSS and CPU % (also from "ready"
on, without the agent's start, and in the two halves of the window), and
each as a ratio to the quiet scenario of the same round (the median of
the R ratios: "×").  JSON
goes to bench/results/hostile-<UTC time>.json, with the command line that
reproduces the run (same seed: same orders); a Markdown table is printed.

Every wait has a timeout; every process started is in a process group of
its own and is killed at the end, even on error; temporary files are
removed.
"""

import argparse
import datetime
import hashlib
import json
import os
import platform
import random
import shlex
import signal
import statistics
import sys
import time

sys.dont_write_bytecode = True  # nothing left in the tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "hostile"))

from procs import NOBODY, PRLIMIT, SETPRIV, Guard, kill_all, spawn, wait_exit  # noqa: E402
from scenarios import OBJCOPY, Run, run_scenario  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCENARIOS = ["quiet", "fifo-debuglink", "lease", "amplification", "descriptors",
             "sysdict", "lures", "names"]
FIGURES = ("cold_go_ms", "go_warm_ms", "hwm_kb", "cpu_pct", "cpu_pct_after_ready")


# ---------------------------------------------------------------- report

def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def round_figures(s):
    """One round's figures of a scenario (death -> file, near zero or
    below when warm, has no ratio)."""
    go = s.get("go_ms", [])
    return {"cold_go_ms": go[0] if go else None, "go_warm_ms": median(go[1:]),
            "hwm_kb": s.get("hwm_kb"), "cpu_pct": s.get("cpu_pct"),
            "cpu_pct_after_ready": s.get("cpu_pct_after_ready")}


def summarize(results, names):
    """Per scenario: medians over the samples, and the median over rounds of
    each figure's ratio to the quiet scenario of the same round."""
    quiet = {s["round"]: s for s in results.get("quiet", [])}
    summary = {}
    for name in names:
        samples = results.get(name, [])
        warm = [x for s in samples for x in s["latencies_ms"][1:]]
        go_warm = [x for s in samples for x in s.get("go_ms", [])[1:]]
        ratios = {k: [] for k in FIGURES}
        for s in samples:
            q = quiet.get(s["round"])
            if not q:
                continue
            mine, base = round_figures(s), round_figures(q)
            for k in ratios:
                if mine[k] is not None and base[k]:
                    ratios[k].append(mine[k] / base[k])
        per_round = [round_figures(s) for s in samples]
        summary[name] = {
            "rounds": len(samples),
            "crashes_measured": sum(len(s["latencies_ms"]) for s in samples),
            "misses": sum(s["misses"] for s in samples),
            "cold_go_ms_median": median([r["cold_go_ms"] for r in per_round]),
            "cold_death_ms_median": median([s["latencies_ms"][0] for s in samples
                                            if s["latencies_ms"]]),
            "warm_death_ms_median": median(warm),
            "warm_death_ms_max": max(warm) if warm else None,
            "go_warm_ms_median": median(go_warm),
            "go_warm_ms_max": max(go_warm) if go_warm else None,
            "hwm_kb_median": median([s.get("hwm_kb") for s in samples]),
            "cpu_pct_median": median([s.get("cpu_pct") for s in samples]),
            "cpu_pct_after_ready_median": median([s.get("cpu_pct_after_ready")
                                                  for s in samples]),
            "dwell1_cpu_pct_median": median([s.get("dwell1_cpu_pct") for s in samples]),
            "dwell2_cpu_pct_median": median([s.get("dwell2_cpu_pct") for s in samples]),
            "stage_s_median": median([s.get("stage_s") for s in samples]),
            "host_processes_at_ready_median": median([s.get("host_processes_at_ready")
                                                      for s in samples]),
            "fds_after_stage_median": median([s.get("fds_after_stage") for s in samples]),
            "ratio_to_quiet": {k: (round(median(v), 3) if v else None)
                               for k, v in ratios.items()},
            "lease_breaks_begun": [sum(1 for st in s["lease_states"] if "sigio=0" not in st)
                                   for s in samples if "lease_states" in s],
            "exits": [s.get("exit") for s in samples],
            "errors": [s["error"] for s in samples if "error" in s],
        }
    return summary


def fmt(x, spec="%.1f"):
    return "-" if x is None else spec % x


def with_ratio(x, ratio, spec="%.1f"):
    return fmt(x, spec) + ("" if ratio is None else " ×%.2f" % ratio)


def table(summary, names):
    rows = ["| scenario | go → file, ms: warm median × quiet; max | cold: 1st crash | death → file, "
            "ms: warm median | peak RSS, MB | CPU, % of the scenario | CPU, % after ready "
            "| CPU, % attack alone: 1st, 2nd half | agent fds | SIGTERM |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for name in names:
        s = summary[name]
        r = s["ratio_to_quiet"]
        go = "%s; max %s" % (with_ratio(s["go_warm_ms_median"], r["go_warm_ms"], "%.2f"),
                             fmt(s["go_warm_ms_max"]))
        if s["misses"]:
            go += ", %d missed" % s["misses"]
        if s["errors"]:
            go += ", %d rounds failed" % len(s["errors"])
        exits = set(map(str, s["exits"]))
        stop = "exit 0" if exits == {"0"} else "; ".join(sorted(exits))
        hwm = None if s["hwm_kb_median"] is None else s["hwm_kb_median"] / 1024
        rows.append("| %s | %s | %s | %s | %s | %s | %s | %s, %s | %s | %s |" % (
            name, go, with_ratio(s["cold_go_ms_median"], r["cold_go_ms"]),
            fmt(s["warm_death_ms_median"], "%.2f"), with_ratio(hwm, r["hwm_kb"]),
            with_ratio(s["cpu_pct_median"], r["cpu_pct"]),
            with_ratio(s["cpu_pct_after_ready_median"], r["cpu_pct_after_ready"]),
            fmt(s["dwell1_cpu_pct_median"]), fmt(s["dwell2_cpu_pct_median"]),
            fmt(s["fds_after_stage_median"], "%d"), stop))
    return "\n".join(rows)


def git_commit():
    """HEAD's commit, read from the repository's files (no git command)."""
    try:
        gitdir = os.path.join(REPO, ".git")
        if os.path.isfile(gitdir):
            with open(gitdir) as f:
                gitdir = os.path.join(REPO, f.read().split("gitdir:", 1)[1].strip())
        with open(os.path.join(gitdir, "HEAD")) as f:
            head = f.read().strip()
        if not head.startswith("ref: "):
            return head
        ref = head[5:]
        path = os.path.join(gitdir, ref)
        if os.path.exists(path):
            with open(path) as f:
                return f.read().strip()
        with open(os.path.join(gitdir, "packed-refs")) as f:
            for line in f:
                if line.rstrip().endswith(" " + ref):
                    return line.split()[0]
    except (OSError, IndexError):
        pass
    return None


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def environment(run):
    return {
        "kernel": platform.release(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "loadavg_at_start": os.getloadavg(),
        "git_commit": git_commit(),
        "git_note": "HEAD as read from .git; the work tree may hold uncommitted changes",
        "fh_bpf": os.path.relpath(run.fh, REPO),
        "fh_bpf_sha256": sha256(run.fh),
        "fh_bpf_mtime": datetime.datetime.fromtimestamp(
            os.path.getmtime(run.fh), datetime.timezone.utc).isoformat(),
        "lease_break_time_s": int(open("/proc/sys/fs/lease-break-time").read()),
        "python": platform.python_version(),
    }


# ---------------------------------------------------------------- main

def check_setup(run):
    if os.geteuid() != 0:
        sys.exit("hostile.py: run as root (the agent loads BPF programs; attackers are "
                 "dropped to uid %d)" % NOBODY)
    need = [run.fh, run.crash, run.hostile_py, run.park, run.fake_py, run.lure_lib, SETPRIV,
            OBJCOPY, PRLIMIT]
    missing = [p for p in need if not os.access(p, os.X_OK)]
    if missing:
        sys.exit("hostile.py: missing (build with `make OUT=%s all targets`): %s" %
                 (run.args.build, ", ".join(missing)))
    # The targets can be run by nobody from where they are.
    pid = spawn([run.hostile_py], uid=NOBODY)
    status, _ = wait_exit(pid, 30)
    if not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 2):  # its usage
        sys.exit("hostile.py: %s cannot be run as uid %d (status %#x)" %
                 (run.hostile_py, NOBODY, status))


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("build", nargs="?", default="build", help="build directory (default: build)")
    p.add_argument("--rounds", type=int, default=3, help="rounds (R, default 3)")
    p.add_argument("--crashes", type=int, default=5, help="in-scope crashes a scenario (K, 5)")
    p.add_argument("--dwell", type=float, default=4.0,
                   help="seconds of the measuring window under the attack alone (4)")
    p.add_argument("--seed", type=int, default=None, help="seed of the scenario orders")
    p.add_argument("--only", default=",".join(SCENARIOS),
                   help="comma-separated scenarios (quiet is always run)")
    p.add_argument("--agent-nofile", type=int, default=1024,
                   help="the agent's descriptor limit, soft and hard (1024; 0: inherited)")
    p.add_argument("--agent-args", default="", help="more fh-bpf arguments, one string")
    p.add_argument("--leases", type=int, default=4, help="lease holders (4)")
    p.add_argument("--parked", type=int, default=1100, help="namespaced processes (1100)")
    p.add_argument("--live", type=int, default=150, help="live fake-libpython processes (150)")
    p.add_argument("--lures", type=int, default=3000, help="lure paths mapped (3000)")
    p.add_argument("--ready-timeout", type=float, default=60)
    p.add_argument("--stage-timeout", type=float, default=180)
    p.add_argument("--crash-timeout", type=float, default=60)
    p.add_argument("--stop-timeout", type=float, default=30)
    a = p.parse_args(argv)
    names = [n for n in a.only.split(",") if n]
    bad = [n for n in names if n not in SCENARIOS]
    if bad:
        p.error("unknown scenarios: %s (known: %s)" % (", ".join(bad), ", ".join(SCENARIOS)))
    a.scenarios = ["quiet"] + [n for n in names if n != "quiet"]
    if a.crashes < 1 or a.rounds < 1:
        p.error("--crashes and --rounds must be at least 1")
    if a.crashes > 10 and "--rate-limit" not in a.agent_args:
        p.error("more than 10 crashes of one program a minute are held back by the agent's "
                "default --rate-limit 10/60: add --agent-args '--rate-limit 0'")
    if a.seed is None:
        a.seed = random.SystemRandom().randrange(1 << 31)
    return a


def reproduce_command(a):
    cmd = ["sudo", "python3", "bench/hostile.py", os.path.relpath(os.path.abspath(a.build), REPO),
           "--rounds", str(a.rounds), "--crashes", str(a.crashes), "--dwell", str(a.dwell),
           "--seed", str(a.seed), "--only", ",".join(a.scenarios),
           "--agent-nofile", str(a.agent_nofile), "--leases", str(a.leases),
           "--parked", str(a.parked), "--live", str(a.live), "--lures", str(a.lures)]
    if a.agent_args:
        cmd += ["--agent-args", a.agent_args]
    return " ".join(shlex.quote(c) for c in cmd)


def on_signal(signum, frame):
    raise KeyboardInterrupt("signal %d" % signum)


def main(argv):
    a = parse_args(argv)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    run = Run(a)
    try:
        check_setup(run)
        env = environment(run)
        run.prepare(a.scenarios)
        rng = random.Random(a.seed)
        results = {n: [] for n in a.scenarios}
        orders = []
        started = datetime.datetime.now(datetime.timezone.utc)
        for rnd in range(a.rounds):
            order = list(a.scenarios)
            rng.shuffle(order)
            orders.append(order)
            for name in order:
                t = time.monotonic()
                try:
                    s = run_scenario(run, name, rnd)
                except (Guard, OSError) as e:  # reported; the other scenarios still run
                    s = {"round": rnd, "latencies_ms": [], "misses": 0,
                         "error": "%s: %s" % (type(e).__name__, e)}
                s["order"] = order.index(name)
                results[name].append(s)
                print("round %d %-15s %5.1f s  death->file ms %s  go->file ms %s  HWM %s kB  "
                      "CPU %s %%  exit %s%s" % (
                    rnd + 1, name, time.monotonic() - t, s["latencies_ms"], s.get("go_ms"),
                    s.get("hwm_kb"),
                    s.get("cpu_pct"), s.get("exit"),
                    ("  ERROR " + s["error"]) if "error" in s else ""),
                    file=sys.stderr, flush=True)
        summary = summarize(results, a.scenarios)
        md = table(summary, a.scenarios)
        stamp = started.strftime("%Y%m%dT%H%M%SZ")
        doc = {
            "what": "fh-bpf -a against hostile local users: in-scope crash latency, peak RSS "
                    "and CPU of the agent per attack, against a quiet host",
            "started_utc": started.isoformat(),
            "command": reproduce_command(a),
            "environment": env,
            "parameters": {k: getattr(a, k) for k in (
                "rounds", "crashes", "dwell", "seed", "agent_nofile", "agent_args", "leases",
                "parked", "live", "lures", "ready_timeout", "stage_timeout", "crash_timeout",
                "stop_timeout")},
            "in_scope_crash": "crash --threads 4 --report 3 --go 4 segv (root), parked, then let go",
            "agent": "fh-bpf -a --log-dir DIR --ready-fd 3 " + a.agent_args,
            "orders": orders,
            "scenarios": {n: {"summary": summary[n], "samples": results[n]}
                          for n in a.scenarios},
            "table_markdown": md,
        }
        out_dir = os.path.join(REPO, "bench", "results")
        os.makedirs(out_dir, exist_ok=True)
        path = os.path.join(out_dir, "hostile-%s.json" % stamp)
        with open(path, "w") as f:
            json.dump(doc, f, indent=1)
        print()
        print(md)
        print()
        print("Reproduce: " + doc["command"])
        print("JSON: " + os.path.relpath(path, REPO))
        return 0
    finally:
        kill_all()
        run.cleanup()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
