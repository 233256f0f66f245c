"""Statistics of the figures: medians, spreads, paired comparisons.

A figure is a median over samples taken on a shared, noisy host; its spread
says how far one run may be trusted:

* min..max and the interquartile range (IQR, the middle half of the
  samples), and both relative to the median ("rel_spread_pct",
  "rel_iqr_pct"): an effect smaller than the spread of its baseline is
  noise;
* against a peer measured in the same run, interleaved (A B A B ...) so
  that a burst of host noise lands on both: the ratio of the medians and
  the median of the per-pair ratios (each pair shares its moment, so the
  latter cancels slow drift that the former does not).
"""

from __future__ import annotations

import math
import statistics
from typing import Callable, Iterable, Sequence


def clean(xs: Iterable[float | None]) -> list[float]:
    """The samples that are numbers (a failed sample is None)."""
    return [float(x) for x in xs if x is not None and not math.isnan(x)]


def median(xs: Iterable[float | None]) -> float | None:
    xs = clean(xs)
    return statistics.median(xs) if xs else None


def quartiles(xs: Sequence[float]) -> tuple[float, float]:
    """First and third quartiles, inclusive method (they stay within the
    samples; two samples give their own values)."""
    if len(xs) == 1:
        return xs[0], xs[0]
    q = statistics.quantiles(xs, n=4, method="inclusive")
    return q[0], q[2]


def spread(xs: Iterable[float | None]) -> dict | None:
    """Count, min, max, quartiles, IQR, and the range and IQR relative to
    the median (percent); None without samples."""
    xs = sorted(clean(xs))
    if not xs:
        return None
    med = statistics.median(xs)
    q1, q3 = quartiles(xs)
    rel = (lambda v: round(v * 100 / abs(med), 2)) if med else (lambda v: None)
    return {
        "n": len(xs),
        "min": xs[0],
        "max": xs[-1],
        "q1": q1,
        "q3": q3,
        "iqr": q3 - q1,
        "rel_spread_pct": rel(xs[-1] - xs[0]),
        "rel_iqr_pct": rel(q3 - q1),
    }


def mean_se(xs: Iterable[float | None]) -> tuple[float | None, float | None]:
    """Mean and its standard error (None for fewer than two samples)."""
    xs = clean(xs)
    if not xs:
        return None, None
    m = statistics.fmean(xs)
    if len(xs) < 2:
        return m, None
    return m, statistics.stdev(xs) / math.sqrt(len(xs))


def paired(a: Sequence[float | None], b: Sequence[float | None]) -> dict | None:
    """A against B, sample i of each taken back to back: the ratio of the
    medians, and the median (and range) of the per-pair ratios A_i / B_i.
    A pair with a missing side is left out of the per-pair ratios.  Only
    positive figures have ratios: with a sample at or below zero on either
    side (a difference, a time lost that noise takes below zero), None."""
    if any(x <= 0 for x in clean(a) + clean(b)):
        return None
    ma, mb = median(a), median(b)
    ratios = [x / y for x, y in zip(a, b)
              if x is not None and y is not None and y != 0]
    if ma is None or mb is None:
        return None
    return {
        "pairs": len(ratios),
        "ratio_of_medians": ma / mb if mb else None,
        "median_of_pair_ratios": median(ratios),
        "pair_ratio_min": min(ratios) if ratios else None,
        "pair_ratio_max": max(ratios) if ratios else None,
    }


def slowdown_pct(base: float | None, other: float | None) -> float | None:
    """How much slower OTHER is than BASE, for rates (work per second):
    (base - other) / base, in percent."""
    if base is None or other is None or not base:
        return None
    return (base - other) * 100 / base


def interleave(pairs: int, a: Callable[[int], float | None],
               b: Callable[[int], float | None]) -> tuple[list, list]:
    """Runs A then B, PAIRS times (A B A B ...): the two sample lists, in
    order, each A_i taken right before its B_i."""
    xs, ys = [], []
    for i in range(pairs):
        xs.append(a(i))
        ys.append(b(i))
    return xs, ys


def rounded(x: float | None, digits: int = 4) -> float | None:
    """A figure kept to a sensible number of significant digits in JSON."""
    if x is None or x == 0 or math.isnan(x):
        return x
    return round(x, max(0, digits - 1 - int(math.floor(math.log10(abs(x))))))
