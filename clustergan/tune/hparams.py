"""A sweep in TensorBoard's HParams dashboard: ``<experiment>/hparams/``, one run per trial.

``tensorboard --logdir <experiment>`` then shows, under HPARAMS, one table of every trial with its kind
(``baseline:pix2pix``, ``control:<name>``, ``search``), status, rank, the searched keys and its final metrics
(NDB, JSD, LPIPS, and FID, mode coverage, cond_gain where they were computed); under SCALARS, the training
curves of each seed (``trials/<id>/seed<N>/tensorboard``).

Each report rewrites the folder whole (built beside it, then swapped in), so it always matches
``ranking.md``. Runs are named for what they are: ``baseline-pix2pix``, ``control-<name>``,
``search-<trial id>``. Ray Tune's own TensorBoard logger is switched off for sweeps (see
:mod:`clustergan.tune.sweep`): its sessions would repeat every trial under a generated name.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from clustergan.tune.records import METRICS

FOLDER = "hparams"
STATUS = {"finished": "STATUS_SUCCESS", "infeasible": "STATUS_SUCCESS", "failed": "STATUS_FAILURE"}


def run_name(kind: str, trial: str) -> str:
    """``baseline:pix2pix`` -> ``baseline-pix2pix``; a search trial -> ``search-<id>`` (safe as a folder)."""
    name = f"search-{trial}" if kind == "search" else kind.replace(":", "-", 1)
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def _hparams(row: dict[str, Any], v: dict[str, Any], param_keys: list[str]) -> dict[str, Any]:
    values = {
        "kind": v["kind"],
        "status": v["status"],
        "rank": v["rank"],
        "pareto_rank": v["pareto_rank"],
        "seeds": len(row.get("seeds") or []),
    }
    values.update({k: v[k] for k in param_keys})
    return {k: x for k, x in values.items() if x is not None}


def _session_end(status: str):
    from tensorboardX.proto.api_pb2 import Status
    from tensorboardX.proto.plugin_hparams_pb2 import HParamsPluginData, SessionEndInfo
    from tensorboardX.proto.summary_pb2 import Summary, SummaryMetadata

    content = HParamsPluginData(session_end_info=SessionEndInfo(status=Status.Value(status)), version=0)
    meta = SummaryMetadata(
        plugin_data=SummaryMetadata.PluginData(plugin_name="hparams", content=content.SerializeToString())
    )
    return Summary(value=[Summary.Value(tag="_hparams_/session_end_info", metadata=meta)])


def write_hparams(
    exp: Path, rows: list[dict[str, Any]], values: list[dict[str, Any]], param_keys: tuple[str, ...]
) -> Path:
    """Rewrite ``<exp>/hparams`` from the ranking (``rows``, their table ``values`` and the table's
    ``param_keys``); returns the folder."""
    from tensorboardX import FileWriter
    from tensorboardX.summary import hparams, scalar

    param_keys = [k for k in param_keys if any(v[k] is not None for v in values)]
    metrics = [m for m in METRICS if any(v[m] is not None for v in values)]
    final, building = exp / FOLDER, exp / f".{FOLDER}.building"
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True)

    # The experiment: every column, typed by the first trial that has a value (all trials share the keys).
    example: dict[str, Any] = {}
    for row, v in zip(rows, values, strict=True):
        for k, x in _hparams(row, v, param_keys).items():
            example.setdefault(k, x)
    experiment, _, _ = hparams(example, dict.fromkeys(metrics, 0.0))
    writer = FileWriter(str(building))
    writer.add_summary(experiment)
    writer.close()

    for row, v in zip(rows, values, strict=True):
        _, start, _ = hparams(_hparams(row, v, param_keys), {})
        writer = FileWriter(str(building / run_name(v["kind"], v["trial"])))
        writer.add_summary(start)
        for m in metrics:
            if v[m] is not None:
                writer.add_summary(scalar(m, float(v[m])), global_step=0)
        if row["group"] != "running":
            writer.add_summary(_session_end(STATUS.get(row["group"], "STATUS_UNKNOWN")))
        writer.close()

    old = exp / f".{FOLDER}.old"
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    building.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    return final
