"""The ranking of a sweep: ``ranking.csv``, ``ranking.md``, ``pareto.png``, ``best_config.yaml``.

Reads only our own files (``sweep_state.json``, ``trials/*/trial.json`` through :mod:`clustergan.tune.records`),
so it works on a finished or a running sweep, or a ledger (``clustergan report EXPERIMENT_DIR``); a sweep stored
at a URI is pulled into a local copy first and the report pushed back (``clustergan report URI``).

Ranking: finished trials get a ``pareto_rank`` by non-dominated sorting on (NDB min, JSD min, LPIPS max):
rank 1 is the Pareto front, rank 2 the front once rank 1 is removed, and so on. Within a rank the tie-break
is lower NDB, then lower JSD, then higher LPIPS. Then, ranked apart and in this order: finished trials above
the FID ceiling or below the conditional-gain floor (infeasible), trials stopped early (by the scheduler or a time
limit: no final metrics),
trials still running, and failed trials (with their error).
"""

from __future__ import annotations

import copy
import csv
import io
import math
import os
from pathlib import Path
from typing import Any

import yaml

from clustergan.cache import atomic_write_bytes
from clustergan.config import load_config
from clustergan.errors import ClusterganError
from clustergan.jsonio import read_json, write_json
from clustergan.tune.hparams import write_hparams
from clustergan.tune.page import fmt_number, write_page
from clustergan.tune.records import TrialRecord, experiment_records
from clustergan.tune.space import flat_config
from clustergan.tune.storage import STATE, open_uri_report
from clustergan.tune.sweep_config import MODES, OBJECTIVES, with_values

#: (objective, "min" | "max")
GOALS = tuple(zip(OBJECTIVES, MODES, strict=False))
PARAM_KEYS = ("cluster.k", "loss.lambda_ms", "loss.lambda_kl1", "loss.lambda_km", "model.nz", "model.dropout")
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


def _protocol_header(state: dict[str, Any], trials: list[TrialRecord]) -> str:
    from clustergan.metrics import get_protocol

    name = state.get("protocol", "sweep")
    p = get_protocol(name)
    inputs = next((t.test_inputs for t in trials if t.test_inputs), None)
    fid = f"FID on {p.fid_samples_per_input} samples/input" if p.fid else "FID off"
    return (
        f"protocol `{name}`: {p.samples_per_input} samples per test input"
        f"{f' x {inputs} inputs' if inputs else ''}; LPIPS on {p.lpips_pairs} random pairs per input; "
        f"NDB/JSD with K={p.ndb_bins} bins on {p.ndb_resolution}x{p.ndb_resolution} {p.ndb_space}, "
        f"{p.ndb_queries_per_input} queries per input; {fid}"
    )


def _scale_notes(state: dict[str, Any]) -> list[str]:
    """What a reader must know before trusting the numbers: a smoke test, the sweep's own ``note``."""
    notes = []
    if state.get("smoke_test"):
        notes.append(
            "**Smoke test** (`--smoke-test`: a few steps per trial): the numbers show that the pipeline "
            "runs, not how good any configuration is."
        )
    if state.get("note"):
        notes.append(f"**Note:** {state['note']}")
    return notes


def _ties(rows: list[dict[str, Any]]) -> list[str]:
    """Ranked trials equal on all three objectives: their order is only the trial-id tie-break."""
    groups: dict[tuple, list[str]] = {}
    for r in rows:
        if r["rank"] is not None:
            groups.setdefault(tuple(r["metrics"][k] for k in OBJECTIVES), []).append(str(r["trial"]))
    return [
        f"{', '.join(trials)} tie on NDB, JSD and LPIPS: their order is only the trial-id tie-break, "
        "nothing separates them"
        for trials in groups.values()
        if len(trials) > 1
    ]


COLUMNS = (
    "rank",
    "pareto_rank",
    "trial",
    "kind",
    "status",
    "ndb",
    "jsd",
    "lpips",
    "fid",
    "mode_coverage",
    "cond_gain",
    *PARAM_KEYS,
    "sample_grid",
    "error",
)


def _row_values(r: dict[str, Any]) -> dict[str, Any]:
    m, p = r["metrics"], r["params"]
    cfg = r.get("train_config") or {}
    values = {
        "rank": r["rank"],
        "pareto_rank": r.get("pareto_rank"),
        "trial": r["trial"],
        "kind": r["kind"],
        "status": r["group"],
        "sample_grid": r["sample_grid"],
        "error": r["error"],
    }
    for k in ("ndb", "jsd", "lpips", "fid", "mode_coverage", "cond_gain"):
        values[k] = m.get(k)
    for k in PARAM_KEYS:
        section, _, leaf = k.partition(".")
        values[k] = p.get(k, (cfg.get(section) or {}).get(leaf))
    return values


