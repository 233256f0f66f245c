"""The attacks of bench/hostile.py and one scenario's measurement: the
agent started, the attack staged as nobody, a window under the attack
alone, K in-scope crashes, the agent's figures, SIGTERM."""

import os
import shlex
import shutil
import signal
import tempfile
import time

from procs import (NOBODY, Agent, Attacker, Crasher, DirWatch, Guard, cpu_seconds, fd_limit,
                   incident_name, kill_all, make_pipe, LineReader, open_fds, spawn, status_kb,
                   wait_exit)

EVIL_NAME = "a\nFatal\x1b[2Kxyz"
OBJCOPY = "/usr/bin/objcopy"


class Run:
    """What a run shares: paths, options, files prepared once."""

    def __init__(self, args):
        self.args = args
        self.build = os.path.abspath(args.build)
        self.fh = os.path.join(self.build, "fh-bpf")
        self.crash = os.path.join(self.build, "targets", "crash")
        self.hostile_py = os.path.join(self.build, "targets", "hostile_py")
        self.park = os.path.join(self.build, "targets", "hostile_park")
        self.fake_py = os.path.realpath(os.path.join(self.build, "targets", "libpython3.11.so"))
        self.lure_lib = os.path.join(self.build, "targets", "libpython3.5m.so")
        self.base = tempfile.mkdtemp(prefix="fh-hostile-")
        os.chmod(self.base, 0o755)  # traversable by nobody
        self.prep = self.nobody_dir("prep")
        self.lure_paths = []
        self.debuglink_lure = None
        self.serial = 0

    def nobody_dir(self, stem):
        self.serial = getattr(self, "serial", 0) + 1
        d = os.path.join(self.base, "%s-%d" % (stem, self.serial))
        os.mkdir(d, 0o755)
        os.chown(d, NOBODY, NOBODY)
        return d

    def prepare(self, scenarios):
        if "fifo-debuglink" in scenarios:
            fifo = os.path.join(self.prep, "fifo")
            os.mkfifo(fifo, 0o666)
            os.chown(fifo, NOBODY, NOBODY)
            name = "../../../.." + fifo
            section = name.encode() + b"\0" * (4 - len(name) % 4) + b"\0" * 4  # NUL, align, CRC
            link = os.path.join(self.base, "debuglink.bin")
            with open(link, "wb") as f:
                f.write(section)
            self.debuglink_lure = os.path.join(self.prep, "dbglink_lure")
            rc = os.spawnv(os.P_WAIT, OBJCOPY, [
                OBJCOPY, "--strip-debug", "--remove-section=.gnu_debuglink",
                "--remove-section=.note.gnu.build-id", "--add-section",
                ".gnu_debuglink=" + link, self.crash, self.debuglink_lure])
            if rc != 0:
                raise Guard("objcopy failed (%d)" % rc)
            os.chmod(self.debuglink_lure, 0o755)
        if "lures" in scenarios:
            d = os.path.join(self.base, "lures")
            os.mkdir(d, 0o755)
            for i in range(self.args.lures):
                sub = os.path.join(d, str(i))
                os.mkdir(sub, 0o755)
                path = os.path.join(sub, "libpython3.5m.so")
                shutil.copyfile(self.lure_lib, path)
                self.lure_paths.append(path)

    def cleanup(self):
        shutil.rmtree(self.base, ignore_errors=True)


class Scenario:
    """An attack: stage() puts it in place (after the agent is ready),
    before_crash(k) acts just before in-scope crash k, release() ends it."""

    def __init__(self, run):
        self.run = run
        self.attackers = []
        self.attack_deaths = []  # (pid, monotonic time) of attackers that crashed

    def stage(self):
        pass

    def before_crash(self, k):
        pass

    def report(self):
        return {}

    def release(self):
        for a in self.attackers:
            a.release(self.run.args.stop_timeout)

    def start_all(self, argvs):
        for argv in argvs:
            self.attackers.append(Attacker(argv))
        for a in self.attackers:
            a.ready(self.run.args.stage_timeout)


