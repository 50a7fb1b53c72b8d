"""Config -> objects, and the driver-side preparation of a run (dataset folder, cluster statistics).

The only place that reads config sections to call constructors: modules below take explicit arguments.
"""

from __future__ import annotations

from pathlib import Path

import torch

from clustergan.cache import cache_dir, hash_key
from clustergan.config import TrainConfig
from clustergan.errors import ClusterganError


def build_generator(config: TrainConfig) -> torch.nn.Module:
    from clustergan.models import UNetGenerator

    m = config.model
    return UNetGenerator(size=config.data.size, ngf=m.ngf, nz=m.nz, num_clusters=config.cluster.k,
                         cluster_emb_dim=m.cluster_emb_dim, norm=m.norm, dropout=m.dropout)


def build_discriminator(config: TrainConfig) -> torch.nn.Module:
    from clustergan.models import PatchDiscriminator

    m = config.model
    return PatchDiscriminator(in_channels=6, ndf=m.ndf, n_layers=m.d_layers, num_scales=m.d_scales,
                              num_clusters=config.cluster.k if m.d_condition == "projection" else 0, norm=m.norm)


def synth_root(config: TrainConfig) -> Path:
    """The procedural dataset for ``data.root: null``, generated once into the cache (safe to race)."""
    from clustergan.data import make_synth

    s = config.data.synth
    root = cache_dir("datasets") / f"synth-{hash_key(s.num_modes, s.n_train, s.n_test, s.size, s.seed)}"
    if not (root / "modes.json").is_file():
        try:
            make_synth(root, num_modes=s.num_modes, n_train=s.n_train, n_test=s.n_test, size=s.size, seed=s.seed)
        except ClusterganError:
            if not (root / "modes.json").is_file():  # lost a race with another process: fine if it finished
                raise
    return root


def load_cluster_stats(config: TrainConfig):
    from clustergan.clustering import ClusterStats

    if not config.cluster.stats_dir:
        raise ClusterganError("cluster.k > 0 but no cluster statistics: run `clustergan cluster` first, "
                              "or train through `clustergan train`, which computes them")
    stats = ClusterStats.load(Path(config.cluster.stats_dir))
    if stats.k != config.cluster.k:
        raise ClusterganError(f"{config.cluster.stats_dir}: statistics have k={stats.k} but cluster.k="
                              f"{config.cluster.k}; point cluster.stats_dir at statistics for this k")
    return stats


def compute_clusters(config: TrainConfig, out_dir: Path):
    from clustergan.clustering import run_clustering

    return run_clustering(root=config.data.root, direction=config.data.direction, size=config.data.size,
                          encoder_name=config.encoder.name, k=config.cluster.k, out_dir=out_dir,
                          encoder_weights=config.encoder.weights, backend=config.cluster.backend, seed=config.seed)


def prepare_run(config: TrainConfig) -> TrainConfig:
    """Driver side, before any worker starts: fill ``data.root`` (procedural dataset) and, when the run
    uses clusters, compute their statistics into ``<run dir>/clusters`` unless ``cluster.stats_dir`` is set."""
    config = config.model_copy(deep=True)
    if config.data.root is None:
        config.data.root = str(synth_root(config))
    if config.cluster.k and not config.cluster.stats_dir:
        out = config.run_dir / "clusters"
        from clustergan.clustering import ClusterStats

        try:
            existing = ClusterStats.load(out)
        except Exception:  # noqa: BLE001 - absent or stale: recompute
            existing = None
        if existing is None or existing.k != config.cluster.k:
            compute_clusters(config, out)
        config.cluster.stats_dir = str(out)
    return config