def _plot(rows: list[dict[str, Any]], path: Path) -> Path | None:
    done = [r for r in rows if r["group"] in ("finished", "infeasible")]
    if not done:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    ndb = [r["metrics"]["ndb"] for r in done]
    lp = [r["metrics"]["lpips"] for r in done]
    jsd = [r["metrics"]["jsd"] for r in done]
    sc = ax.scatter(ndb, lp, c=jsd, cmap="viridis_r", s=40, zorder=2)
    fig.colorbar(sc, ax=ax, label="JSD (lower is better)")
    front = sorted((r for r in done if r.get("pareto_rank") == 1), key=lambda r: r["metrics"]["ndb"])
    if front:
        ax.plot(
            [r["metrics"]["ndb"] for r in front],
            [r["metrics"]["lpips"] for r in front],
            "r--",
            lw=1,
            label="Pareto front (rank 1)",
            zorder=1,
        )
    for r in done:
        if r["kind"] != "search":  # the baselines and controls, by name
            ax.annotate(
                r["kind"].split(":", 1)[1],
                (r["metrics"]["ndb"], r["metrics"]["lpips"]),
                fontsize=8,
                xytext=(4, 4),
                textcoords="offset points",
            )
    ax.set_xlabel("NDB (lower is better)")
    ax.set_ylabel("LPIPS diversity (higher is better)")
    ax.set_title("sweep trials: NDB vs LPIPS, colour = JSD")
    if front:
        ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def _as_overrides(cfg: dict[str, Any], base_config: Path, exp: Path) -> dict[str, Any] | None:
    """``cfg`` as ``extends: <the sweep's base config>`` plus the keys where it differs from that file (the
    sweep's overrides and the trial's values); None when the base config cannot be read here."""
    try:
        base = load_config(base_config).to_dict()
    except ClusterganError:  # moved, or no longer valid on its own: the full configuration is written instead
        return None
    trained, defaults = flat_config(cfg), flat_config(base)
    changed = {k: v for k, v in trained.items() if k not in ("name", "out") and defaults.get(k) != v}
    return with_values({"extends": os.path.relpath(base_config, exp), "name": cfg["name"]}, changed)


def _best_config(rows: list[dict[str, Any]], exp: Path, name: str, base_config: str | None = None) -> Path | None:
    """The best-ranked finished *searched* configuration: the sweep's answer. The baselines are reference
    points of the ranking, not candidates (a baseline as "the best configuration" would reach the
    reproduction's "sweep best" row under a clustergan label); the header says when one ranks above it.
    Written as ``extends:`` the sweep's base config plus what differs when the sweep recorded its base
    (``sweep_state.json: base_config``) and the file is there; else in full."""
    finished = [r for r in rows if r["group"] == "finished" and r.get("train_config")]
    best = next((r for r in finished if r["kind"] == "search"), None)
    path = exp / "best_config.yaml"
    if best is None:
        path.unlink(missing_ok=True)  # e.g. written before the search trials were held to a floor
        return None
    above = [r["kind"] for r in finished[: finished.index(best)]]
    header = (
        f"# Best configuration of sweep {name} (trial {best['trial']}, {best['kind']}): "
        f"ndb={best['metrics']['ndb']:.4g} jsd={best['metrics']['jsd']:.4g} "
        f"lpips={best['metrics']['lpips']:.4g}\n"
        + (
            f"# Ranked above it: {', '.join(above)} (the best searched configuration is not the best point "
            f"of the ranking)\n"
            if above
            else ""
        )
        + f"# Train it: clustergan train --config {exp / 'best_config.yaml'}\n"
    )
    return write_trainable_config(path, best["train_config"], f"{name}-best", header, base_config)


def write_trainable_config(
    path: Path, train_config: dict[str, Any], name: str, header: str, base_config: str | None = None
) -> Path:
    """A trial's training config as a file ``clustergan train --config`` takes: renamed, without the trial's
    folders, as ``extends:`` ``base_config`` plus what differs when that file can be read (else in full)."""
    cfg = copy.deepcopy(train_config)
    cfg["name"] = name
    cfg["out"] = None
    cfg.get("cluster", {})["stats_dir"] = None  # `clustergan train` recomputes the clusters for its run
    if base_config is not None:
        cfg = _as_overrides(cfg, Path(base_config), path.parent) or cfg
    atomic_write_bytes(path, (header + yaml.safe_dump(cfg, sort_keys=False)).encode())
    return path