class Quiet(Scenario):
    pass


class CrashingAttack(Scenario):
    """An attacker's process crashes (as nobody) just before each in-scope
    crash, so that the in-scope incident comes behind the attacker's."""

    def argv(self):
        raise NotImplementedError

    def before_crash(self, k):
        pid = spawn(self.argv(), uid=NOBODY)
        _, t = wait_exit(pid, self.run.args.crash_timeout)
        self.attack_deaths.append((pid, t))


class FifoDebuglink(CrashingAttack):
    def argv(self):
        return [self.run.debuglink_lure, "--auto", "--threads", "1", "segv"]


class Names(CrashingAttack):
    def argv(self):
        return [self.run.crash, "--auto", "--threads", "3", "--name", EVIL_NAME, "segv"]


class Lease(Scenario):
    """hostile_py lease: a copy of the fake libpython, mapped executable,
    under a write lease; asked at the end whether a break was begun."""

    def stage(self):
        argvs = []
        for i in range(self.run.args.leases):
            d = self.run.nobody_dir("lease")
            argvs.append([self.run.hostile_py, "lease", self.run.fake_py,
                          os.path.join(d, "libpython3.11.so")])
        self.start_all(argvs)

    def report(self):
        states = []
        for a in self.attackers:
            a.send("?\n")
            states.append(a.out.line(self.run.args.stop_timeout))  # "lease=L sigio=N"
        return {"lease_states": states}


class Amplification(Scenario):
    def stage(self):
        self.start_all([[self.run.hostile_py, "crash", self.run.fake_py]
                        for _ in range(self.run.args.crashes)])

    def before_crash(self, k):
        a = self.attackers[k]
        a.send("go\n")
        t = a.wait(self.run.args.crash_timeout)
        self.attack_deaths.append((a.pid, t))


class Descriptors(Scenario):
    def stage(self):
        go_r, self.go_w = make_pipe()
        rep_r, rep_w = make_pipe()
        try:
            self.pid = spawn([self.run.park, str(self.run.args.parked)], uid=NOBODY,
                             fds={0: go_r, 3: rep_w})
        finally:
            os.close(go_r)
            os.close(rep_w)
        reader = LineReader(rep_r)
        try:
            for _ in range(self.run.args.parked):
                reader.line(self.run.args.stage_timeout)
        finally:
            os.close(rep_r)

    def release(self):
        if getattr(self, "go_w", -1) < 0:
            return
        os.close(self.go_w)
        self.go_w = -1
        try:
            wait_exit(self.pid, self.run.args.stop_timeout)
        except Guard:
            os.killpg(self.pid, signal.SIGKILL)
            wait_exit(self.pid, 10)


class SysDict(Scenario):
    def stage(self):
        self.start_all([[self.run.hostile_py, "live", self.run.fake_py]
                        for _ in range(self.run.args.live)])


class Lures(Scenario):
    def stage(self):
        self.start_all([[self.run.hostile_py, "map"] + self.run.lure_paths])


CLASSES = {"quiet": Quiet, "fifo-debuglink": FifoDebuglink, "lease": Lease,
           "amplification": Amplification, "descriptors": Descriptors, "sysdict": SysDict,
           "lures": Lures, "names": Names}


def in_scope_crash(run, sc, k):
    """One in-scope crash as root, 4 threads, SIGSEGV, just after the
    attack's action k: (pid, time of the go, time of its reaping)."""
    c = Crasher(run.crash, 4, run.args.crash_timeout)
    sc.before_crash(k)
    status, t_go, t_dead = c.go(run.args.crash_timeout)
    if not (os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGSEGV):
        raise Guard("crash %d ended with status %#x, not SIGSEGV" % (c.pid, status))
    return c.pid, t_go, t_dead


def stderr_notes(path, limit=20):
    """fh-bpf's own lines on stderr that are not part of an incident."""
    notes = []
    try:
        with open(path, errors="replace") as f:
            for line in f:
                if line.startswith("fh-bpf: ") and not line.startswith("fh-bpf: pid "):
                    notes.append(line.rstrip("\n")[:300])
                    if len(notes) >= limit:
                        break
    except OSError:
        pass
    return notes


