"""The README's cost table, rendered from a run's JSON.

    python3 bench/fhbench report RESULTS.json [--figures F,...] [--readme README.md]

One row per figure record: what was measured and on what, fh-bpf's median
and spread (min..max, IQR, n), the peer measured in the same run (its
median), the paired ratio, the aim and whether it was met.  With
--readme, the blocks of the README between `<!-- fhbench:begin NAME -->`
and `<!-- fhbench:end NAME -->` are replaced by the table of the figures
that block names (NAME: `all`, or figure names joined by `,`).
"""

from __future__ import annotations

import json
import math
import os
import re

from .procs import REPO

UNITS = {"us": "µs"}


def num(x: float | None, unit: str = "") -> str:
    """A figure at a precision its noise allows: 3 significant digits,
    none after the point from 100 up."""
    if x is None:
        return "–"
    a = abs(x)
    if unit == "/s" or a >= 1e6:
        text = "%.3g" % x
    elif a >= 100:
        text = "%.0f" % x
    elif a >= 10:
        text = "%.1f" % x
    elif a >= 1:
        text = "%.2f" % x
    elif a == 0:
        text = "0"
    else:  # two significant digits, never in exponent form
        text = "%.*f" % (1 - math.floor(math.log10(a)), x)
    return text


def with_unit(x: float | None, unit: str) -> str:
    if x is None:
        return "–"
    u = UNITS.get(unit, unit)
    if u == "/s":
        return num(x, unit) + "/s"
    if u in ("%",):
        return num(x, unit) + " %"
    return "%s %s" % (num(x, unit), u)


def spread_text(fig: dict) -> str:
    s = fig.get("spread")
    if not s:
        return "–"
    unit = fig["unit"]
    if s["n"] == 1:
        return "n 1"
    return "%s..%s, IQR %s, n %d" % (num(s["min"], unit), num(s["max"], unit),
                                    num(s["iqr"], unit), s["n"])


def params_text(fig: dict) -> str:
    p = fig.get("params") or {}
    parts = []
    for k in ("target", "python"):
        if k in p:
            parts.append(str(p[k]))
    if "threads" in p:
        parts.append("%s thr." % p["threads"])
    for k in ("signals", "crashers"):
        if k in p:
            parts.append("%s %s" % (format(p[k], ",") if isinstance(p[k], int) else p[k], k))
    return ", ".join(parts) or "–"


def peer_text(fig: dict) -> str:
    peer = fig.get("peer")
    if not peer:
        return ""
    return "%s: %s" % (peer["name"], with_unit(peer["median"], fig["unit"]))


def ratio_text(fig: dict) -> str:
    r = fig.get("ratio")
    if not r or r.get("ratio_of_medians") is None:
        return ""
    text = "×%s" % num(r["ratio_of_medians"])
    if r.get("median_of_pair_ratios") is not None:
        text += " (pairs ×%s)" % num(r["median_of_pair_ratios"])
    return text


def aim_text(fig: dict) -> str:
    aim = fig.get("aim")
    if not aim:
        return ""
    ok = {True: "met", False: "**missed**", None: "–"}[fig.get("met")]
    value = "%g %s" % (aim["value"], UNITS.get(fig["unit"], fig["unit"]))
    return "%s %s: %s" % ("≤" if aim["op"] == "<=" else "≥", value, ok)


def row(fig: dict) -> str:
    name = fig["name"]
    if fig.get("status", "measured") != "measured":
        return "| %s | %s | %s | | | | |" % (name, params_text(fig), fig["status"])
    return "| %s | %s | %s | %s | %s | %s | %s |" % (
        name, params_text(fig), with_unit(fig["median"], fig["unit"]), spread_text(fig),
        peer_text(fig), ratio_text(fig), aim_text(fig))


def table(doc: dict, only: list[str] | None = None) -> str:
    """The markdown table of a run's figures (of those named in only)."""
    lines = ["| figure | on | fh-bpf, median | spread (min..max, IQR, n) "
             "| peer, same run, median | fh-bpf ÷ peer: medians (pairs) | aim |",
             "|---|---|---:|---|---|---|---|"]
    for fig in doc["figures"]:
        if only and fig["figure"] not in only:
            continue
        lines.append(row(fig))
    return "\n".join(lines)


def shown_path(path: str) -> str:
    """A results file as the repository names it."""
    full = os.path.abspath(path)
    return os.path.relpath(full, REPO) if full.startswith(REPO + os.sep) else path


def caption(doc: dict, path: str, only: list[str] | None = None) -> str:
    """Where, when and how: the lines above a rendered table."""
    env = doc["environment"]
    load = lambda k: " ".join("%.2f" % x for x in env.get(k) or [])  # noqa: E731
    return ("Measured %s by `%s` (%s, %s s), fh-bpf %s: kernel %s, %d CPUs (%s), load "
            "average %s at the start and %s at the end. Results: `%s` (git-ignored); "
            "this table: `python3 bench/fhbench report %s%s`." % (
                doc["started_utc"][:10], doc["command"],
                "quick mode" if doc.get("quick") else "full run", doc.get("seconds", "?"),
                (env.get("git_revision") or "?")[:12] + (" (modified)" if env.get(
                    "git_modified") else ""),
                env.get("kernel"), env.get("cpus") or 0, env.get("cpu_model") or "?",
                load("loadavg_at_start"), load("loadavg_at_end"), shown_path(path),
                shown_path(path), " --figures " + ",".join(only) if only else ""))


def summary_line(fig: dict) -> str:
    """One line of progress as a figure is taken."""
    head = "  %-52s %-24s" % (fig["name"][:52], params_text(fig))
    if fig.get("status", "measured") != "measured":
        return head + " " + fig["status"]
    text = head + " %s (%s)" % (with_unit(fig["median"], fig["unit"]), spread_text(fig))
    if fig.get("peer"):
        text += "  %s %s" % (peer_text(fig), ratio_text(fig))
    if fig.get("aim"):
        text += "  aim " + aim_text(fig)
    return text


def update_readme(readme: str, doc: dict, path: str) -> int:
    """Replaces each marked block of the README by its table: how many."""
    with open(readme) as f:
        text = f.read()
    rx = re.compile(r"(<!-- fhbench:begin (\S+) -->\n)(.*?)(<!-- fhbench:end \2 -->)",
                    re.S)

    def block(m: re.Match) -> str:
        only = None if m.group(2) == "all" else m.group(2).split(",")
        return (m.group(1) + caption(doc, path, only) + "\n\n" + table(doc, only) + "\n" +
                m.group(4))

    new, n = rx.subn(block, text)
    with open(readme, "w") as f:
        f.write(new)
    return n


def main(path: str, figures: str | None, readme: str | None) -> int:
    with open(path) as f:
        doc = json.load(f)
    only = figures.split(",") if figures else None
    if readme:
        n = update_readme(readme, doc, path)
        print("%s: %d table%s rendered" % (readme, n, "" if n == 1 else "s"))
        return 0 if n else 1
    print(caption(doc, path, only))
    print()
    print(table(doc, only))
    return 0
