"""Everything that differs between one local process and N Ray Train workers, in one place.

The training function talks only to a :class:`Context`. :class:`LocalContext` is the debug mode (one
process, no Ray); the Ray Train context (:class:`clustergan.train.ray_train.RayContext`) implements the same methods
with
DDP, all-reduce and ``ray.train.report``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler


class Context:
    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def prepare_model(self, model: torch.nn.Module) -> torch.nn.Module:
        return model.to(self.device)

    def data_loader(self, dataset: Dataset, batch_size: int, seed: int, num_workers: int = 0) -> DataLoader:
        """Shuffled, sharded by rank. The same sampler in every mode, so one worker with batch 2b sees the
        same samples per step as two workers with batch b; call ``loader.sampler.set_epoch(e)``."""
        sampler = DistributedSampler(
            dataset, num_replicas=self.world_size, rank=self.rank, shuffle=True, seed=seed, drop_last=False
        )
        return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers, drop_last=False)

    def all_reduce_mean(self, values: dict[str, float]) -> dict[str, float]:
        return dict(values)

    def report(self, metrics: dict[str, Any], checkpoint_path: Path | None = None) -> None:
        """Called once per epoch by every rank (rank 0 passes the checkpoint it wrote)."""

    def resume_checkpoint(self) -> Path | None:
        return None

    def release_resume(self) -> None:
        """Called once the resume checkpoint is loaded: a context that fetched it into scratch space frees it."""


class LocalContext(Context):
    """One process, the debug mode: ``clustergan train --workers 0``."""

    def __init__(self, resume_from: Path | None = None, device: str | None = None):
        self._resume_from = resume_from
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))

    def resume_checkpoint(self) -> Path | None:
        return self._resume_from
