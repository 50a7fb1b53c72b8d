"""``best_config.yaml``: a trial's training config as a file ``clustergan train --config`` takes, written as
``extends:`` the sweep's base config plus what differs where that file can be read."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import yaml

from clustergan.cache import atomic_write_bytes
from clustergan.config import flat_config, load_config
from clustergan.errors import ClusterganError
from clustergan.tune.sweep_config import with_values


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


def write_best_config(rows: list[dict[str, Any]], exp: Path, name: str, base_config: str | None = None) -> Path | None:
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
