"""What a race writes (:func:`write_ranking`): ``ranking.csv`` and ``ranking.md`` (per candidate the seeds,
each metric's mean and 95% t-interval, the effect size against the best control, the round it was dropped
in and by whom), ``pareto.png`` (the objectives' means with their intervals) and ``best_config.yaml``.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

import numpy as np

from clustergan.cache import atomic_write_bytes
from clustergan.tune.best_config import write_trainable_config
from clustergan.tune.race_rule import Drop
from clustergan.tune.race_runs import Candidate
from clustergan.tune.ranking import pareto_ranks
from clustergan.tune.records import METRICS
from clustergan.tune.sweep_config import MODES, OBJECTIVES


def _interval(values: list[float]) -> tuple[float, float, float]:
    from scipy import stats

    mean = float(np.mean(values))
    if len(values) < 2 or np.std(values) == 0:
        return mean, mean, mean
    lo, hi = stats.t.interval(0.95, len(values) - 1, loc=mean, scale=stats.sem(values))
    return mean, float(lo), float(hi)


def write_ranking(out: Path, candidates: list[Candidate], state: dict, drops: list[Drop], survivors: list[str]) -> str:
    """``ranking.csv`` / ``ranking.md`` and ``best_config.yaml``; returns the markdown table."""
    dropped = {d.dropped: d for d in drops}
    rows = []
    for c in candidates:
        runs = state["runs"].get(c.name, {})
        row: dict[str, Any] = {"candidate": c.name, "kind": c.kind, "seeds": len(runs)}
        for m in METRICS:
            vals = [r[m] for r in runs.values() if m in r]
            if vals:
                row[f"{m}_mean"], row[f"{m}_lo"], row[f"{m}_hi"] = _interval(vals)
        d = dropped.get(c.name)
        row["dropped_round"] = d.round + 1 if d else None
        row["dropped_by"] = d.by if d else None
        rows.append(row)
    controls = [r for r, c in zip(rows, candidates, strict=True) if c.control]
    # a race stopped by its budget may leave a survivor without a single seed: it is listed, not ranked
    alive = [r for r in rows if r["candidate"] in survivors and all(f"{m}_mean" in r for m in OBJECTIVES)]
    ranks = pareto_ranks([{m: r[f"{m}_mean"] for m in OBJECTIVES} for r in alive]) if alive else []
    for r, pr in zip(alive, ranks, strict=True):
        r["pareto_rank"] = pr

    def tie_break(r):
        # a missing mean sorts last whatever the objective's direction
        means = [
            math.inf if f"{m}_mean" not in r else r[f"{m}_mean"] * (-1 if mode == "max" else 1)
            for m, mode in zip(OBJECTIVES, MODES, strict=True)
        ]
        return (r.get("pareto_rank", math.inf), *means, r["candidate"])

    best_control = min((r for r in controls if r["candidate"] in survivors), key=tie_break, default=None)
    best_control = best_control or (min(controls, key=tie_break) if controls else None)
    for r in rows:
        for m in OBJECTIVES:
            r[f"{m}_effect"] = _effect(state, r["candidate"], best_control["candidate"], m) if best_control else None
    rows.sort(key=lambda r: (r["candidate"] not in survivors, tie_break(r)))
    columns = ["candidate", "kind", "seeds", "pareto_rank", "dropped_round", "dropped_by"]
    columns += [f"{m}_{part}" for m in METRICS for part in ("mean", "lo", "hi") if any(f"{m}_mean" in r for r in rows)]
    columns += [f"{m}_effect" for m in OBJECTIVES]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(out / "ranking.csv", buffer.getvalue().encode())
    shown = ["candidate", "kind", "seeds", "dropped"] + [m for m in METRICS if f"{m}_mean" in columns]
    against = f"{best_control['candidate']} ({best_control['kind']})" if best_control else "no control"
    lines = [
        f"Race of {state['experiment']} ({state.get('status', 'running')}; protocol {state['protocol']}): "
        f"mean [95% t-interval] over the seeds each candidate got; effect sizes (paired mean / sd of the "
        f"differences, positive: better) against {against} in ranking.csv",
        "",
        "| " + " | ".join(shown) + " |",
        "|" + "---|" * len(shown),
    ]
    for r in rows:
        cells = [r["candidate"], r["kind"], str(r["seeds"])]
        cells.append(f"round {r['dropped_round']} by {r['dropped_by']}" if r["dropped_round"] else "survives")
        for m in shown[4:]:
            cells.append(f"{r[f'{m}_mean']:.4g} [{r[f'{m}_lo']:.4g}, {r[f'{m}_hi']:.4g}]" if f"{m}_mean" in r else "")
        lines.append("| " + " | ".join(cells) + " |")
    table = "\n".join(lines) + "\n"
    atomic_write_bytes(out / "ranking.md", table.encode())
    write_plot(out / "pareto.png", rows, survivors, state.get("status", "running"))
    _best_config(out, candidates, rows, survivors, state.get("status", "running"))
    return table + f"\nRace folder: {out}"


def _effect(state: dict, a: str, b: str, metric: str) -> float | None:
    ra, rb = state["runs"].get(a, {}), state["runs"].get(b, {})
    shared = [s for s in ra if s in rb and metric in ra[s] and metric in rb[s]]
    if a == b or len(shared) < 2:
        return None
    better = 1.0 if dict(zip(OBJECTIVES, MODES, strict=True)).get(metric, "max") == "max" else -1.0
    d = better * np.array([ra[s][metric] - rb[s][metric] for s in shared])
    sd = float(np.std(d, ddof=1))
    return float(d.mean() / sd) if sd > 0 else (math.copysign(math.inf, d.mean()) if d.mean() else 0.0)


def _best_config(
    out: Path, candidates: list[Candidate], rows: list[dict], survivors: list[str], status: str
) -> Path | None:
    path = out / "best_config.yaml"
    control = {c.name: c.control for c in candidates}
    ours = [r for r in rows if r["candidate"] in survivors and not control[r["candidate"]] and "pareto_rank" in r]
    if not ours:
        path.unlink(missing_ok=True)
        return None
    best = ours[0]
    train_config = next(c for c in candidates if c.name == best["candidate"]).train_config
    others = [f"{r['candidate']} ({r['kind']})" for r in rows if r["candidate"] in survivors and r is not best]
    title = "Race winner" if status == "finished" else f"Provisional leader of an unfinished race ({status})"
    header = (
        f"# {title} {best['candidate']} over {best['seeds']} seeds: ndb {best['ndb_mean']:.4g}, "
        f"jsd {best['jsd_mean']:.4g}, lpips {best['lpips_mean']:.4g} (first survivor by Pareto rank of the means, "
        "then NDB, JSD, LPIPS)\n"
        + (f"# Not told apart from: {', '.join(others)}\n" if others else "")
        + f"# Train it: clustergan train --config {path}\n"
    )
    return write_trainable_config(path, train_config, f"race-best-{best['candidate']}", header)


def write_plot(path: Path, rows: list[dict[str, Any]], survivors: list[str], status: str) -> None:
    """Each pair of objectives: every candidate's means with their 95% intervals as error bars; survivors in
    colour, dropped candidates grey, controls as squares."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pairs = [(a, b) for i, a in enumerate(OBJECTIVES) for b in OBJECTIVES[i + 1 :]]
    fig, axes = plt.subplots(1, len(pairs), figsize=(5 * len(pairs), 4.2))
    for ax, (x, y) in zip(np.atleast_1d(axes), pairs, strict=True):
        for r in rows:
            if f"{x}_mean" not in r or f"{y}_mean" not in r:
                continue
            alive = r["candidate"] in survivors
            ax.errorbar(
                r[f"{x}_mean"],
                r[f"{y}_mean"],
                xerr=[[r[f"{x}_mean"] - r[f"{x}_lo"]], [r[f"{x}_hi"] - r[f"{x}_mean"]]],
                yerr=[[r[f"{y}_mean"] - r[f"{y}_lo"]], [r[f"{y}_hi"] - r[f"{y}_mean"]]],
                fmt="s" if r["kind"] != "search" else "o",
                color=None if alive else "0.7",
                capsize=3,
                label=f"{r['candidate']} ({r['kind']}, {r['seeds']} seeds{'' if alive else ', dropped'})",
            )
        ax.set_xlabel(f"{x} ({dict(zip(OBJECTIVES, MODES, strict=True))[x]})")
        ax.set_ylabel(f"{y} ({dict(zip(OBJECTIVES, MODES, strict=True))[y]})")
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[0].legend(fontsize=7)
    fig.suptitle(f"race ({status}): means and 95% t-intervals over each candidate's seeds")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
