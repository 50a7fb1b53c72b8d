"""Encoder features of a dataset split, computed once and cached on disk.

The cache key holds everything that determines the features: the dataset content
(:func:`clustergan.data.dataset_fingerprint`), the split, the translation direction (which half is the
target), the load size, the encoder name, its ``weights_id`` (a digest of the weights themselves, so the same
weights installed elsewhere hit the cache) and its input size. Clustering the same
features with another k or seed therefore never runs the encoder again.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from clustergan.cache import atomic_write_bytes, cache_dir, hash_key
from clustergan.encoders import FrozenEncoder, build_encoder
from clustergan.jsonio import write_json


@torch.no_grad()
def extract_features(encoder: FrozenEncoder, images: torch.Tensor, batch_size: int = 32) -> np.ndarray:
    """Features of ``images`` [N, 3, H, W] in [-1, 1] -> np.ndarray [N, D] float32.

    Batches are moved to the encoder's device; the images may stay on the CPU.
    """
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be [N, 3, H, W], got shape {tuple(images.shape)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    device = next(encoder.parameters()).device
    out = np.empty((images.shape[0], encoder.feature_dim), dtype=np.float32)
    starts = range(0, images.shape[0], batch_size)
    for start in tqdm(starts, desc=f"{encoder.name} features", unit="batch", leave=False):
        batch = images[start : start + batch_size].to(device=device, dtype=torch.float32)
        out[start : start + batch.shape[0]] = encoder(batch).float().cpu().numpy()
    return out


def features_cache_key(fingerprint: str, split: str, direction: str, size: int, encoder: FrozenEncoder) -> str:
    return hash_key(
        "features-v3",  # v3: weights by content digest, not by where they were read from
        fingerprint,
        split,
        direction,
        int(size),
        encoder.name,
        encoder.weights_id,
        encoder.input_size,
    )


def cached_features(
    root: str | Path,
    direction: str,
    size: int,
    encoder_name: str,
    encoder_weights: str | None = None,
    split: str = "train",
    encoder: FrozenEncoder | None = None,
    input_size: int | None = None,
) -> np.ndarray:
    """Features [N, D] float32 of the ``split`` targets of ``root`` (in ``load_targets`` order), cached.

    Args:
        root: dataset root (``root/{train,test}``).
        direction: ``"AtoB"`` or ``"BtoA"``: which half is the target.
        size: side the targets are loaded at (the training resolution) before the encoder resizes them.
        encoder_name, encoder_weights: passed to :func:`clustergan.encoders.build_encoder`.
        split: dataset split.
        encoder: an already built encoder (must match ``encoder_name``) to avoid building it twice; it
            runs on its own device, at its own input size. Otherwise one is built and put on the GPU when
            there is one.
        input_size: ``encoder.input_size`` for the encoder built here (None: the network's own size).

    The cache lives under ``cache_dir("features")`` (``<key>.npy`` plus ``<key>.json`` describing it).
    """
    from clustergan.data import dataset_fingerprint, load_targets

    if encoder is None:
        encoder = build_encoder(encoder_name, encoder_weights, input_size)
        if torch.cuda.is_available():
            encoder = encoder.to("cuda")
    elif encoder.name != encoder_name:
        raise ValueError(f"encoder {encoder.name!r} given for encoder_name {encoder_name!r}")
    fingerprint = dataset_fingerprint(root, split)
    key = features_cache_key(fingerprint, split, direction, size, encoder)
    path = cache_dir("features") / f"{key}.npy"
    if path.is_file():
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            pass  # a damaged entry is recomputed below
    targets, _ = load_targets(root, split, direction, size)
    features = extract_features(encoder, targets)
    buf = io.BytesIO()
    np.save(buf, features, allow_pickle=False)
    atomic_write_bytes(path, buf.getvalue())
    description = {
        "root": str(Path(root).resolve()),
        "dataset_fingerprint": fingerprint,
        "split": split,
        "direction": direction,
        "size": int(size),
        "encoder": encoder.name,
        "weights_source": encoder.weights_source,
        "weights_id": encoder.weights_id,
        "input_size": encoder.input_size,
        "shape": list(features.shape),
    }
    write_json(path.with_suffix(".json"), description, indent=1)
    return features
