"""fh-bpf incidents list on a log directory of FILES incidents.

One real record first: `fh-bpf --format json -o FILE -- crash --auto
--threads 4 segv`.  From it, FILES log-directory files, named as the agent
names them, each a second after the last (its `time` and name changed,
nothing else).  Then RUNS of `fh-bpf incidents list --log-dir DIR`, each
timed by the bench's clock from launch to exit (process start, every file
read and parsed back into the model, the lines written); the first is
cold only as far as the page cache is (the files were just written).
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import time

from ..procs import Setup, start, wait
from ..results import Figure, not_measured, reproduce
from . import Option

NAME = "incidents-list"
TITLE = "incidents list, 1,000 incidents"
OPTIONS = [Option("files", int, 1000, 1000, "incidents in the log directory"),
           Option("runs", int, 11, 5, "runs of incidents list")]


def one_record(setup: Setup) -> str | None:
    out = setup.temp("incidents-list.record.json")
    p = start([setup.fh, "--format", "json", "-o", out, "--", setup.crash, "--auto",
               "--threads", "4", "segv"])
    wait(p, setup.limit, "fh-bpf -- crash")
    with open(out, encoding="utf-8") as f:
        line = f.readline()
    return line if line.strip() else None


def log_dir(setup: Setup, record: str, files: int) -> str:
    d = setup.temp("incidents-list.logdir")
    os.makedirs(d, mode=0o700, exist_ok=True)
    base = json.loads(record)
    t0 = datetime.datetime(2026, 12, 1, 10, 0, 0, tzinfo=datetime.timezone.utc)
    for i in range(files):
        t = t0 + datetime.timedelta(seconds=i, microseconds=i)
        base["time"] = t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        name = "%s-%s-%d-SIGSEGV.json" % (t.strftime("%Y%m%dT%H%M%S.%fZ"), base["comm"],
                                          base["pid"])
        path = os.path.join(d, name)
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w",
                  encoding="utf-8") as f:
            f.write(json.dumps(base, ensure_ascii=False) + "\n")
    return d


def run(setup: Setup, opts: dict) -> list[Figure]:
    repro = reproduce(NAME, setup, files=opts["files"], runs=opts["runs"])
    record = one_record(setup)
    if record is None:
        return [not_measured(NAME, "incidents list", "the crash gave no record", repro)]
    d = log_dir(setup, record, opts["files"])
    wall, notes = [], []
    for _ in range(opts["runs"]):
        t = time.perf_counter()
        p = start([setup.fh, "incidents", "list", "--log-dir", d], stdout=subprocess.PIPE)
        out = p.stdout.read()
        rc = wait(p, setup.limit, "incidents list")
        wall.append((time.perf_counter() - t) * 1e3)
        lines = out.count(b"\n")
        if rc != 0 or lines != opts["files"]:
            notes.append("status %d, %d lines (%d expected)" % (rc, lines, opts["files"]))
    size = sum(os.path.getsize(os.path.join(d, n)) for n in os.listdir(d))
    p = {"files": opts["files"], "record_bytes": len(record.encode())}
    return [Figure(NAME, "incidents list, wall",
                   "the bench's clock from launching fh-bpf incidents list to its exit", "ms",
                   wall, params=p,
                   notes=["log directory %.1f MB" % (size / 1e6)] + sorted(set(notes)),
                   reproduce=repro)]
