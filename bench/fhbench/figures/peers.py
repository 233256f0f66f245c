"""The BPF peers on the job "every thread's stack, now": bpftrace and BCC.

Target: targets/crash --threads 9 --spinners 1 --auto wait (10 threads, one
on a CPU).  bpftrace samples on-CPU stacks (`profile:hz:99`, for 1 s) and
walks frame pointers (-O2 code without them gives one good frame, then
garbage); BCC's profile-bpfcc compiles its C with LLVM against the running
kernel's headers at start.  Each is run against `fh-bpf -p PID --dump` on
the same target, interleaved; besides the wall time, how many of the
target's threads each one showed.  The bench only looks for these tools
(bpftrace, and profile-bpfcc of Debian's bpfcc-tools); it never installs
them.
"""

from __future__ import annotations

import os
import re
import shutil

from ..procs import Setup, crash_waiting, oneshot_dump, timed
from ..results import Figure, Peer, not_measured, reproduce
from . import Option

NAME = "peers"
TITLE = "BPF peers"
OPTIONS = [Option("pairs", int, 3, 1, "fh-bpf --dump / peer pairs, interleaved")]
THREADS = 10


def bcc_profile() -> str | None:
    for path in ("/usr/sbin/profile-bpfcc", "/usr/share/bcc/tools/profile"):
        if os.access(path, os.X_OK):
            return path
    return shutil.which("profile-bpfcc")


def tools(pid: int) -> list[tuple[str, list[str] | None, str]]:
    """(name, argv or None if missing, what shows a thread in its output)."""
    bt = shutil.which("bpftrace")
    prog = ("profile:hz:99 /pid == %d/ { @[tid, ustack(16)] = count(); } "
            "interval:s:1 { exit(); }" % pid)
    bcc = bcc_profile()
    return [("bpftrace profile 1 s", [bt, "-e", prog] if bt else None, r"^@\[(\d+),"),
            ("BCC profile 1 s", [bcc, "-U", "-f", "-p", str(pid), "1"] if bcc else None,
             r"^\S+;")]


def shown(path: str, pattern: str) -> int:
    rx = re.compile(pattern)
    seen = set()
    with open(path, errors="replace") as f:
        for line in f:
            m = rx.search(line)
            if m:
                seen.add(m.group(1) if m.groups() else line)
    return len(seen)


def run(setup: Setup, opts: dict) -> list[Figure]:
    repro = reproduce(NAME, setup, pairs=opts["pairs"])
    if not os.path.isdir("/sys/kernel/tracing/events"):
        os.system("mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null")
    target = crash_waiting(setup, THREADS - 1, spinners=1)
    figures = []
    try:
        for label, argv, rx in tools(target.pid):
            name = "every thread's stack: fh-bpf --dump vs " + label
            if argv is None:
                figures.append(not_measured(NAME, name, label.split()[0] + " is not installed "
                                            "(looked for, never installed)", repro,
                                            threads=THREADS))
                continue
            out = setup.raw("peers.%s.txt" % label.split()[0])
            fh, peer, seen = [], [], []
            for _ in range(opts["pairs"]):
                wall, _ = oneshot_dump(setup, target.pid, 256, setup.raw("peers.dump.txt"),
                                       cpu=setup.cpu_watcher)
                fh.append(wall)
                peer.append(timed(argv, out, cpu=setup.cpu_watcher))
                seen.append(shown(out, rx))
            figures.append(Figure(
                NAME, name, "wall time of the whole command", "ms", fh,
                params={"threads": THREADS},
                peer=Peer(label, " ".join(argv[:1] + ["..."]), peer,
                          ["threads shown: %s of %d (on-CPU only)" % (seen, THREADS)]),
                raw=[setup.rel(out)], reproduce=repro))
    finally:
        target.end()
    return figures
