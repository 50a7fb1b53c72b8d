"""``clustergan cluster``: features -> k-means + statistics -> artifact, report and montages.

Writes to ``out_dir``:

- ``cluster_stats.npz`` + ``cluster_stats.json``: the :class:`ClusterStats` the training loads;
- ``report.json``: k, per-cluster sizes and shrinkage, silhouette, backend, encoder and weights source,
  notes, and the training file names of each cluster;
- ``montage_cluster_{i}.png``: up to :data:`MONTAGE_CAP` training targets of cluster i;
- ``clusters.png``: an overview, one row of up to :data:`OVERVIEW_PER_ROW` targets per cluster.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torchvision.utils import make_grid, save_image

from clustergan.clustering.backends import get_backend
from clustergan.clustering.features import cached_features
from clustergan.clustering.stats import ClusterStats, fit_cluster_stats
from clustergan.encoders import FrozenEncoder, build_encoder
from clustergan.jsonio import write_json

MONTAGE_CAP = 32
OVERVIEW_PER_ROW = 8


def _to_unit(images: torch.Tensor) -> torch.Tensor:
    return ((images.float() + 1.0) / 2.0).clamp(0.0, 1.0)


def write_montages(targets: torch.Tensor, cluster_ids: np.ndarray, k: int, out_dir: Path) -> None:
    """``montage_cluster_{i}.png`` per cluster and the ``clusters.png`` overview from targets [N, 3, H, W]."""
    size = targets.shape[-1]
    rows = []
    for i in range(k):
        members = np.flatnonzero(cluster_ids == i)
        images = _to_unit(targets[members[:MONTAGE_CAP]])
        save_image(images, out_dir / f"montage_cluster_{i}.png", nrow=8, padding=2, pad_value=1.0)
        row = images[:OVERVIEW_PER_ROW]
        if row.shape[0] < OVERVIEW_PER_ROW:  # pad short rows with white so every row has the same width
            pad = torch.ones(OVERVIEW_PER_ROW - row.shape[0], 3, size, size)
            row = torch.cat([row, pad])
        rows.append(row)
    grid = make_grid(torch.cat(rows), nrow=OVERVIEW_PER_ROW, padding=2, pad_value=1.0)
    save_image(grid, out_dir / "clusters.png")


def format_table(stats: ClusterStats) -> str:
    lines = [f"{'cluster':>7}  {'size':>5}  {'shrinkage':>9}"]
    for i in range(stats.k):
        lines.append(f"{i:>7}  {int(stats.sizes[i]):>5}  {float(stats.shrinkage[i]):>9.3f}")
    sil = "undefined" if math.isnan(stats.silhouette) else f"{stats.silhouette:.4f}"
    lines.append(f"k={stats.k}  N={int(stats.sizes.sum())}  silhouette={sil}  backend={stats.backend}")
    lines.append(f"encoder={stats.encoder}  weights={stats.weights_source}")
    lines += [f"note: {note}" for note in stats.notes]
    return "\n".join(lines)


def cluster_inputs(
    root: str | Path, direction: str, size: int, encoder: FrozenEncoder, k: int, seed: int, backend: str
) -> dict:
    """Everything cluster statistics depend on, as plain JSON values (``ClusterStats.inputs``).

    ``backend`` is the resolved backend's name (``"sklearn"`` or ``"cuml"``): the two do not find the same
    clusters. The dataset is named by its content fingerprint and the weights by their digest, so the same
    data or weights at another path still match.
    """
    from clustergan.data import dataset_fingerprint

    return {
        "dataset_fingerprint": dataset_fingerprint(root, "train"),
        "direction": direction,
        "size": int(size),
        "k": int(k),
        "seed": int(seed),
        "encoder": encoder.name,
        "weights_id": encoder.weights_id,
        "input_size": encoder.input_size,
        "backend": backend,
    }


LEGACY_INPUTS = (
    "the statistics record none of their inputs (written by an older clustergan), so they cannot be "
    "checked against this run"
)


def input_differences(recorded: dict, wanted: dict, ignore: tuple[str, ...] = ()) -> list[str]:
    """Why statistics computed from ``recorded`` inputs do not fit a run that needs ``wanted`` ones: one
    ``"key: recorded A, this run B"`` per differing key (keys in ``ignore`` skipped); empty when they fit."""
    if not recorded:
        return [LEGACY_INPUTS]
    return [
        f"{key}: recorded {recorded.get(key)!r}, this run {value!r}"
        for key, value in wanted.items()
        if key not in ignore and recorded.get(key) != value
    ]


def run_clustering(
    root: str | Path,
    direction: str,
    size: int,
    encoder_name: str,
    k: int,
    out_dir: str | Path,
    encoder_weights: str | None = None,
    backend: str = "auto",
    seed: int = 0,
    encoder_input_size: int | None = None,
) -> ClusterStats:
    """Cluster the training targets of ``root`` and write the artifact, report and montages to ``out_dir``.

    Args:
        root: dataset root (``root/train``).
        direction: ``"AtoB"`` or ``"BtoA"`` (which half is the target).
        size: training resolution the targets are loaded at (the encoder resizes to its own input size).
        encoder_name, encoder_weights: see :func:`clustergan.encoders.build_encoder`.
        k: number of clusters.
        out_dir: output folder (created).
        backend: ``"auto"``, ``"sklearn"`` or ``"cuml"``.
        seed: k-means random state.
        encoder_input_size: ``encoder.input_size`` (None: the network's own size).
    """
    from clustergan.data import load_targets

    cluster_backend = get_backend(backend)  # fail on a bad backend before any expensive work
    encoder = build_encoder(encoder_name, encoder_weights, encoder_input_size)
    if torch.cuda.is_available():
        encoder = encoder.to("cuda")
    features = cached_features(root, direction, size, encoder_name, encoder_weights, split="train", encoder=encoder)
    stats = fit_cluster_stats(
        features, k, cluster_backend, seed=seed, encoder=encoder.name, weights_source=encoder.weights_source
    )
    stats.inputs = cluster_inputs(root, direction, size, encoder, k, seed, cluster_backend.name)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stats.save(out_dir)
    targets, names = load_targets(root, "train", direction, size)
    report = {
        "k": stats.k,
        "num_images": int(features.shape[0]),
        "feature_dim": int(features.shape[1]),
        "sizes": [int(s) for s in stats.sizes],
        "shrinkage": [float(s) for s in stats.shrinkage],
        "silhouette": None if math.isnan(stats.silhouette) else stats.silhouette,
        "backend": stats.backend,
        "encoder": stats.encoder,
        "weights_source": stats.weights_source,
        "inputs": stats.inputs,
        "seed": seed,
        "root": str(Path(root).resolve()),
        "direction": direction,
        "size": int(size),
        "notes": stats.notes,
        "members": {str(i): [names[j] for j in np.flatnonzero(stats.cluster_ids == i)] for i in range(stats.k)},
    }
    write_json(out_dir / "report.json", report, indent=1)
    write_montages(targets, stats.cluster_ids, stats.k, out_dir)
    print(format_table(stats))
    print(f"cluster statistics, report and montages -> {out_dir}")
    return stats
