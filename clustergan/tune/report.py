"""The report of a sweep: ``ranking.csv``, ``ranking.md``, ``pareto.png``, ``best_config.yaml``, the page and the
HParams table. The order of the rows is :mod:`clustergan.tune.ranking`'s.

Reads only our own files (``sweep_state.json``, ``trials/*/trial.json`` through :mod:`clustergan.tune.records`),
so it works on a finished or a running sweep, or a ledger (``clustergan report EXPERIMENT_DIR``); a sweep stored
at a URI is pulled into a local copy first and the report pushed back (``clustergan report URI``).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from clustergan.cache import atomic_write_bytes
from clustergan.errors import ClusterganError
from clustergan.jsonio import read_json, write_json
from clustergan.tune.best_config import write_best_config
from clustergan.tune.hparams import write_hparams
from clustergan.tune.page import fmt_number, write_page
from clustergan.tune.ranking import rank_trials
from clustergan.tune.records import METRICS, TrialRecord, experiment_records
from clustergan.tune.storage import STATE, open_uri_report
from clustergan.tune.sweep_config import OBJECTIVES

PARAM_KEYS = ("cluster.k", "loss.lambda_ms", "loss.lambda_kl1", "loss.lambda_km", "model.nz", "model.dropout")


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
    for k in METRICS:
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
    best = write_best_config(rows, exp, name, state.get("base_config"))
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
