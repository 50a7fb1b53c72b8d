"""The ranking of an experiment's trials: Pareto ranks on (NDB min, JSD min, LPIPS max) and the groups.

Finished trials get a ``pareto_rank`` by non-dominated sorting: rank 1 is the Pareto front, rank 2 the front
once rank 1 is removed, and so on. Within a rank the tie-break is lower NDB, then lower JSD, then higher LPIPS.
Then, ranked apart and in this order: finished trials above the FID ceiling or below the conditional-gain floor
(infeasible), trials stopped early (by the scheduler or a time limit: no final metrics), trials still running,
and failed trials (with their error).
"""

from __future__ import annotations

import math
from typing import Any

from clustergan.tune.records import TrialRecord
from clustergan.tune.sweep_config import MODES, OBJECTIVES

#: (objective, "min" | "max")
GOALS = tuple(zip(OBJECTIVES, MODES, strict=False))
GROUP_ORDER = {"finished": 0, "infeasible": 1, "stopped early": 2, "running": 3, "failed": 4}


def dominates(a: dict[str, float], b: dict[str, float]) -> bool:
    """True when ``a`` is at least as good as ``b`` on every objective and better on one."""
    better = False
    for key, mode in GOALS:
        x, y = (a[key], b[key]) if mode == "min" else (-a[key], -b[key])
        if x > y:
            return False
        better = better or x < y
    return better


def pareto_ranks(points: list[dict[str, float]]) -> list[int]:
    """Non-dominated sorting: 1 = not dominated by any point, 2 = not dominated once rank 1 is removed..."""
    ranks = [0] * len(points)
    remaining = set(range(len(points)))
    rank = 1
    while remaining:
        front = {i for i in remaining if not any(dominates(points[j], points[i]) for j in remaining if j != i)}
        for i in front:
            ranks[i] = rank
        remaining -= front
        rank += 1
    return ranks


def rank_trials(
    trials: list[TrialRecord],
    fid_ceiling: float | None,
    cond_gain_floor: float | None = None,
    sweep_ended: bool = False,
) -> list[dict[str, Any]]:
    """Rows sorted for the table, each with ``group``, ``pareto_rank`` (finished feasible only) and ``rank``.
    A trial without a ``cond_gain`` (evaluated before the metric existed) is not held to the floor. Once the
    sweep ended (``sweep_ended``), a trial still "running" was stopped early: it never sent its final report."""
    rows = []
    for t in trials:
        m = t.metrics or {}
        group = "stopped early" if t.status == "running" and sweep_ended else t.status
        if t.status == "finished":
            if not all(math.isfinite(m[k]) for k in OBJECTIVES):
                group = "failed"
            elif fid_ceiling is not None and "fid" in m and m["fid"] > fid_ceiling:
                group = "infeasible"
            elif cond_gain_floor is not None and "cond_gain" in m and m["cond_gain"] < cond_gain_floor:
                group = "infeasible"
        rows.append(
            {
                "trial": t.trial_id,
                "kind": t.kind,
                "group": group,
                "params": t.params,
                "metrics": m,
                "error": t.error,
                "sample_grid": t.sample_grid,
                "train_config": t.train_config,
                "seeds": t.seeds,
                "per_seed": {seed: r.metrics() for seed, r in t.per_seed.items()},
            }
        )
    finished = [r for r in rows if r["group"] == "finished"]
    for r, pr in zip(finished, pareto_ranks([r["metrics"] for r in finished]), strict=False):
        r["pareto_rank"] = pr

    def key(r):
        m = r["metrics"]
        if r["group"] in ("finished", "infeasible"):
            return (GROUP_ORDER[r["group"]], r.get("pareto_rank", 0), m["ndb"], m["jsd"], -m["lpips"], r["trial"])
        return (GROUP_ORDER[r["group"]], 0, 0.0, 0.0, 0.0, r["trial"])

    rows.sort(key=key)
    for i, r in enumerate(rows, 1):
        r["rank"] = i if r["group"] == "finished" else None
    return rows
