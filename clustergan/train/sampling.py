"""Load a trained generator and sample from it, choosing the cluster index (the point of the method).

Cluster choice when none is given: drawn from the training cluster frequencies, independently per sample
(``frequency``); ``fixed`` uses one index; ``target`` uses the test target's own cluster (nearest cluster mean
of its encoder features). The choice is recorded with every result.

Which weights: the EMA generator (``"G_ema"``, see :mod:`clustergan.train.ema`) by default, the raw ``"G"`` on
request. A checkpoint trained without EMA has only G: asking for ``ema`` then gives G and says so in
:attr:`TrainedGenerator.generator_note`, which evaluation records; it is never a silent substitute.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Literal

import torch

from clustergan.config import TrainConfig
from clustergan.errors import ClusterganError
from clustergan.train import checkpoint as ckpt

GeneratorChoice = Literal["ema", "raw"]


def choose_weights(state: dict, generator: GeneratorChoice, config: TrainConfig) -> tuple[dict, str, str | None]:
    """(G's state dict, the generator used: "ema" or "raw", a note when that is not the one asked for)."""
    if generator not in ("ema", "raw"):
        raise ClusterganError(f"generator {generator!r}: expected 'ema' (the weights' average) or 'raw' (G)")
    if generator == "raw":
        return state["G"], "raw", None
    if "G_ema" in state:
        return state["G_ema"], "ema", None
    note = (
        f"checkpoint has no EMA generator (train.ema.half_life_images={config.train.ema.half_life_images}); "
        "using the raw G"
    )
    return state["G"], "raw", note


class TrainedGenerator:
    """A generator rebuilt from a checkpoint: ``generate(sources, cluster_ids, z)`` and helpers.

    ``generator``: "ema" (default) loads the checkpoint's EMA generator, "raw" its G. :attr:`generator` is
    the one loaded; :attr:`generator_note` says why it differs from the one asked for (else None)."""

    def __init__(
        self, state: dict, source: Path, device: str | torch.device = "cpu", generator: GeneratorChoice = "ema"
    ):
        from clustergan.train.builders import build_generator

        self.config = TrainConfig.model_validate(state["config"])
        self.device = torch.device(device)
        weights, self.generator, self.generator_note = choose_weights(state, generator, self.config)
        self.G = build_generator(self.config).to(self.device)
        self.G.load_state_dict(weights)
        self.G.eval()  # pix2pix's dropout stays on in eval() (the model applies it with training=True)
        self.epoch = int(state["epoch"])
        self.checkpoint = source
        freqs = state.get("cluster_frequencies") or []
        self.cluster_frequencies = torch.tensor(freqs, dtype=torch.float64)

    @property
    def k(self) -> int:
        return self.config.cluster.k

    @property
    def nz(self) -> int:
        return self.config.model.nz

    def draw_clusters(self, n: int, generator: torch.Generator) -> torch.Tensor | None:
        if not self.k:
            return None
        return torch.multinomial(self.cluster_frequencies, n, replacement=True, generator=generator)

    @torch.no_grad()
    def generate(
        self,
        sources: torch.Tensor,
        cluster_ids: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        z: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``sources`` [B, 3, H, W] in [-1, 1] -> [B, 3, H, W]. ``cluster_ids`` [B] (None: drawn from the
        training frequencies). Noise ``z`` [B, nz] (None: drawn from ``generator``, CPU)."""
        generator = generator or torch.Generator().manual_seed(0)
        B = sources.shape[0]
        if self.k:
            if cluster_ids is None:
                cluster_ids = self.draw_clusters(B, generator)
            cluster_ids = torch.as_tensor(cluster_ids, dtype=torch.long)
            if int(cluster_ids.max()) >= self.k or int(cluster_ids.min()) < 0:
                raise ClusterganError(
                    f"cluster index out of range: this model has k={self.k} clusters (0..{self.k - 1})"
                )
            cluster_ids = cluster_ids.to(self.device)
        if z is None and self.nz:
            z = torch.randn(B, self.nz, generator=generator)
        z = z.to(self.device) if self.nz else None
        with self._dropout_seeded(generator):
            return self.G(sources.to(self.device), z, cluster_ids).float().clamp(-1, 1)

    @contextlib.contextmanager
    def _dropout_seeded(self, generator: torch.Generator):
        """pix2pix's noise is its test-time dropout, which draws from torch's global RNG: seed that from
        ``generator`` too, inside a fork, so the same generator gives the same images (and metrics) on every
        call and the caller's global RNG is left as it was. Models without dropout draw nothing here, so their
        noise stream is unchanged."""
        if not self.config.model.dropout:
            yield
            return
        seed = int(torch.randint(2**62, (1,), generator=generator))
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            yield

    def generate_fn(self, choice: str = "frequency", fixed_index: int = 0, target_clusters: torch.Tensor | None = None):
        """A sampler for :func:`clustergan.metrics.evaluate`: (sources [B,...], n, generator) -> [B, n, 3, H, W].
        For ``target`` pass ``target_clusters`` [N_test] in input order."""
        offset = {"i": 0}

        def fn(sources: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
            B = sources.shape[0]
            rows = []
            for _ in range(n):
                ids = None
                if self.k and choice == "fixed":
                    ids = torch.full((B,), fixed_index, dtype=torch.long)
                elif self.k and choice == "target":
                    ids = target_clusters[offset["i"] : offset["i"] + B]
                # back to the sources' device: the generator may run on a GPU while the metrics run on the CPU
                rows.append(self.generate(sources, ids, generator).to(sources.device))
            offset["i"] += B
            return torch.stack(rows, dim=1)

        return fn


def resolve_checkpoint(run_or_checkpoint: str | Path) -> Path:
    path = Path(run_or_checkpoint)
    if path.is_file():
        return path
    for folder in (path / "checkpoints", path):
        found = ckpt.latest_checkpoint(folder)
        if found is not None:
            return found
    raise ClusterganError(
        f"{path}: no checkpoint found (expected {path}/checkpoints/epoch_NNNN.pt); "
        "train first with `clustergan train`, or pass --checkpoint FILE"
    )


def load_generator(
    run_dir: str | Path, device: str | torch.device = "cpu", generator: GeneratorChoice = "ema"
) -> TrainedGenerator:
    """Load the latest checkpoint of a run folder (or a checkpoint file) for sampling; ``generator`` "ema"
    (its EMA generator, or G with a note when it has none) or "raw" (its G)."""
    path = resolve_checkpoint(run_dir)
    return TrainedGenerator(ckpt.load_checkpoint(path), path, device, generator)