def write_report(experiment_dir: str | Path) -> str:
    """(Re)write the ranking files of an experiment folder (``report.html`` included, and but for a committed
    ledger, which keeps text and images only, the TensorBoard HParams table); returns the Markdown table and
    where the page is."""
    exp = Path(experiment_dir)
    state_path = exp / "sweep_state.json"
    if not state_path.is_file():
        raise ClusterganError(
            f"{exp}: not a sweep experiment folder (no sweep_state.json); give the folder "
            "`clustergan sweep` wrote (default runs/sweeps/<name>)"
        )
    state = read_json(state_path)
    trials = experiment_records(exp)
    # the driver ended (finished, or partial: a slice or an interrupt): a trial still "running" was stopped
    rows = rank_trials(
        trials,
        state.get("fid_ceiling"),
        state.get("cond_gain_floor"),
        sweep_ended=state.get("status", "running") != "running",
    )
    values = [_row_values(r) for r in rows]

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS)
    writer.writeheader()
    for v in values:
        writer.writerow({k: ("" if v[k] is None else v[k]) for k in COLUMNS})
    atomic_write_bytes(exp / "ranking.csv", buffer.getvalue().encode())

    name = state.get("name", exp.name)
    shown = [c for c in COLUMNS if c not in ("error", "sample_grid") and any(v[c] is not None for v in values)]
    lines = [
        f"# Sweep `{name}` ({state.get('status', 'running')}): {len(rows)} trials",
        "",
        *(line for note in _scale_notes(state) for line in (note, "")),
        _protocol_header(state, trials),
        "",
        "Ranking: pareto_rank by non-dominated sorting on (NDB min, JSD min, LPIPS max); within a rank, "
        "lower NDB, then lower JSD, then higher LPIPS. Trials above the FID ceiling"
        + (f" ({state['fid_ceiling']:g})" if state.get("fid_ceiling") is not None else "")
        + ", below the conditional-gain floor"
        + (
            f" ({state['cond_gain_floor']:g}: outputs that ignore their input)"
            if state.get("cond_gain_floor") is not None
            else ""
        )
        + ", stopped early, running or failed are listed after the ranked ones, unranked. cond_gain: how "
        "much closer an output is to its own input's target than to another input's (LPIPS; ~0 = the "
        "input is ignored).",
        "",
        "| " + " | ".join(shown) + " |",
        "|" + "---|" * len(shown),
    ]
    for v in values:
        lines.append("| " + " | ".join(fmt_number(v[c]) for c in shown) + " |")
    ties = _ties(rows)
    if ties:
        lines += ["", "Ties:"] + [f"- {t}" for t in ties]
    errors = [v for v in values if v["error"]]
    if errors:
        lines += ["", "Errors:"] + [f"- {v['trial']}: {v['error']}" for v in errors]
    grids = [v for v in values if v["sample_grid"]]
    if grids:
        lines += ["", "Sample grids:"] + [f"- {v['trial']} ({v['kind']}): {v['sample_grid']}" for v in grids]
    plot = _plot(rows, exp / "pareto.png")
    best = _best_config(rows, exp, name, state.get("base_config"))
    lines += [""]
    if plot:
        lines.append(f"Pareto plot: {plot}")
    if best:
        lines.append(f"Best configuration (ready to train): {best}")
    table = "\n".join(lines) + "\n"
    atomic_write_bytes(exp / "ranking.md", table.encode())
    page = write_page(exp, state, rows, values, shown, _protocol_header(state, trials), _scale_notes(state), plot, best)
    if not state.get("ledger"):
        write_hparams(exp, rows, values, PARAM_KEYS)
    return table + f"Report page (open in a browser): {page}\n"


def report_remote(uri: str, local: str | Path | None = None) -> tuple[Path, str]:
    """``clustergan report URI``: pull the records into the local copy, rank, push the report back."""
    store, state = open_uri_report(uri, local)
    write_json(store.local / STATE, state)  # the latest
    for k_dir in store.remote.listdir("clusters"):  # the page shows each trial's cluster overview
        overview = f"clusters/{k_dir}/clusters.png"
        if not (store.local / overview).is_file():
            store.pull(overview)
    table = write_report(store.local)
    store.push_driver_files(report=True)
    return store.local, table
