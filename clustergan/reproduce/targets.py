"""A preset's stated targets, checked against its finished runs: each says met, not met, or pending (seeds
still to run), with the value and its 90% interval, so a growing table states where it stands.

Three kinds, each one function in :data:`KINDS`:

- ``mean_at_most``: the seed mean of ``metric`` for each row in ``keys`` is at most ``bound``. The interval
  is Student's t over the seeds.
- ``every_seed_at_least``: every seed of every row in ``keys`` has ``metric`` at least ``bound``. One
  seed below it is final: the target is not met, whatever the seeds still to run give.
- ``pooled_std_at_most``: the seed standard deviation of ``metric``, pooled over the rows in ``keys``
  (each row's variance weighted by its degrees of freedom), is at most ``bound``. The interval is the
  chi-square one for a normal standard deviation with the pooled degrees of freedom.

The decision uses the point value. The interval is printed beside it, so that a reader can see how little
three seeds pin down.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass

from scipy import stats

from clustergan.errors import ConfigError
from clustergan.scores import SCORES

LEVEL = 0.90


@dataclass(frozen=True)
class Target:
    text: str  # the target as the issue or the preset states it
    kind: str
    metric: str
    keys: tuple[str, ...]  # the rows (method keys) it is about
    bound: float

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"target {self.text!r}: unknown kind {self.kind!r}; choose one of {sorted(KINDS)}")
        if self.metric not in SCORES:
            raise ConfigError(f"target {self.text!r}: unknown metric {self.metric!r}; choose one of {list(SCORES)}")
        if not self.keys:
            raise ConfigError(f"target {self.text!r}: names no rows (keys)")


def _values(rows: dict, key: str, metric: str) -> tuple[list[float], int]:
    """The row's finite values of ``metric``, and how many of its finished runs lack one (not computed, or
    not finite): such a run is finished but unmeasured, never a seed still to run."""
    seeds = rows.get(key, {}).get("seeds", {})
    got = [s.get("metrics", {}).get(metric) for s in seeds.values()]
    finite = [float(x) for x in got if isinstance(x, (int, float)) and math.isfinite(x)]
    return finite, len(got) - len(finite)


def _row(value: float | None, seeds: int, interval: tuple[float, float] | None = None) -> dict:
    lo, hi = interval or (None, None)
    return {"value": value, "lo": lo, "hi": hi, "seeds": seeds}


def _status(decided: str, counts: list[int], unmeasured: int, n: int) -> str:
    if unmeasured:
        return "not measured"  # a finished run without the metric: rerun its evaluation
    return decided if all(c >= n for c in counts) else "pending"


def _t_interval(values: list[float]) -> tuple[float, float] | None:
    if len(values) < 2:
        return None
    m, se = statistics.fmean(values), statistics.stdev(values) / math.sqrt(len(values))
    half = stats.t.ppf(0.5 + LEVEL / 2, len(values) - 1) * se
    return m - half, m + half


def _per_row(t: Target, rows: dict, summary: Callable[[list[float]], dict]) -> tuple[dict, list[int], int]:
    """``summary`` of each row's finite values, each row's count of them, and the unmeasured finished runs."""
    per_row, counts, unmeasured = {}, [], 0
    for key in t.keys:
        v, missing = _values(rows, key, t.metric)
        per_row[key] = summary(v)
        counts.append(len(v))
        unmeasured += missing
    return per_row, counts, unmeasured


def _mean_at_most(t: Target, rows: dict, n: int) -> dict:
    per_row, counts, unmeasured = _per_row(
        t, rows, lambda v: _row(statistics.fmean(v) if v else None, len(v), _t_interval(v))
    )
    ok = all(r["value"] <= t.bound for r in per_row.values() if r["value"] is not None)
    return {"rows": per_row, "status": _status("met" if ok else "not met", counts, unmeasured, n)}


def _every_seed_at_least(t: Target, rows: dict, n: int) -> dict:
    per_row, counts, unmeasured = _per_row(t, rows, lambda v: _row(min(v) if v else None, len(v)))
    if any(r["value"] is not None and r["value"] < t.bound for r in per_row.values()):
        return {"rows": per_row, "status": "not met"}  # a seed below the bound stays below it
    return {"rows": per_row, "status": _status("met", counts, unmeasured, n)}


def pooled_std(groups: list[list[float]]) -> tuple[float | None, int]:
    """The standard deviation pooled over ``groups`` (those with at least 2 values), each group's variance
    weighted by its degrees of freedom, and the pooled degrees of freedom."""
    groups = [g for g in groups if len(g) > 1]
    df = sum(len(g) - 1 for g in groups)
    if not df:
        return None, 0
    return math.sqrt(sum((len(g) - 1) * statistics.variance(g) for g in groups) / df), df


def std_interval(s: float | None, df: int) -> tuple[float, float] | None:
    """The chi-square interval at :data:`LEVEL` for a normal standard deviation estimated as ``s``."""
    if not df or s is None:
        return None
    a = (1 - LEVEL) / 2
    return s * math.sqrt(df / stats.chi2.ppf(1 - a, df)), s * math.sqrt(df / stats.chi2.ppf(a, df))


def _pooled_std_at_most(t: Target, rows: dict, n: int) -> dict:
    measured = [_values(rows, key, t.metric) for key in t.keys]
    groups = [v for v, _ in measured]
    s, df = pooled_std(groups)
    pooled = {**_row(s, sum(len(g) for g in groups), std_interval(s, df)), "df": df}
    decided = "met" if s is not None and s <= t.bound else "not met"
    return {
        "rows": {"pooled": pooled},
        "status": _status(decided, [len(g) for g in groups], sum(m for _, m in measured), n),
    }


KINDS: dict[str, Callable[[Target, dict, int], dict]] = {
    "mean_at_most": _mean_at_most,
    "every_seed_at_least": _every_seed_at_least,
    "pooled_std_at_most": _pooled_std_at_most,
}


def check(target: Target, rows: dict, n_seeds: int) -> dict:
    """``target`` against ``rows`` (:func:`clustergan.reproduce.results.collect`), ``n_seeds`` seeds per row
    when the table is complete."""
    return {
        "text": target.text,
        "kind": target.kind,
        "bound": target.bound,
        **KINDS[target.kind](target, rows, n_seeds),
    }


def _label(rows: dict, key: str) -> str:
    return rows.get(key, {}).get("label", key)


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}"


def _cell(v: dict) -> tuple[str, str]:
    value = _num(v["value"]) + (f" (df {v['df']})" if v.get("df") else "")
    return value, ("-" if v["lo"] is None else f"[{_num(v['lo'])}, {_num(v['hi'])}]")


def targets_section(
    targets: tuple[Target, ...], rows: dict, n_seeds: int, baseline: tuple[str, dict] | None = None
) -> tuple[list[str], list[dict]]:
    """The report's targets table; ``baseline`` = (name, rows) adds the same measure on another preset's
    runs (the value the target set out to improve), never a verdict on it."""
    if not targets:
        return [], []
    results = [check(t, rows, n_seeds) for t in targets]
    before = [check(t, baseline[1], n_seeds) for t in targets] if baseline else [None] * len(targets)
    extra = f" | `{baseline[0]}` preset: value [90% interval]" if baseline else ""
    lines = [
        "### Targets",
        "",
        f"Value: the seed mean; for a target on every seed, the lowest seed; for a pooled std, the pooled "
        f"std and its degrees of freedom. Each target is decided on this value; its {LEVEL:.0%} interval is "
        f"beside it. Pending: seeds still to run (of {n_seeds} per row). Not measured: a finished run has no "
        "finite value of the metric (rerun its evaluation).",
        "",
        f"| target | row | seeds | value | 90% interval | status{extra} |",
        "|---|---|---|---|---|---|" + ("---|" if baseline else ""),
    ]
    for t, r, b in zip(targets, results, before, strict=True):
        for key, v in r["rows"].items():
            name = _label(rows, key) if key != "pooled" else "pooled: " + "; ".join(_label(rows, k) for k in t.keys)
            value, interval = _cell(v)
            old = ""
            if b is not None:
                bv = b["rows"][key]
                old = " | " + ("not measured" if not bv["seeds"] else " ".join(_cell(bv)))
            lines.append(f"| {t.text} | {name} | {v['seeds']} | {value} | {interval} | **{r['status']}**{old} |")
    return lines + [""], results
