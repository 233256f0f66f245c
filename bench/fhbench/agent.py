"""The host agent (`fh-bpf -a`), shared by the agent figures: started
armed, its programs found, its CPU and BPF time read."""

from __future__ import annotations

from .procs import FhBpf, Setup, bpf_prog_names, bpf_progs, cpu_ns


def start_agent(setup: Setup, args: list[str], tag: str) -> FhBpf:
    """fh-bpf -a ARGS, armed (--ready-fd), on the watchers' CPU."""
    return FhBpf(setup, ["-a"] + args, tag, cpu=setup.cpu_watcher)


def prog_id(agent: FhBpf, name: str) -> int | None:
    """The id of the agent's own program of that name."""
    names = bpf_prog_names()
    ids = [i for i in bpf_progs(agent.pid) if names.get(i) == name]
    return max(ids) if ids else None


class Meter:
    """The agent's CPU time (every thread, the scheduler's account) and its
    BPF programs' run count and time, from one reading to the next."""

    def __init__(self, agent: FhBpf):
        self.agent = agent
        self.cpu, self.progs = cpu_ns(agent.pid), bpf_progs(agent.pid)

    def read(self) -> tuple[int, int, int]:
        """(CPU ns, BPF runs, BPF ns) since the last reading."""
        cpu, progs = cpu_ns(self.agent.pid), bpf_progs(self.agent.pid)
        runs = sum(c - self.progs.get(i, (0, 0))[0] for i, (c, _) in progs.items())
        ns = sum(t - self.progs.get(i, (0, 0))[1] for i, (_, t) in progs.items())
        d = cpu - self.cpu
        self.cpu, self.progs = cpu, progs
        return d, runs, ns
