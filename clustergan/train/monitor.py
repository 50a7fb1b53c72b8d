"""What a training run shows while it trains (rank 0 only): TensorBoard scalars, the sample grid of a few fixed
test inputs, and the in-training evaluation (``train.eval_every``) through the same runner as ``clustergan
eval``. The training loop (:mod:`clustergan.train.loop`) calls it once per epoch; it never touches the models'
state beyond switching a generator to eval mode for a grid and back.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from clustergan.config import TrainConfig
from clustergan.scores import SCORES
from clustergan.train.grids import sample_grid


class RunMonitor:
    """A run's TensorBoard writer (``<run>/tensorboard``), sample grids (``<run>/samples``) and evaluations
    (``<run>/eval/metrics_epoch_NNNN.json``)."""

    def __init__(self, config: TrainConfig, run_dir: Path, device: torch.device):
        from tensorboardX import SummaryWriter

        from clustergan.data import load_sources

        self.config, self.run_dir, self.device = config, run_dir, device
        self.writer = SummaryWriter(str(run_dir / "tensorboard"))
        sources, _ = load_sources(config.data.root, "test", config.data.direction, config.data.size)
        self.fixed = sources[:4]

    def log(self, metrics: dict[str, float], epoch: int) -> None:
        """The epoch's finite scalars under ``train/``, at step ``epoch``."""
        for k, v in metrics.items():
            if isinstance(v, (int, float)) and math.isfinite(v):
                self.writer.add_scalar(f"train/{k}", v, epoch)
        self.writer.flush()

    def grid(self, G: torch.nn.Module, epoch: int) -> Path:
        """``G``'s samples for the fixed inputs (every cluster index, or a few noise vectors), as a PNG."""
        from torchvision.utils import save_image

        was_training = G.training
        G.eval()
        grid = sample_grid(
            G, self.fixed.to(self.device), nz=self.config.model.nz, k=self.config.cluster.k, seed=self.config.seed
        )
        G.train(was_training)
        out = self.run_dir / "samples" / f"epoch_{epoch:04d}.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        save_image(grid, out)
        self.writer.add_image("samples", grid, epoch)
        return out

    def evaluate(self, checkpoint_path: Path, epoch: int, generator: str) -> dict[str, float]:
        """``train.eval_protocol`` on the checkpoint just written; the scores also go to TensorBoard (``eval/``)."""
        from clustergan.train.evaluate import evaluate_run

        result = evaluate_run(
            checkpoint_path,
            protocol=self.config.train.eval_protocol,
            seed=self.config.seed,
            out=self.run_dir / "eval" / f"metrics_epoch_{epoch:04d}.json",
            ndb_bins=self.config.train.eval_ndb_bins,
            generator=generator,
        )
        scores = {k: float(result[k]) for k in SCORES if k in result}
        for k, v in scores.items():
            self.writer.add_scalar(f"eval/{k}", v, epoch)
        return scores

    def close(self) -> None:
        self.writer.close()
