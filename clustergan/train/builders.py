"""Config -> objects, and the driver-side preparation of a run (dataset folder, cluster statistics).

The only place that reads config sections to call constructors: modules below take explicit arguments.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch

from clustergan.cache import cache_dir, hash_key
from clustergan.config import TrainConfig
from clustergan.errors import ClusterganError


def build_generator(config: TrainConfig) -> torch.nn.Module:
    from clustergan.models import UNetGenerator

    m = config.model
    return UNetGenerator(
        size=config.data.size,
        ngf=m.ngf,
        nz=m.nz,
        num_clusters=config.cluster.k,
        cluster_emb_dim=m.cluster_emb_dim,
        norm=m.norm,
        dropout=m.dropout,
    )


def build_discriminator(config: TrainConfig) -> torch.nn.Module:
    from clustergan.models import PatchDiscriminator

    m = config.model
    return PatchDiscriminator(
        in_channels=6,
        ndf=m.ndf,
        n_layers=m.d_layers,
        num_scales=m.d_scales,
        scale_width=m.d_scale_width,
        num_clusters=config.cluster.k if m.d_condition == "projection" else 0,
        norm=m.norm,
    )


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


def build_config_encoder(config: TrainConfig):
    """The frozen encoder E of ``config`` (name, weights, input size): one place for the three keys."""
    from clustergan.encoders import build_encoder

    e = config.encoder
    return build_encoder(e.name, e.weights, e.input_size)


@functools.lru_cache(maxsize=8)
def _encoder_identity(name: str, weights: str | None, input_size: int | None):
    """A built encoder, once per process and setting: checking a sweep's 15 statistics folders must not build
    it 15 times (~1 s each)."""
    from clustergan.encoders import build_encoder

    return build_encoder(name, weights, input_size)


def wanted_cluster_inputs(config: TrainConfig) -> dict:
    """The :func:`clustergan.clustering.cluster_inputs` that ``config``'s cluster statistics must have
    (``data.root`` already filled in)."""
    from clustergan.clustering import cluster_inputs, get_backend

    e = config.encoder
    encoder = _encoder_identity(e.name, e.weights, e.input_size)
    return cluster_inputs(
        config.data.root,
        config.data.direction,
        config.data.size,
        encoder,
        config.cluster.k,
        config.seed,
        get_backend(config.cluster.backend).name,
    )


# A folder the user names (cluster.stats_dir) was chosen on purpose: its k-means seed and backend are its own.
# What defines the feature space and the data must still match.
CHOSEN_STATS_FREE = ("seed", "backend")


def stale_reasons(stats_dir: Path, config: TrainConfig, ignore: tuple[str, ...] = ()) -> list[str]:
    """Why the statistics in ``stats_dir`` cannot serve ``config`` (absent, unreadable, or computed from other
    inputs); empty when they fit."""
    from clustergan.clustering import ClusterStats, input_differences

    try:
        stats = ClusterStats.load(stats_dir)
    except ClusterganError as e:
        return [str(e)]
    return input_differences(stats.inputs, wanted_cluster_inputs(config), ignore)


def with_data_root(config: TrainConfig) -> TrainConfig:
    """``config`` with ``data.root`` filled in: ``null`` means the procedural dataset (generated once); the one
    place that resolves it."""
    if config.data.root is not None:
        return config
    config = config.model_copy(deep=True)
    config.data.root = str(synth_root(config))
    return config


def load_cluster_stats(config: TrainConfig):
    from clustergan.clustering import ClusterStats

    if not config.cluster.stats_dir:
        raise ClusterganError(
            "cluster.k > 0 but no cluster statistics: run `clustergan cluster` first, "
            "or train through `clustergan train`, which computes them"
        )
    stats = ClusterStats.load(Path(config.cluster.stats_dir))
    if stats.k != config.cluster.k:
        raise ClusterganError(
            f"{config.cluster.stats_dir}: statistics have k={stats.k} but cluster.k="
            f"{config.cluster.k}; point cluster.stats_dir at statistics for this k"
        )
    return stats


def compute_clusters(config: TrainConfig, out_dir: Path):
    from clustergan.clustering import run_clustering

    return run_clustering(
        root=config.data.root,
        direction=config.data.direction,
        size=config.data.size,
        encoder_name=config.encoder.name,
        k=config.cluster.k,
        out_dir=out_dir,
        encoder_weights=config.encoder.weights,
        backend=config.cluster.backend,
        seed=config.seed,
        encoder_input_size=config.encoder.input_size,
    )


def ensure_clusters(config: TrainConfig, out: Path) -> None:
    """Statistics for ``config`` in ``out``: kept when they were computed from the same inputs, else
    recomputed (saying why), so a changed size, direction, dataset, seed, encoder or input size never trains
    against another run's statistics."""
    reasons = stale_reasons(out, config)
    if not reasons:
        return
    if (out / "cluster_stats.json").is_file():
        print(f"{out}: recomputing the cluster statistics ({'; '.join(reasons)})", flush=True)
    compute_clusters(config, out)


def prepare_run(config: TrainConfig) -> TrainConfig:
    """Driver side, before any worker starts: fill ``data.root`` (procedural dataset) and, when the run
    uses clusters, compute their statistics into ``<run dir>/clusters`` (reused only when they were computed
    from this run's inputs), or check the ``cluster.stats_dir`` given against this run."""
    config = with_data_root(config).model_copy(deep=True)
    if config.cluster.k and config.cluster.stats_dir:
        reasons = stale_reasons(Path(config.cluster.stats_dir), config, ignore=CHOSEN_STATS_FREE)
        if reasons:
            raise ClusterganError(
                f"cluster.stats_dir={config.cluster.stats_dir}: these statistics do not fit this run: "
                f"{'; '.join(reasons)}. Recompute them with `clustergan cluster` for this config, or leave "
                "cluster.stats_dir unset and the run computes its own"
            )
    elif config.cluster.k:
        out = config.run_dir / "clusters"
        ensure_clusters(config, out)
        config.cluster.stats_dir = str(out)
    return config
