"""The figures, one module each, in the order a whole run takes them.

Each module has NAME (its `run` name), TITLE, OPTIONS (its parameters, with
a full and a --quick default) and run(setup, opts) -> [Figure].  Modules
that measure the same sessions (capture, printed, rss) share them through
setup.cache, so a whole run takes them once.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

ORDER = ["capture", "printed", "start", "rss", "ptrace", "oneshot", "py_crash", "py_dump",
         "py_bt", "native", "live", "throughput", "peers", "agent_idle", "agent_signals",
         "agent_crash", "burst", "tree", "incidents_list"]


@dataclass
class Option:
    """A parameter of a figure: --NAME, with its full and quick defaults."""
    name: str
    parse: Callable[[str], Any]
    default: Any
    quick: Any
    help: str

    def value(self, given: Any, quick: bool) -> Any:
        if given is not None:
            return given
        return self.quick if quick else self.default


def ints(text: str) -> list[int]:
    """A comma-separated list of counts: "1,10,100"."""
    return [int(x) for x in text.split(",") if x]


def modules() -> list:
    return [importlib.import_module("." + name, __name__) for name in ORDER]


def by_name(name: str):
    key = name.replace("-", "_")
    if key not in ORDER:
        raise KeyError(name)
    return importlib.import_module("." + key, __name__)


def cli_name(module) -> str:
    return module.NAME
