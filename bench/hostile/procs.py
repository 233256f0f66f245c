"""Processes and measures for bench/hostile.py: children started in process
groups of their own (as nobody through setpriv), waits that always end,
inotify stamps of a directory's new names, /proc readers, the agent."""

import ctypes
import fcntl
import os
import re
import select
import signal
import struct
import threading
import time

NOBODY = 65534
SETPRIV = "/usr/bin/setpriv"
PRLIMIT = "/usr/bin/prlimit"


class Guard(Exception):
    """A wait that ran out of time, or a step that did not go as planned."""


CHILDREN = {}  # pid -> process group, of everything started and not reaped


def high_fd(fd):
    """The descriptor moved to 64 or above (close-on-exec), so that a dup2
    onto 0..9 in a child never meets its own source."""
    h = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 64)
    os.close(fd)
    return h


def make_pipe():
    r, w = os.pipe()
    return high_fd(r), high_fd(w)


def spawn(argv, uid=None, fds=None, stdout=None, stderr=None):
    """Starts argv in a process group of its own; fds maps a child's
    descriptor to one of ours; stdout/stderr a path (default /dev/null).
    As nobody through setpriv, which executes argv in the same process."""
    if uid is not None:
        argv = [SETPRIV, "--reuid=%d" % uid, "--regid=%d" % uid, "--clear-groups",
                "--"] + list(argv)
    opened = []
    actions = []
    try:
        for target, path in ((1, stdout), (2, stderr)):
            fd = high_fd(os.open(path or os.devnull, os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                                 0o600))
            opened.append(fd)
            actions.append((os.POSIX_SPAWN_DUP2, fd, target))
        if not fds or 0 not in fds:
            fd = high_fd(os.open(os.devnull, os.O_RDONLY))
            opened.append(fd)
            actions.append((os.POSIX_SPAWN_DUP2, fd, 0))
        for target, src in (fds or {}).items():
            actions.append((os.POSIX_SPAWN_DUP2, src, target))
        pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=actions, setpgroup=0,
                             setsigdef=(signal.SIGPIPE, signal.SIGXFSZ))
    finally:
        for fd in opened:
            os.close(fd)
    CHILDREN[pid] = pid
    return pid


def readable(fd, timeout):
    """Whether fd becomes readable within timeout seconds (poll: any fd)."""
    p = select.poll()
    p.register(fd, select.POLLIN)
    return bool(p.poll(max(timeout, 0) * 1000))


def wait_exit(pid, timeout):
    """Waits for a child's death (its pidfd), reaps it: (status, the
    monotonic time waitpid returned)."""
    pidfd = os.pidfd_open(pid)
    try:
        if not readable(pidfd, timeout):
            raise Guard("pid %d still running after %.0f s" % (pid, timeout))
        _, status = os.waitpid(pid, 0)
        t = time.monotonic()
    finally:
        os.close(pidfd)
    CHILDREN.pop(pid, None)
    return status, t


def kill_all():
    """Kills every process group started and reaps what it can."""
    for pid, pgid in list(CHILDREN.items()):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 10
    while CHILDREN and time.monotonic() < deadline:
        for pid in list(CHILDREN):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                CHILDREN.pop(pid, None)
        time.sleep(0.02)


class LineReader:
    def __init__(self, fd):
        self.fd, self.buf = fd, b""

    def line(self, timeout):
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            if not readable(self.fd, deadline - time.monotonic()):
                raise Guard("no line within %.0f s" % timeout)
            chunk = os.read(self.fd, 65536)
            if not chunk:
                raise Guard("end of file before a line")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode(errors="replace")


class Attacker:
    """A process run as nobody with its stdin and stdout on pipes; says
    "ready" (the targets' own convention) once its attack is in place."""

    def __init__(self, argv):
        in_r, self.in_w = make_pipe()
        out_r, out_w = make_pipe()
        try:
            self.pid = spawn(argv, uid=NOBODY, fds={0: in_r, 1: out_w})
        finally:
            os.close(in_r)
            os.close(out_w)
        self.out = LineReader(out_r)
        self.out_fd = out_r
        self.status = None

    def ready(self, timeout):
        line = self.out.line(timeout)
        if line != "ready":
            raise Guard("attacker %d said %r, not ready" % (self.pid, line))

    def send(self, text):
        os.write(self.in_w, text.encode())

    def wait(self, timeout):
        self.status, t = wait_exit(self.pid, timeout)
        return t

    def release(self, timeout):
        """Closes its stdin; kills its group if it does not end in time."""
        if self.in_w >= 0:
            os.close(self.in_w)
            self.in_w = -1
        if self.status is None:
            try:
                self.wait(timeout)
            except Guard:
                os.killpg(self.pid, signal.SIGKILL)
                self.wait(10)
        os.close(self.out_fd)


# ---------------------------------------------------------------- measuring

