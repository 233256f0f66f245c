"""The same Python job done by gdb: `thread apply all py-bt`.

On the py-dump figure's target (py_target.py dump THREADS, parked after its
own dump): `fh-bpf -p PID --dump` (the whole command; the target is never
stopped) against `gdb -p PID -batch -ex "thread apply all py-bt"` (which
stops every thread while it runs), interleaved: fh-bpf, gdb, fh-bpf, gdb...

py-bt needs the interpreter's gdb extension (python3.X-gdb.py) and debug
symbols.  pyenv's build ships both (bin/python3.11-gdb.py, an unstripped
libpython); Debian's /usr/bin/python3.11 has them only with the
python3.11-dbg package, which the bench looks for and never installs (its
debug files would change what fh-bpf itself finds for that build).  How
many Python frames each tool printed is given beside the times.
"""

from __future__ import annotations

import os
import shutil

from ..procs import Setup, py_label
from ..results import Figure, not_measured, reproduce
from . import Option, ints
from .ptrace import count_lines, versus
from .py_dump import dump_target

NAME = "py-bt"
TITLE = "against gdb py-bt"
OPTIONS = [Option("threads", ints, [10, 100], [10], "worker threads of the target (+ main)"),
           Option("pairs", int, 5, 2, "fh-bpf / gdb pairs, interleaved")]
DEBIAN_EXT = "/usr/share/gdb/auto-load/usr/bin/python3.11-gdb.py"  # python3.11-dbg


def gdb_extension(py: str) -> str | None:
    """The py-bt extension of an interpreter, if it is installed."""
    real = os.path.realpath(py)
    for ext in (real + "-gdb.py", DEBIAN_EXT if real.startswith("/usr/bin/") else ""):
        if ext and os.path.exists(ext):
            return ext
    return None


def run(setup: Setup, opts: dict) -> list[Figure]:
    figures = []
    for n in opts["threads"]:
        repro = reproduce(NAME, setup, threads=n, pairs=opts["pairs"])
        for py in setup.pythons():
            label = py_label(py)
            name = "Python threads now: fh-bpf --dump vs gdb py-bt"
            ext = gdb_extension(py)
            if not shutil.which("gdb") or not ext:
                why = ("gdb is not installed" if not shutil.which("gdb") else
                       "no py-bt extension for %s (Debian: the python3.11-dbg package, "
                       "not installed by the bench)" % py)
                figures.append(not_measured(NAME, name, why, repro, python=label,
                                            threads="%d+1" % n))
                continue
            tag = "py-bt-%s-%d" % (label.replace(" ", "-"), n)
            target, _ = dump_target(setup, py, n, tag)
            argv = ["gdb", "-nx", "-iex", "add-auto-load-safe-path " + ext, "-batch",
                    "-ex", "source " + ext, "-ex", "thread apply all py-bt", "-p"]
            try:
                fig = versus(setup, target.pid, n + 1, "gdb py-bt", argv, r"^Thread \d+ ",
                             opts["pairs"], tag, repro, figure=NAME)
                target.send("exit")
                target.end(sig=None)
            finally:
                target.close_input()
            fig.name, fig.params = name, {"python": label, "threads": "%d+1" % n}
            if fig.peer:
                out = setup.raw(tag + ".gdb.txt")
                dump = setup.raw(tag + ".fh-bpf-dump.txt")
                fig.peer.command = 'gdb -p PID -batch -ex "thread apply all py-bt"'
                fig.peer.notes.append(
                    "its frames: %d 'File' lines, %d 'Python Exception', %d 'Unable to "
                    "locate python frame' (fh-bpf --dump: %d 'File' lines; faulthandler "
                    "stops at 100 frames a thread, py-bt does not)" % (
                        count_lines(out, r'^ +File "'), count_lines(out, "Python Exception"),
                        count_lines(out, "Unable to locate python frame"),
                        count_lines(dump, r'^ +File "')))
                fig.peer.notes.append("extension: " + ext)
            figures.append(fig)
    return figures
