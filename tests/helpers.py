"""Helpers shared by test modules."""

from __future__ import annotations

import numpy as np
import torch


def biases_before_instance_norm(model: torch.nn.Module) -> set[str]:
    """Names of conv biases directly followed by a non-affine InstanceNorm: the norm subtracts them again, so
    their true gradient is 0 and the computed one is float noise (~1e-9 to 1e-7)."""
    names = set()
    for prefix, module in model.named_modules():
        if isinstance(module, torch.nn.Sequential):
            children = list(module.named_children())
            for (name, layer), (_, after) in zip(children, children[1:], strict=False):
                norm = isinstance(after, torch.nn.InstanceNorm2d) and not after.affine
                if norm and getattr(layer, "bias", None) is not None:
                    names.add(f"{prefix}.{name}.bias" if prefix else f"{name}.bias")
    return names


def mahalanobis_reference(features, means, precision_cholesky, cluster_ids) -> np.ndarray:
    """The golden Mahalanobis distance: [B] ``|| L_i^T (f_b - mu_i) ||`` in float64, one row at a time
    (``precision_cholesky`` [k, D, D] lower L_i with Sigma_i^-1 = L_i L_i^T), independent of the grouped
    product the training loss uses."""
    ids = np.asarray(cluster_ids, dtype=np.int64)
    diff = np.asarray(features, dtype=np.float64) - np.asarray(means, dtype=np.float64)[ids]
    chol = np.asarray(precision_cholesky, dtype=np.float64)[ids]
    return np.linalg.norm(np.einsum("bji,bj->bi", chol, diff), axis=1)
