"""Processes, pipes and targets of the bench.

Every process the bench starts is in a process group of its own, is waited
for with a time limit, and is killed at the end (even on error).  Every
synchronisation is a line on a pipe: a target says "ready" once its threads
are parked, fh-bpf writes "ready" on --ready-fd once armed and its own
timings on --stats-fd (JSON lines: "armed", one "event" per incident
written, "end").  Nothing waits by sleeping, and no prose is parsed.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from typing import Callable, Iterable

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CC_FLAGS = ["-O2", "-g", "-fomit-frame-pointer", "-pthread"]  # as the test targets
BENCH_TARGETS = ("fault_loop", "count_loop", "signal_loop", "signal_toggle", "fork_loop")
# CPython 3.11 twice over: pyenv's build and Debian's (stripped) one.
PYTHONS = ("/root/.pyenv/versions/3.11.7/bin/python3", "/usr/bin/python3.11")
TASKSET = shutil.which("taskset")


class Guard(Exception):
    """A wait that ran out of time, or a step that did not go as planned."""


# ---------------------------------------------------------------- processes

CHILDREN: dict[int, subprocess.Popen] = {}  # started and not yet reaped


def start(argv: list[str], *, stdin=None, stdout=None, stderr=None,
          pass_fds: Iterable[int] = (), cpu: int | None = None) -> subprocess.Popen:
    """Starts argv in a session (and process group) of its own, on CPU
    cpu if given (taskset, which executes argv in the same process)."""
    if cpu is not None and TASKSET:
        argv = [TASKSET, "-c", str(cpu)] + list(argv)
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL if stdin is None else stdin,
                         stdout=subprocess.DEVNULL if stdout is None else stdout,
                         stderr=subprocess.DEVNULL if stderr is None else stderr,
                         pass_fds=tuple(pass_fds), start_new_session=True)
    CHILDREN[p.pid] = p
    return p


def wait(p: subprocess.Popen, timeout: float, what: str = "") -> int:
    """Its exit status (negative: the signal that ended it), within timeout.
    Woken by its pidfd the moment it exits: Popen.wait(timeout) alone polls
    with sleeps that double up to 50 ms, which would add up to half a
    command's time to what is measured."""
    try:
        fd = os.pidfd_open(p.pid)
    except (AttributeError, OSError):
        fd = None
    if fd is not None:
        try:
            select.select([fd], [], [], timeout)
        finally:
            os.close(fd)
    try:
        rc = p.wait(timeout)
    except subprocess.TimeoutExpired:
        raise Guard("%s (pid %d) still running after %.0f s" % (what or p.args[0], p.pid,
                                                                timeout)) from None
    CHILDREN.pop(p.pid, None)
    return rc


def stop(p: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 10) -> int:
    """Sends sig, waits; SIGKILL to its group if it outlives timeout."""
    try:
        os.kill(p.pid, sig)
    except ProcessLookupError:
        pass
    try:
        return wait(p, timeout)
    except Guard:
        killpg(p)
        return wait(p, 10)


