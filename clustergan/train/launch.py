"""One way to start a training run, at every scale: :func:`run_training`.

``clustergan train``, the reproduction (``ray_jobs/reproduce.py``), every trial of a sweep and
``ray_jobs/train.py`` call it. It prepares the run once on the driver (``data.root``, the cluster
statistics: :func:`clustergan.train.builders.prepare_run`), writes the run's ``config.json`` /
``config.yaml``, then trains in this process (``workers=0``, the debug mode) or on ``workers`` Ray Train
workers (:mod:`clustergan.train.ray_train`). Both run the same :func:`clustergan.train.loop.train_func`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import yaml

from clustergan.cache import atomic_write_bytes
from clustergan.config import TrainConfig
from clustergan.errors import ClusterganError
from clustergan.jsonio import write_json
from clustergan.provenance import provenance
from clustergan.train.builders import prepare_run
from clustergan.train.checkpoint import latest_checkpoint
from clustergan.train.dist import Context, LocalContext
from clustergan.train.loop import train_func
from clustergan.train.ray_train import DEFAULT_MAX_FAILURES, train_with_ray


def write_run_config(config: TrainConfig) -> None:
    """``config.json`` (the config and where it ran) and ``config.yaml`` (the config alone) in the run folder."""
    config.run_dir.mkdir(parents=True, exist_ok=True)
    write_json(config.run_dir / "config.json", {"config": config.to_dict(), "provenance": provenance()})
    atomic_write_bytes(config.run_dir / "config.yaml", yaml.safe_dump(config.to_dict(), sort_keys=False).encode())


def run_training(
    config: TrainConfig,
    workers: int = 0,
    gpu: bool | None = None,
    resume: bool = False,
    *,
    storage_path: str | None = None,
    cpus_per_worker: float = 1.0,
    gpus_per_worker: float | None = None,
    max_failures: int = DEFAULT_MAX_FAILURES,
    name: str | None = None,
    callbacks: list | None = None,
    placement: str = "PACK",
    local_context: Callable[[Path | None], Context] | None = None,
) -> TrainConfig:
    """Train ``config``; returns it prepared (``data.root`` and ``cluster.stats_dir`` filled in).

    ``workers``: 0 trains in this process, N >= 1 on N Ray Train workers (DDP; NCCL on GPUs, gloo on CPUs).
    ``gpu``: True trains on GPUs, False on CPUs; None (in-process only) on a GPU when torch finds one.
    ``resume`` continues from the run's last checkpoint (a fresh start otherwise; a missing checkpoint is
    said and starts from scratch). The keyword arguments
    reach Ray Train (:func:`clustergan.train.ray_train.train_with_ray`); ``local_context(resume_from)``
    replaces the in-process :class:`~clustergan.train.dist.LocalContext` (a sweep trial reports to Tune).
    ``placement`` is Ray's strategy for the workers (``PACK``, ``SPREAD``, ``STRICT_SPREAD``: one per node).
    """
    if workers < 0:
        raise ClusterganError(f"--workers {workers}: give 0 (this process) or the number of Ray Train workers")
    config = prepare_run(config)
    resume_from = latest_checkpoint(config.run_dir / "checkpoints") if resume else None
    if resume and resume_from is None:
        print(f"--resume: no checkpoint in {config.run_dir / 'checkpoints'}, starting from scratch", flush=True)
    write_run_config(config)
    if workers > 0:
        train_with_ray(
            config,
            workers=workers,
            use_gpu=bool(gpu),
            resume=resume_from is not None,
            storage_path=storage_path,
            cpus_per_worker=cpus_per_worker,
            gpus_per_worker=gpus_per_worker,
            max_failures=max_failures,
            name=name,
            callbacks=callbacks,
            placement_strategy=placement,
        )
    elif local_context is not None:
        train_func(config.to_dict(), local_context(resume_from))
    else:
        train_func(
            config.to_dict(), LocalContext(resume_from=resume_from, device={True: "cuda", False: "cpu"}.get(gpu))
        )
    return config
