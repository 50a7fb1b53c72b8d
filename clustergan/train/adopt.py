"""Taking a run trained elsewhere as one's own, when it is the same training: the one check and the one copy
behind ``clustergan reproduce --adopt``, ``clustergan sweep --adopt`` and ``clustergan race --adopt``.

Same training means :func:`clustergan.config.training_differences` finds nothing (the run folder, the data's
place and the clusters' place may differ) and, for a clustered run, the same cluster statistics. What comes
over is the run's checkpoints, samples and TensorBoard files, plus its ``config.json`` as the record of what
trained; the source is left as it was. A run resumed from a checkpoint at its budget's last epoch trains
nothing, so the adopting command only evaluates it.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from clustergan.clustering import ClusterStats
from clustergan.config import training_differences
from clustergan.jsonio import read_json
from clustergan.train.checkpoint import list_checkpoints

COPIED = ("checkpoints", "samples", "tensorboard")
ADOPTED = "adopted.json"  # in the adopting run's folder: where its training came from, what came over


def not_the_same(source: Path, mine: dict[str, Any], clusters_dir: str | None = None) -> str | None:
    """Why the run folder ``source`` is not the training ``mine`` (a resolved config), or None when it is.
    ``clusters_dir``: the statistics ``mine`` trains with, compared with the source's when given."""
    theirs = read_json(Path(source) / "config.json", {}).get("config")
    if not theirs:
        return f"no config.json in {source}"
    differ = training_differences(theirs, mine, str(Path(source) / "config.json"))
    if differ:
        return "; ".join(f"{k}: {a!r} there, {b!r} here" for k, (a, b) in list(differ.items())[:6])
    return other_clusters(source, clusters_dir) if clusters_dir else None


def other_clusters(source: Path, clusters_dir: str) -> str | None:
    """Why the run folder ``source`` did not train with the cluster statistics in ``clusters_dir``, or None
    when it did (the same statistics, wherever they are kept): the half of :func:`not_the_same` that needs
    the statistics computed first."""
    theirs = read_json(Path(source) / "config.json", {}).get("config") or {}
    src = (theirs.get("cluster") or {}).get("stats_dir")
    if not src:
        return f"its config.json names no cluster.stats_dir to compare with these ({clusters_dir})"
    if not Path(src).is_dir():
        return f"its cluster statistics ({src}) are not on this machine to compare with these ({clusters_dir})"
    if not ClusterStats.load(src).same_as(ClusterStats.load(clusters_dir)):
        return f"its cluster statistics ({src}) are not these ({clusters_dir})"
    return None


def last_epoch(source: Path) -> int | None:
    """The epoch of the run's newest checkpoint, None without one."""
    found = list_checkpoints(Path(source) / "checkpoints")
    return found[-1][0] if found else None


def short_of_budget(source: Path, total: int) -> str | None:
    """Why the run folder ``source`` has not finished a budget of ``total`` epochs (its newest checkpoint is
    short of the last epoch), or None when it has: only a finished run can be adopted without training."""
    epoch = last_epoch(source)
    if epoch is None:
        ends = f", and the budget ends at epoch {total}" if total else ""
        return f"it has no checkpoint in {Path(source) / 'checkpoints'}{ends}"
    if epoch < total:
        return f"its last checkpoint is at epoch {epoch}, not the budget's last epoch {total}"
    return None


def copy_training(source: Path, target: Path) -> None:
    """Copy what a training wrote (:data:`COPIED`, and ``config.json``) from ``source`` into ``target``; each
    folder lands whole or not at all (copied beside, then renamed), replacing any there."""
    source, target = Path(source), Path(target)
    target.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        if (source / name).is_dir():
            tmp = target / f".{name}.adopting"
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(source / name, tmp)
            shutil.rmtree(target / name, ignore_errors=True)
            tmp.rename(target / name)
    shutil.copy2(source / "config.json", target / "config.json")