def killpg(p: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    try:
        os.killpg(p.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def kill_all() -> None:
    """Ends every process still running: SIGTERM to its group (fh-bpf
    detaches), then SIGKILL after 3 s."""
    for p in list(CHILDREN.values()):
        if p.poll() is None:
            killpg(p, signal.SIGTERM)
    deadline = time.monotonic() + 3
    for p in list(CHILDREN.values()):
        try:
            p.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            killpg(p)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                pass
        CHILDREN.pop(p.pid, None)


def readable(fd: int, timeout: float) -> bool:
    p = select.poll()
    p.register(fd, select.POLLIN | select.POLLHUP)
    return bool(p.poll(max(timeout, 0) * 1000))


class LineReader:
    """Lines from a pipe, each within a time limit; an end of file is an
    error (the writer died), said with what it was."""

    def __init__(self, fd: int, what: str, log: str | None = None):
        self.fd, self.what, self.buf = fd, what, b""
        self.log = open(log, "ab") if log else None

    def line(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            if not readable(self.fd, deadline - time.monotonic()):
                raise Guard("%s: no line within %.0f s" % (self.what, timeout))
            chunk = os.read(self.fd, 65536)
            if not chunk:
                raise EOFError(self.what)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        if self.log:
            self.log.write(line + b"\n")
            self.log.flush()
        return line.decode(errors="replace")

    def expect(self, want: str, timeout: float) -> None:
        """Reads lines until one equals want."""
        try:
            while self.line(timeout) != want:
                pass
        except EOFError:
            raise Guard("%s ended before saying %r" % (self.what, want)) from None

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        if self.log:
            self.log.close()
            self.log = None


# ---------------------------------------------------------------- the setup

class Setup:
    """What a run shares: paths, the run's directory of raw logs, the CPU
    placement, time limits, and measurements shared by several figures."""

    def __init__(self, build: str, quick: bool, limit: float, stamp: str):
        self.build = os.path.abspath(build)
        self.quick = quick
        self.limit = limit
        self.fh = os.path.join(self.build, "fh-bpf")
        self.crash = os.path.join(self.build, "targets", "crash")
        self.py_target = os.path.join(REPO, "tests", "targets", "py_target.py")
        self.count_py = os.path.join(REPO, "bench", "count_loop.py")
        self.results = os.path.join(REPO, "bench", "results")
        self.raw_dir = os.path.join(self.results, stamp)
        self.tmp = tempfile.mkdtemp(prefix="fh-bench-")
        self.cache: dict = {}
        # With two CPUs or more, targets run on CPU 1 and watchers and peers
        # on CPU 0, the same in every run, to keep the scheduler's placement
        # out of comparisons.
        two = len(os.sched_getaffinity(0)) >= 2 and TASKSET is not None
        self.cpu_target, self.cpu_watcher = (1, 0) if two else (None, None)

    def bin(self, name: str) -> str:
        """A bench target compiled into BUILD/bench."""
        return os.path.join(self.build, "bench", name)

    def raw(self, name: str) -> str:
        """A raw log of this run (kept in bench/results/STAMP/)."""
        os.makedirs(self.raw_dir, exist_ok=True)
        return os.path.join(self.raw_dir, name)

    def rel(self, path: str) -> str:
        return os.path.relpath(path, REPO) if path.startswith(REPO + os.sep) else path

    def temp(self, name: str) -> str:
        return os.path.join(self.tmp, name)

    def pythons(self) -> list[str]:
        return [p for p in PYTHONS if os.access(p, os.X_OK)]

    def check(self) -> None:
        """Root, fh-bpf and the targets built; the bench's own targets
        compiled when missing or older than their source."""
        if os.geteuid() != 0:
            raise SystemExit("fhbench: run as root (fh-bpf needs CAP_BPF and CAP_PERFMON)")
        for path, how in ((self.fh, "make"), (self.crash, "make targets")):
            if not os.access(path, os.X_OK):
                raise SystemExit("fhbench: %s missing: run %s" % (self.rel(path), how))
        os.makedirs(os.path.join(self.build, "bench"), exist_ok=True)
        for name in BENCH_TARGETS:
            src, out = os.path.join(REPO, "bench", name + ".c"), self.bin(name)
            if os.path.exists(out) and os.path.getmtime(out) >= os.path.getmtime(src):
                continue
            cc = os.environ.get("CC", "cc").split() + CC_FLAGS + [src, "-o", out]
            print("  CC       %s   (%s)" % (self.rel(out), " ".join(cc)), flush=True)
            subprocess.run(cc, check=True)

    def cleanup(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


# ---------------------------------------------------------------- fh-bpf

class Stats:
    """fh-bpf's --stats-fd: its JSON lines, read by a thread of their own as
    they come (a watcher dumping every 10 ms writes more than a pipe holds
    while the bench waits for something else), and kept in a raw log."""

    def __init__(self, fd: int, log: str, cpu: int | None = None):
        self.reader = LineReader(fd, "fh-bpf --stats-fd", log)
        self.cpu = cpu  # the reading thread's CPU: the watcher's, off the target's
        self.objects: list[dict] = []
        self.taken = 0  # objects already handed out by next()
        self.closed = False
        self.cv = threading.Condition()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        if self.cpu is not None:
            os.sched_setaffinity(threading.get_native_id(), {self.cpu})
        while True:
            try:
                line = self.reader.line(3600)
                o = json.loads(line)
            except (EOFError, Guard, OSError):
                break
            except ValueError:
                o = {"type": "unreadable", "text": line}
            with self.cv:
                self.objects.append(o)
                self.cv.notify_all()
        with self.cv:
            self.closed = True
            self.cv.notify_all()

    def of(self, kind: str) -> list[dict]:
        with self.cv:
            return [o for o in self.objects if o.get("type") == kind]

    @property
    def events(self) -> list[dict]:
        return self.of("event")

    @property
    def armed(self) -> dict | None:
        return next(iter(self.of("armed")), None)

    @property
    def end(self) -> dict | None:
        return next(iter(self.of("end")), None)

    def next(self, kind: str, timeout: float,
             match: Callable[[dict], bool] | None = None) -> dict:
        """The next object of that type (and matching) not handed out yet,
        within timeout."""
        deadline = time.monotonic() + timeout
        with self.cv:
            while True:
                while self.taken < len(self.objects):
                    o = self.objects[self.taken]
                    self.taken += 1
                    if o.get("type") == kind and (match is None or match(o)):
                        return o
                left = deadline - time.monotonic()
                if self.closed or left <= 0:
                    raise Guard("fh-bpf's --stats-fd %s before an %r line" % (
                        "ended" if self.closed else "gave nothing for %.0f s" % timeout, kind))
                self.cv.wait(left)

    def first(self, kind: str, timeout: float) -> dict:
        """The first object of that type, whenever it came (next() is not
        moved)."""
        with self.cv:
            if not self.cv.wait_for(lambda: self.closed or any(
                    o.get("type") == kind for o in self.objects), timeout):
                raise Guard("fh-bpf's --stats-fd gave no %r line in %.0f s" % (kind, timeout))
        found = self.of(kind)
        if not found:
            raise Guard("fh-bpf's --stats-fd ended before an %r line" % kind)
        return found[0]

    def drain(self, timeout: float) -> dict | None:
        """Waits for the end of the channel: the "end" object."""
        self.thread.join(timeout)
        return self.end

    def close(self) -> None:
        if self.thread.is_alive():
            return  # the writer is still there: the thread ends with it
        self.reader.close()


class FhBpf:
    """fh-bpf with --ready-fd and --stats-fd on pipes of the bench, armed
    when the constructor returns; its stderr goes to a raw log."""

    def __init__(self, setup: Setup, args: list[str], tag: str, cpu: int | None = None):
        self.setup, self.tag = setup, tag
        self.err = setup.raw(tag + ".stderr")
        ready_r, ready_w = os.pipe()
        stats_r, stats_w = os.pipe()
        self.argv = [setup.fh] + list(args) + ["--ready-fd", str(ready_w),
                                               "--stats-fd", str(stats_w)]
        t0 = time.monotonic()
        try:
            with open(self.err, "ab") as err:
                self.proc = start(self.argv, stderr=err, pass_fds=(ready_w, stats_w), cpu=cpu)
        finally:
            os.close(ready_w)
            os.close(stats_w)
        self.stats = Stats(stats_r, setup.raw(tag + ".stats.jsonl"), cpu)
        ready = LineReader(ready_r, "fh-bpf --ready-fd")
        try:
            ready.expect("ready", setup.limit)
        except Guard as e:
            self.stats.close()
            stop(self.proc, signal.SIGKILL)
            raise Guard("%s; its stderr: %s" % (e, tail(self.err))) from None
        finally:
            ready.close()
        self.ready_ms = (time.monotonic() - t0) * 1e3
        self.pid = self.proc.pid

    @property
    def armed(self) -> dict:
        return self.stats.first("armed", self.setup.limit)

    def event(self, match: Callable[[dict], bool] | None = None) -> dict:
        """The next incident written, from --stats-fd."""
        try:
            return self.stats.next("event", self.setup.limit, match)
        except Guard as e:
            raise Guard("%s; its stderr: %s" % (e, tail(self.err))) from None

    def finish(self, sig: int | None = None) -> tuple[int, dict | None]:
        """Sends sig if given (SIGTERM detaches), then waits for fh-bpf's
        end: (exit status, its "end" object)."""
        if sig is not None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass
        end = self.stats.drain(self.setup.limit)
        rc = wait(self.proc, self.setup.limit, "fh-bpf")
        self.stats.close()
        return rc, end


def tail(path: str, n: int = 3) -> str:
    """The last lines of a log, for an error message."""
    try:
        with open(path, errors="replace") as f:
            lines = [l.rstrip() for l in f if l.strip()]
    except OSError:
        return "(none)"
    return " | ".join(lines[-n:]) or "(empty)"


def dump_command(setup: Setup, pid: int, max_threads: int, out: str,
                 cpu: int | None = None, args: Iterable[str] = ()) -> dict:
    """`fh-bpf -p PID --dump -o OUT [ARGS]`, the whole command (start, BPF
    load or memory read, symbols, print, exit): its wall time in ms (None
    if it failed), its --stats-fd event and "end" object, its exit status."""
    r, w = os.pipe()
    argv = [setup.fh, "-p", str(pid), "--dump", "--max-threads", str(max_threads),
            "-o", out, "--stats-fd", str(w)] + list(args)
    t0 = time.monotonic()
    with open(setup.raw("oneshot-dump.stderr"), "ab") as err:
        p = start(argv, stderr=err, pass_fds=(w,), cpu=cpu)
    os.close(w)
    stats = Stats(r, setup.raw("oneshot-dump.stats.jsonl"))
    rc = wait(p, setup.limit, "fh-bpf --dump")
    wall = (time.monotonic() - t0) * 1e3
    stats.drain(setup.limit)
    stats.close()
    return {"wall_ms": wall if rc == 0 else None, "rc": rc,
            "event": stats.events[0] if stats.events else None, "end": stats.end}


def oneshot_dump(setup: Setup, pid: int, max_threads: int, out: str,
                 cpu: int | None = None, args: Iterable[str] = ()) -> tuple[float, dict | None]:
    """dump_command's wall time in ms and its event; (None, None) if it
    failed."""
    d = dump_command(setup, pid, max_threads, out, cpu, args)
    if d["rc"] != 0:
        return None, None
    return d["wall_ms"], d["event"]


def timed(argv: list[str], out: str, cpu: int | None = None, timeout: float = 120) -> float | None:
    """Wall time in ms of a command run to its end (output kept in out);
    None if it failed."""
    t0 = time.monotonic()
    with open(out, "wb") as f:
        p = start(argv, stdout=f, stderr=subprocess.STDOUT, cpu=cpu)
        rc = wait(p, timeout, argv[0])
    wall = (time.monotonic() - t0) * 1e3
    return wall if rc == 0 else None


# ---------------------------------------------------------------- targets

class Target:
    """A target with its stdin and stdout on pipes of the bench; it says
    "ready" on stdout once its threads are parked."""

    def __init__(self, argv: list[str], what: str, setup: Setup, *, go_fd: bool = False,
                 stderr: str | None = None, cpu: int | None = None, ready: str = "ready"):
        self.what, self.setup = what, setup
        in_r, self.in_w = os.pipe()
        out_r, out_w = os.pipe()
        fds, self.go_w = [], -1
        if go_fd:  # a byte on this one releases the target (fault_loop)
            go_r, self.go_w = os.pipe()
            fds.append(go_r)
            argv = [a if a != "GO_FD" else str(go_r) for a in argv]
        err = open(stderr, "ab") if stderr else None
        try:
            self.proc = start(argv, stdin=in_r, stdout=out_w, stderr=err, pass_fds=fds, cpu=cpu)
        finally:
            for fd in [in_r, out_w] + fds:
                os.close(fd)
            if err:
                err.close()
        self.pid = self.proc.pid
        self.out = LineReader(out_r, what)
        if ready:
            self.out.expect(ready, setup.limit)

    def send(self, line: str) -> None:
        os.write(self.in_w, (line + "\n").encode())

    def go(self) -> None:
        os.write(self.go_w, b"x")

    def line(self) -> str:
        try:
            return self.out.line(self.setup.limit)
        except EOFError:
            raise Guard("%s ended" % self.what) from None

    def close_input(self) -> None:
        for attr in ("in_w", "go_w"):
            fd = getattr(self, attr)
            if fd >= 0:
                os.close(fd)
                setattr(self, attr, -1)

    def end(self, sig: int | None = signal.SIGTERM) -> int:
        """Closes its input (a counting target then exits), sends sig if
        given, reaps it: its exit status."""
        self.close_input()
        if sig is not None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass
        try:
            return wait(self.proc, self.setup.limit, self.what)
        finally:
            self.out.close()


def crash_waiting(setup: Setup, threads: int, spinners: int = 0) -> Target:
    """targets/crash: THREADS threads parked (nanosleep, futex, read) and
    SPINNERS spinning in a C loop, until killed."""
    argv = [setup.crash, "--threads", str(threads)]
    if spinners:
        argv += ["--spinners", str(spinners)]
    return Target(argv + ["--auto", "wait"], "crash", setup)


def py_target(setup: Setup, py: str, mode: str, threads: int, fault_file: str,
              stderr: str, cpu: int | None = None) -> Target:
    """tests/targets/py_target.py: Python threads parked at known lines,
    its own faulthandler writing to fault_file (the oracle); on CPU cpu if
    given."""
    return Target([py, setup.py_target, fault_file, mode, str(threads)],
                  "py_target.py (%s)" % py, setup, stderr=stderr, cpu=cpu)


def py_label(py: str) -> str:
    """"3.11.7 pyenv", "3.11.2 Debian"."""
    v = subprocess.run([py, "-c", "import platform; print(platform.python_version())"],
                       capture_output=True, text=True, check=True).stdout.strip()
    return v + (" pyenv" if "/.pyenv/" in py else " Debian" if py.startswith("/usr/bin/") else "")


# ---------------------------------------------------------------- measuring

def cpu_ns(pid: int) -> int:
    """CPU time of every thread of a process so far, in ns (the
    scheduler's own account, /proc/PID/task/*/schedstat, not ticks)."""
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                total += int(f.read().split()[0])
        except (OSError, IndexError, ValueError):
            pass
    return total


def bpf_progs(pid: int) -> dict[int, tuple[int, int]]:
    """The BPF programs a process holds: prog id -> (run_cnt, run_time_ns),
    from /proc/PID/fdinfo (counted while kernel.bpf_stats_enabled is 1)."""
    progs = {}
    fd_dir = "/proc/%d/fdinfo" % pid
    for fd in os.listdir(fd_dir):
        try:
            with open(os.path.join(fd_dir, fd)) as f:
                info = dict(l.split(":", 1) for l in f.read().splitlines() if ":" in l)
        except OSError:
            continue
        if "prog_id" in info and "run_cnt" in info:  # a program, not a link to one
            progs[int(info["prog_id"])] = (int(info.get("run_cnt", 0)),
                                           int(info.get("run_time_ns", 0)))
    return progs


def bpf_prog_names() -> dict[int, str]:
    """prog id -> name of every loaded program (bpftool's JSON)."""
    out = subprocess.run(["bpftool", "prog", "show", "--json"], capture_output=True,
                         text=True).stdout
    try:
        return {p["id"]: p.get("name", "") for p in json.loads(out or "[]")}
    except ValueError:
        return {}


class BpfStats:
    """kernel.bpf_stats_enabled on for the block (the kernel then counts
    every program's runs and time); its value restored after."""

    PATH = "/proc/sys/kernel/bpf_stats_enabled"

    def __enter__(self):
        with open(self.PATH) as f:
            self.old = f.read().strip()
        with open(self.PATH, "w") as f:
            f.write("1")
        return self

    def __exit__(self, *exc):
        with open(self.PATH, "w") as f:
            f.write(self.old)
