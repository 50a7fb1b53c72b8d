"""The runs of a race: one candidate x seed trained, then evaluated under the race's protocol.

:func:`train_and_evaluate` runs one in this process. :func:`run_concurrently` runs a round's missing runs as
Ray tasks, ``concurrent`` at a time (on a cluster, across its nodes: a task asks for ``cpus_per_run`` CPUs,
and Ray places it where they are free). Each task finds or rebuilds its inputs on its node
(:mod:`clustergan.train.node_inputs`: the procedural data, the cluster statistics through the object store)
and returns its ``metrics.json``, which the driver writes into its own race folder as soon as the task ends.
So a race killed mid-round keeps every run that had finished, and a rerun trains only the others.
"""

from __future__ import annotations

import copy
import math
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from clustergan.config import TrainConfig, validate
from clustergan.errors import ClusterganError
from clustergan.jsonio import read_json, write_json
from clustergan.tune.records import METRICS
from clustergan.tune.sweep_config import OBJECTIVES

METRICS_FILE = "metrics.json"


class Candidate(BaseModel):
    """One entrant: a trial of the experiment (its training config as trained, seed and folder replaced)."""

    model_config = ConfigDict(extra="forbid")
    name: str  # the trial id
    kind: str  # "search", "baseline:<name>" or "control:<name>"
    train_config: dict[str, Any]
    explored: dict[str, dict[str, float]] = {}  # {str(seed): metrics} the explore stage already has
    # the race's seed s trains at s + seed_offset: a copy of a candidate on other seeds (still paired by index)
    seed_offset: int = 0

    @property
    def control(self) -> bool:
        """A baseline or hand-set control: it enters every race and is never the race's answer."""
        return self.kind != "search"

    def seed(self, race_seed: int) -> int:
        """The training seed this candidate uses for the race's seed ``race_seed``."""
        return race_seed + self.seed_offset


def run_config(train_config: dict[str, Any], seed: int, out: Path, clusters: Path, label: str) -> TrainConfig:
    """A candidate's training config for ``seed`` in the run folder ``out``, against the cluster statistics
    under ``clusters/k{K}`` (an experiment's: the ones its explore stage trained with)."""
    data = copy.deepcopy(train_config)
    data["seed"], data["out"] = seed, str(out)
    k = int(data.get("cluster", {}).get("k") or 0)
    if k:
        data["cluster"]["stats_dir"] = str((clusters / "clusters" / f"k{k}").resolve())
    return validate(data, source=f"race candidate {label} seed {seed}")


def metrics_of(path: Path, protocol: str) -> dict[str, float] | None:
    """The run's metrics under ``protocol``, or None when it has none yet (or another protocol's)."""
    done = read_json(path, {})
    if done.get("protocol", {}).get("name") != protocol:
        return None
    return {m: float(done[m]) for m in METRICS if isinstance(done.get(m), (int, float))}


def usable(got: dict[str, float] | None) -> bool:
    """Every objective there and finite: what a race can compare."""
    return got is not None and all(math.isfinite(got.get(m, math.nan)) for m in OBJECTIVES)


def train_and_evaluate(config: TrainConfig, protocol: str, seed: int) -> None:
    """One run in this process; a run folder with checkpoints continues from the last one."""
    from clustergan.train.evaluate import evaluate_run
    from clustergan.train.launch import run_training

    cfg = run_training(config, resume=True)
    evaluate_run(cfg.run_dir, protocol=protocol, seed=seed, out=Path(config.out) / METRICS_FILE)


def _task(config_dict: dict[str, Any], inputs: dict[str, Any], protocol: str, seed: int) -> dict[str, Any]:
    """A Ray task: one run on whichever node Ray chose; returns its metrics.json and where it ran."""
    from clustergan.train.node_inputs import localize_inputs

    config = TrainConfig.model_validate(localize_inputs(config_dict, inputs))
    train_and_evaluate(config, protocol, seed)
    return {"metrics": read_json(Path(config.out) / METRICS_FILE), "host": socket.gethostname(), "pid": os.getpid()}


def run_concurrently(
    runs: list[tuple[str, TrainConfig]],
    protocol: str,
    concurrent: int,
    cpus_per_run: float,
    on_done: Callable[[str, dict[str, Any]], None],
) -> None:
    """Train and evaluate ``runs`` (``(label, config)``, each config's ``out`` its run folder) as Ray tasks,
    at most ``concurrent`` at once; ``on_done(label, {"host", "pid"})`` after each has written its metrics."""
    import ray

    from clustergan.train.builders import with_data_root
    from clustergan.train.node_inputs import describe_inputs

    started_here = not ray.is_initialized()
    if started_here:
        ray.init()
    task = ray.remote(num_cpus=cpus_per_run, max_retries=0)(_task)
    waiting, pending = list(runs), {}
    try:
        while waiting or pending:
            while waiting and len(pending) < concurrent:
                label, config = waiting.pop(0)
                config = with_data_root(config)
                ref = task.remote(config.to_dict(), describe_inputs(config), protocol, config.seed)
                pending[ref] = (label, config)
            [ref], _ = ray.wait(list(pending), num_returns=1)
            label, config = pending.pop(ref)
            try:
                done = ray.get(ref)
            except ray.exceptions.RayTaskError as e:
                raise ClusterganError(f"race run {label} ({config.out}) failed: {e.cause!r}") from None
            write_json(Path(config.out) / METRICS_FILE, done["metrics"])  # the driver's copy, if it ran elsewhere
            on_done(label, {"host": done["host"], "pid": done["pid"]})
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
        if started_here:
            ray.shutdown()