def run_scenario(run, name, rnd):
    args = run.args
    sc = CLASSES[name](run)
    log_dir = tempfile.mkdtemp(prefix="logs-%s-" % name, dir=run.base)  # 0700
    err_path = os.path.join(run.base, "agent-%s-%d.err" % (name, rnd))
    watch = DirWatch(log_dir)
    agent = None
    out = {"round": rnd, "latencies_ms": [], "misses": 0}
    try:
        agent = Agent(run.fh, log_dir, err_path, args.agent_nofile,
                      shlex.split(args.agent_args), args.ready_timeout)
        out["ready_s"] = round(agent.ready_s, 3)
        # What else the host runs (it is shared): the agent sees it all.
        out["host_processes_at_ready"] = sum(n.isdigit() for n in os.listdir("/proc"))
        out["loadavg_at_ready"] = os.getloadavg()[0]
        out["cpu_s_at_ready"] = cpu_seconds(agent.pid)
        t = time.monotonic()
        sc.stage()
        out["stage_s"] = round(time.monotonic() - t, 3)
        out["fds_after_stage"] = open_fds(agent.pid)
        out["fd_limit"] = fd_limit(agent.pid)
        # The measuring window, two halves: the agent under the attack
        # alone (its reaction to the staging, then its steady cost).
        for half in ("dwell1", "dwell2"):
            c0, w0 = cpu_seconds(agent.pid), time.monotonic()
            time.sleep(args.dwell / 2)
            c1, w1 = cpu_seconds(agent.pid), time.monotonic()
            out[half + "_cpu_pct"] = round(100 * (c1 - c0) / (w1 - w0), 2)
        out["dwell_rss_kb"] = status_kb(agent.pid, "VmRSS")
        out["go_ms"] = []
        for k in range(args.crashes):
            pid, t_go, t_dead = in_scope_crash(run, sc, k)
            seen = watch.wait_for(incident_name(pid), args.crash_timeout)
            if seen is None:
                out["misses"] += 1
            else:
                out["latencies_ms"].append(round(1000 * (seen - t_dead), 2))
                out["go_ms"].append(round(1000 * (seen - t_go), 2))
        out["attack_latencies_ms"] = []
        for pid, died in sc.attack_deaths:  # not waited for: as far as written now
            seen = watch.wait_for(incident_name(pid), 0)
            out["attack_latencies_ms"].append(
                None if seen is None else round(1000 * (seen - died), 2))
        wall = time.monotonic() - agent.t0
        out["wall_s"] = round(wall, 3)
        out["cpu_s"] = round(cpu_seconds(agent.pid), 3)
        out["cpu_pct"] = round(100 * out["cpu_s"] / wall, 2)
        out["hwm_kb"] = status_kb(agent.pid, "VmHWM")
        out["cpu_pct_after_ready"] = round(
            100 * (out["cpu_s"] - out["cpu_s_at_ready"]) / (wall - agent.ready_s), 2)
        out["fds_at_end"] = open_fds(agent.pid)
        out.update(sc.report())
        out["exit"], stop_s = agent.stop(args.stop_timeout)
        out["stop_s"] = None if stop_s is None else round(stop_s, 3)
        names = [n for n in os.listdir(log_dir) if not n.startswith(".")]
        out["log_files"] = len(names)
        out["log_bytes"] = sum(os.path.getsize(os.path.join(log_dir, n)) for n in names)
        out["stderr_bytes"] = os.path.getsize(err_path)
        out["stderr_notes"] = stderr_notes(err_path)
    finally:
        if agent is not None and agent.status is None:
            try:
                os.killpg(agent.pid, signal.SIGKILL)
                wait_exit(agent.pid, 10)
            except (ProcessLookupError, Guard):
                pass
        try:
            sc.release()
        finally:
            watch.close()
            kill_all()
            shutil.rmtree(log_dir, ignore_errors=True)
            try:
                os.unlink(err_path)
            except OSError:
                pass
    return out
