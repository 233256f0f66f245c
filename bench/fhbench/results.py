"""Results of a run as JSON: the environment, then one record per figure
(name, metric, unit, samples, median, spread, the peer's samples and the
ratio where there is a peer, the aim and whether it was met, and the
command that reproduces it)."""

from __future__ import annotations

import datetime
import os
import platform
import shlex
import subprocess
from dataclasses import dataclass, field

from . import stats
from .procs import REPO, Setup


@dataclass
class Aim:
    """A figure's aim: the median must be at most (or at least) value."""
    value: float
    source: str
    at_most: bool = True

    def met(self, median: float | None) -> bool | None:
        if median is None:
            return None
        return median <= self.value if self.at_most else median >= self.value

    def to_json(self) -> dict:
        return {"op": "<=" if self.at_most else ">=", "value": self.value,
                "source": self.source}


@dataclass
class Peer:
    """The same job done by another tool, measured in the same run; its
    samples taken each right after the matching fh-bpf sample."""
    name: str
    command: str
    samples: list
    notes: list = field(default_factory=list)


@dataclass
class Figure:
    figure: str             # the module that measures it (`run FIGURE`)
    name: str               # what it is, in words
    metric: str             # what each sample is and where it comes from
    unit: str
    samples: list
    params: dict = field(default_factory=dict)
    peer: Peer | None = None
    aim: Aim | None = None
    notes: list = field(default_factory=list)
    raw: list = field(default_factory=list)
    reproduce: str = ""
    status: str = "measured"  # or "not measured: WHY"

    def to_json(self) -> dict:
        med = stats.median(self.samples)
        doc = {
            "figure": self.figure,
            "name": self.name,
            "metric": self.metric,
            "unit": self.unit,
            "params": self.params,
            "status": self.status,
            "samples": [stats.rounded(x) for x in self.samples],
            "median": stats.rounded(med),
            "spread": _rounded(stats.spread(self.samples)),
            "peer": None,
            "ratio": None,
            "aim": self.aim.to_json() if self.aim else None,
            "met": self.aim.met(med) if self.aim else None,
            "reproduce": self.reproduce,
            "notes": self.notes,
            "raw": self.raw,
        }
        if self.peer:
            doc["peer"] = {
                "name": self.peer.name,
                "command": self.peer.command,
                "samples": [stats.rounded(x) for x in self.peer.samples],
                "median": stats.rounded(stats.median(self.peer.samples)),
                "spread": _rounded(stats.spread(self.peer.samples)),
                "notes": self.peer.notes,
            }
            doc["ratio"] = _rounded(stats.paired(self.samples, self.peer.samples))
        return doc


def _rounded(d: dict | None) -> dict | None:
    if d is None:
        return None
    return {k: stats.rounded(v) if isinstance(v, float) else v for k, v in d.items()}


def not_measured(figure: str, name: str, why: str, reproduce: str, **params) -> Figure:
    """A figure that could not be taken on this host, and why."""
    return Figure(figure, name, "-", "-", [], params=params, status="not measured: " + why,
                  reproduce=reproduce)


def reproduce(figure: str, setup: Setup, **params) -> str:
    """The command that takes this figure again, alone."""
    argv = ["python3", "bench/fhbench", "run", figure]
    if setup.build != os.path.join(REPO, "build"):
        argv += ["--build", setup.rel(setup.build)]
    for k, v in params.items():
        if v is None:
            continue
        argv += ["--" + k.replace("_", "-"), ",".join(map(str, v)) if isinstance(v, (list, tuple))
                 else str(v)]
    return " ".join(shlex.quote(a) for a in argv)


# ---------------------------------------------------------------- environment

def git(*args: str) -> str | None:
    try:
        r = subprocess.run(["git", "-C", REPO] + list(args), capture_output=True, text=True,
                           timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return r.stdout.strip() if r.returncode == 0 else None


def cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def fh_version(setup: Setup) -> str | None:
    r = subprocess.run([setup.fh, "--version"], capture_output=True, text=True)
    return (r.stdout or r.stderr).strip().splitlines()[0] if r.returncode == 0 else None


def environment(setup: Setup) -> dict:
    """Where and on what the figures were taken."""
    from .procs import py_label
    # What of the tree differs from the revision, documentation aside.
    status = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!*.md")
    return {
        "kernel": platform.release(),
        "machine": platform.machine(),
        "cpu_model": cpu_model(),
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "fh_bpf_version": fh_version(setup),
        "git_revision": git("rev-parse", "HEAD"),
        "git_branch": git("rev-parse", "--abbrev-ref", "HEAD"),
        "git_modified": bool(status) if status is not None else None,
        "git_modified_files": [l.split(maxsplit=1)[1] for l in (status or "").splitlines()],
        "build": setup.rel(setup.build),
        "python_driver": platform.python_version(),
        "pythons_measured": {p: py_label(p) for p in setup.pythons()},
        "pinning": ({"targets": "CPU %d" % setup.cpu_target,
                     "watchers_and_peers": "CPU %d" % setup.cpu_watcher}
                    if setup.cpu_target is not None else None),
    }


def now_utc() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)
