"""Validation of the image sets handed to the metrics.

Every metric takes images as float tensors in [-1, 1], [N, 3, H, W] (or a sequence of [3, H, W] tensors of
one size). Bad input raises :class:`ClusterganError` naming the metric and the set, never a silent fix.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from clustergan.errors import ClusterganError

# Generators end in tanh and loaders normalise exactly, so anything past this slack is a range mistake
# (images in [0, 255] or [0, 1] mistaken for [-1, 1] would be caught on the high side).
RANGE_SLACK = 1e-3


def check_images(images: Tensor | Sequence[Tensor], metric: str, name: str, min_count: int = 1) -> Tensor:
    """Return ``images`` as one float tensor [N, 3, H, W] after checking shape, count, values and range.

    ``metric`` and ``name`` (e.g. "fid", "real") only appear in error messages.
    """
    where = f"{metric}: {name} images"
    if not isinstance(images, Tensor):
        images = list(images)
        if not images:
            raise ClusterganError(f"{where}: the set is empty; at least {min_count} are needed")
        sizes = [tuple(image.shape) for image in images]
        for index, size in enumerate(sizes):
            if size != sizes[0]:
                raise ClusterganError(
                    f"{where} have different sizes: image 0 is {_shape(sizes[0])}, image {index} is "
                    f"{_shape(size)}; resize them to one size first"
                )
        images = torch.stack(images)
    if images.dim() != 4 or images.shape[1] != 3:
        raise ClusterganError(f"{where} must have shape [N, 3, H, W], got {list(images.shape)}")
    if not images.is_floating_point():
        raise ClusterganError(f"{where} must be float in [-1, 1], got dtype {images.dtype}")
    if images.shape[0] < min_count:
        raise ClusterganError(f"{where}: got {images.shape[0]}, at least {min_count} are needed")
    if not torch.isfinite(images).all():
        bad = int((~torch.isfinite(images)).flatten(1).any(1).nonzero()[0])
        raise ClusterganError(f"{where}: image {bad} contains NaN or Inf values")
    low, high = float(images.min()), float(images.max())
    if low < -1 - RANGE_SLACK or high > 1 + RANGE_SLACK:
        raise ClusterganError(
            f"{where} must lie in [-1, 1], got values in [{low:.4g}, {high:.4g}]; map them to [-1, 1] first"
        )
    return images


def _shape(size: tuple[int, ...]) -> str:
    return "x".join(str(s) for s in size)
