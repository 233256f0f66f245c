"""The bench's command line: run figures, render a report, list figures.

    python3 bench/fhbench run [FIGURE ...] [--quick] [--build DIR] [--limit S]
                              [--out FILE] [FIGURE OPTIONS]
    python3 bench/fhbench report RESULTS.json [--figures F,...] [--readme README.md]
    python3 bench/fhbench list

`run` with no FIGURE takes every figure (what `make bench` runs), in the
order of `list`; --quick takes fewer samples and smaller thread counts
(a whole run in a few minutes).  A figure's options (--threads 10,100,
--pairs 5, ...) apply to every figure named that has them; the JSON of
each figure says the exact command that takes it again.  Run as root.
Results: bench/results/fhbench-UTCSTAMP.json, raw logs (fh-bpf's stderr
and --stats-fd lines, tracebacks, the peers' output) in
bench/results/fhbench-UTCSTAMP/.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import signal
import subprocess
import sys
import time
import traceback

from . import figures as figs
from . import report
from .procs import REPO, Guard, Setup, kill_all
from .results import Figure, environment, now_utc


def on_signal(signum, frame):
    raise KeyboardInterrupt("signal %d" % signum)


def run_parser(modules: list) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python3 bench/fhbench run",
                                description="Take fh-bpf's benchmark figures.")
    p.add_argument("figure", nargs="*", help="figures to take (default: all; see `list`)")
    p.add_argument("--quick", action="store_true",
                   help="fewer samples, smaller thread counts: a whole run in minutes")
    p.add_argument("--build", default=os.path.join(REPO, "build"),
                   help="build directory (default: build, in the repository)")
    p.add_argument("--limit", type=float, default=60,
                   help="seconds any single wait may take (default 60)")
    p.add_argument("--out", help="results file (default: bench/results/fhbench-STAMP.json)")
    seen = {}
    for m in modules:
        for o in m.OPTIONS:
            if o.name in seen:
                continue
            seen[o.name] = o
            p.add_argument("--" + o.name.replace("_", "-"), dest=o.name, type=o.parse,
                           default=None, help="%s (%s: %s)" % (o.help, m.NAME, o.default))
    return p


def select(names: list[str]) -> list:
    if not names or names == ["all"]:
        return figs.modules()
    try:
        return [figs.by_name(n) for n in names]
    except KeyError as e:
        raise SystemExit("fhbench: no figure %s (see `python3 bench/fhbench list`)" % e)


def take(setup: Setup, module, opts: dict) -> tuple[list[dict], str | None]:
    """One figure module's records; a failure is a record that says so."""
    try:
        records = module.run(setup, opts)
        return [r.to_json() for r in records], None
    except Exception as e:  # reported in the results; the other figures still run
        if not isinstance(e, (Guard, OSError, subprocess.SubprocessError)):
            traceback.print_exc()
        why = "%s: %s" % (type(e).__name__, e)
        fig = Figure(module.NAME, module.TITLE, "-", "-", [], status="failed: " + why,
                     params={})
        return [fig.to_json()], why


def write(doc: dict, path: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=1, ensure_ascii=False)
        f.write("\n")
    os.replace(tmp, path)


def run(argv: list[str]) -> int:
    args = run_parser(figs.modules()).parse_args(argv)
    modules = select(args.figure)
    started = now_utc()
    stamp = started.strftime("fhbench-%Y%m%dT%H%M%SZ")
    setup = Setup(args.build, args.quick, args.limit, stamp)
    path = args.out or os.path.join(setup.results, stamp + ".json")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # the targets die of signals
    setup.check()
    doc = {
        "what": "fh-bpf benchmark figures",
        "schema": 1,
        "command": " ".join(["python3", "bench/fhbench", "run"] +
                            [shlex.quote(a) for a in argv]),
        "quick": args.quick,
        "started_utc": started.isoformat(timespec="seconds"),
        "environment": environment(setup),
        "raw_dir": setup.rel(setup.raw_dir),
        "modules": [],
        "figures": [],
    }
    print("fh-bpf benchmark %s: kernel %s, %d CPUs, load average %s; fh-bpf %s" % (
        doc["started_utc"], doc["environment"]["kernel"], doc["environment"]["cpus"],
        " ".join("%.2f" % x for x in doc["environment"]["loadavg_at_start"]),
        (doc["environment"]["git_revision"] or "?")[:12]), flush=True)
    failed = 0
    t_run = time.monotonic()
    try:
        for m in modules:
            opts = {o.name: o.value(getattr(args, o.name), args.quick) for o in m.OPTIONS}
            print("[%s] %s  %s" % (m.NAME, m.TITLE, " ".join(
                "--%s %s" % (k.replace("_", "-"), ",".join(map(str, v)) if isinstance(v, list)
                             else v) for k, v in opts.items())), flush=True)
            t0 = time.monotonic()
            records, error = take(setup, m, opts)
            kill_all()  # nothing of one figure outlives it
            failed += error is not None
            doc["modules"].append({"figure": m.NAME, "options": opts, "error": error,
                                   "seconds": round(time.monotonic() - t0, 1)})
            doc["figures"] += records
            for r in records:
                print(report.summary_line(r), flush=True)
            write(doc, path)
    finally:
        kill_all()
        setup.cleanup()
        doc["finished_utc"] = now_utc().isoformat(timespec="seconds")
        doc["seconds"] = round(time.monotonic() - t_run, 1)
        doc["environment"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
        write(doc, path)
    print()
    print(report.caption(doc, path))
    print()
    print(report.table(doc))
    print()
    print("JSON: %s   raw logs: %s/" % (setup.rel(os.path.abspath(path)), doc["raw_dir"]))
    return 1 if failed else 0


def list_figures() -> int:
    for m in figs.modules():
        doc = (m.__doc__ or "").strip().splitlines()[0]
        print("%-14s %s" % (m.NAME, doc))
        for o in m.OPTIONS:
            print("    --%-14s %s (default %s, --quick %s)" % (
                o.name.replace("_", "-"), o.help, o.default, o.quick))
    return 0


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if argv else 2
    cmd, rest = argv[0], argv[1:]
    if cmd == "run":
        return run(rest)
    if cmd == "report":
        p = argparse.ArgumentParser(prog="python3 bench/fhbench report")
        p.add_argument("results", help="a run's JSON (bench/results/fhbench-*.json)")
        p.add_argument("--figures", help="only these figures, comma-separated")
        p.add_argument("--readme", help="render into this README's marked blocks")
        a = p.parse_args(rest)
        return report.main(a.results, a.figures, a.readme)
    if cmd == "list":
        return list_figures()
    print("fhbench: unknown command %r (run, report, list)" % cmd, file=sys.stderr)
    return 2