libc = ctypes.CDLL(None, use_errno=True)
IN_MOVED_TO, IN_CREATE, IN_Q_OVERFLOW = 0x80, 0x100, 0x4000
IN_NONBLOCK, IN_CLOEXEC = os.O_NONBLOCK, os.O_CLOEXEC


class DirWatch(threading.Thread):
    """Stamps (time.monotonic) each name as it appears in a directory."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.path = path
        self.fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        if libc.inotify_add_watch(self.fd, path.encode(), IN_MOVED_TO | IN_CREATE) < 0:
            raise OSError(ctypes.get_errno(), "inotify_add_watch " + path)
        self.stop_r, self.stop_w = make_pipe()
        self.seen = {}
        self.cv = threading.Condition()
        self.start()

    def _note(self, names, now):
        with self.cv:
            for n in names:
                if not n.startswith("."):  # the agent's temporary files
                    self.seen.setdefault(n, now)
            self.cv.notify_all()

    def run(self):
        while True:
            r, _, _ = select.select([self.fd, self.stop_r], [], [])
            if self.stop_r in r:
                return
            try:
                data = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                continue
            now = time.monotonic()
            names, at, overflow = [], 0, False
            while at + 16 <= len(data):
                _, mask, _, size = struct.unpack_from("iIII", data, at)
                overflow |= bool(mask & IN_Q_OVERFLOW)
                names.append(data[at + 16:at + 16 + size].split(b"\0", 1)[0].decode(
                    errors="replace"))
                at += 16 + size
            if overflow:
                names += os.listdir(self.path)
            self._note([n for n in names if n], now)

    def wait_for(self, pattern, timeout):
        """The stamp of the first name matching pattern, or None."""
        deadline = time.monotonic() + timeout
        with self.cv:
            while True:
                for n, t in self.seen.items():
                    if pattern.search(n):
                        return t
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cv.wait(left)

    def close(self):
        os.write(self.stop_w, b"x")
        self.join(10)
        for fd in (self.fd, self.stop_r, self.stop_w):
            os.close(fd)


def incident_name(pid):
    # file_stem(): TIME-COMM-PID-SIGNAL[-N].txt
    return re.compile(r"-%d-SIGSEGV(-\d+)?\.(txt|json)$" % pid)


CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def status_kb(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise Guard("no %s in /proc/%d/status" % (field, pid))


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def fd_limit(pid):
    """The soft "Max open files" of a process."""
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith("Max open files"):
                return int(line.split()[3])
    return None


class Crasher:
    """`crash --threads N --report 3 --go 4 [--name NAME] MODE`: says where
    its threads are, then "ready" once they are parked, and crashes on a
    byte written to fd 4."""

    def __init__(self, crash, threads, timeout, uid=None, name=None, mode="segv"):
        rep_r, rep_w = make_pipe()
        go_r, self.go_w = make_pipe()
        argv = [crash, "--threads", str(threads), "--report", "3", "--go", "4"]
        if name is not None:
            argv += ["--name", name]
        try:
            self.pid = spawn(argv + [mode], uid=uid, fds={3: rep_w, 4: go_r})
        finally:
            os.close(rep_w)
            os.close(go_r)
        try:
            reader = LineReader(rep_r)
            while reader.line(timeout) != "ready":
                pass
        finally:
            os.close(rep_r)

    def go(self, timeout):
        """Lets it crash: (status, monotonic time of the go, of its reaping)."""
        t_go = time.monotonic()
        os.write(self.go_w, b"g")
        os.close(self.go_w)
        status, t_dead = wait_exit(self.pid, timeout)
        return status, t_go, t_dead


class Agent:
    def __init__(self, fh, log_dir, err_path, nofile, extra, timeout):
        r, w = make_pipe()
        argv = [fh, "-a", "--log-dir", log_dir, "--ready-fd", "3"] + extra
        if nofile:  # prlimit executes fh-bpf in the same process
            argv = [PRLIMIT, "--nofile=%d:%d" % (nofile, nofile), "--"] + argv
        try:
            self.t0 = time.monotonic()
            self.pid = spawn(argv, fds={3: w}, stderr=err_path)
        finally:
            os.close(w)
        try:
            line = LineReader(r).line(timeout)
        finally:
            os.close(r)
        if line != "ready":
            raise Guard("fh-bpf said %r, not ready" % line)
        self.ready_s = time.monotonic() - self.t0
        self.status = None

    def stop(self, timeout):
        """SIGTERM; (exit code or a description, seconds to exit)."""
        t = time.monotonic()
        os.kill(self.pid, signal.SIGTERM)
        try:
            self.status, _ = wait_exit(self.pid, timeout)
        except Guard:
            os.killpg(self.pid, signal.SIGKILL)
            self.status, _ = wait_exit(self.pid, 10)
            return "no exit within %.0f s of SIGTERM (killed)" % timeout, None
        took = time.monotonic() - t
        if os.WIFEXITED(self.status):
            return os.WEXITSTATUS(self.status), took
        return "killed by signal %d" % os.WTERMSIG(self.status), took
