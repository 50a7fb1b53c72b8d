"""The rows' statistics for ``docs/RESULTS.md``: the metrics shown, the significance rule between two rows
and the cell formats.

Significance rule (the issue's): a difference between two rows is called only when the gap between their
means exceeds twice the pooled seed standard deviation, ``sqrt((s_a^2 + s_b^2) / 2)``; otherwise the
comparison reads "not significant". With one seed per row no difference is called.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

from clustergan.jsonio import read_json


def read_or_empty(path: Path) -> dict:
    """A run's JSON file, or {} where it was not written (a run not finished or not measured)."""
    return read_json(path, {})


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof 1; 0 for a single value)."""
    if not values:
        return math.nan, math.nan
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def compare(a: list[float], b: list[float], lower_is_better: bool) -> dict:
    """The significance rule between rows ``a`` and ``b``: which is better, or "not significant"."""
    ma, sa = mean_std(a)
    mb, sb = mean_std(b)
    pooled = math.sqrt((sa**2 + sb**2) / 2)
    gap = ma - mb
    significant = len(a) > 1 and len(b) > 1 and abs(gap) > 2 * pooled
    if not significant:
        verdict = "not significant"
    else:
        a_better = gap < 0 if lower_is_better else gap > 0
        verdict = "better" if a_better else "worse"
    return {"gap": gap, "threshold": 2 * pooled, "verdict": verdict, "seeds": min(len(a), len(b))}


def verdict_cell(word: str, c: dict) -> str:
    """A comparison cell; with one seed on a side there is no spread, so no threshold is shown."""
    if c["seeds"] < 2:
        return f"{word}: one seed, no verdict (gap {c['gap']:+.4g})"
    return f"{word} (gap {c['gap']:+.4g}, 2σ {c['threshold']:.3g})"


def fmt(value: float, metric: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if metric in ("fid", "fid_n_inputs"):
        return f"{value:.2f}"
    if metric == "ndb":
        return f"{value:.1f}" if value != int(value) else f"{int(value)}"
    return f"{value:.4f}"


def cell(values: list[float], metric: str) -> str:
    m, s = mean_std(values)
    return f"{fmt(m, metric)} ± {fmt(s, metric)}" if len(values) > 1 else fmt(m, metric)
