"""The paper's cluster losses: pull the encoder features of G(x, z, i) towards cluster i.

Both read the cluster statistics of :mod:`clustergan.clustering.stats`: means mu_i [k, D] and the lower
triangular precision factors L_i [k, D, D] with ``Sigma_i^-1 = L_i @ L_i.T``.

- ``kl1`` (L_kL1 = |mu_i - E(G)|): the paper gives no reduction over dimensions. We take the mean over the
  batch AND the D dimensions, so lambda_kL1 means the same for any encoder width D (a sum over D would
  scale it by 1280 for EfficientNet features).
- ``mahalanobis`` (L_km = sqrt(d^T Sigma_i^-1 d), d = E(G) - mu_i): computed as ||L_i^T d||, averaged over
  the batch. The paper gives no epsilon; we use sqrt(||L_i^T d||^2 + eps) because the gradient of sqrt is
  infinite at 0 (a feature exactly at the mean would give NaN); eps = 1e-8 changes the value by at most
  1e-4.

Cluster indices are not range-checked per step (that would force a device sync): check once that the
model's num_clusters equals the statistics' k.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class ClusterTargets(nn.Module):
    """Cluster means and precision factors as float32 buffers (they follow ``.to(device)`` and state_dict).

    Args:
        means: [k, D] cluster means mu_i (numpy array or tensor).
        precision_cholesky: [k, D, D] lower L_i with Sigma_i^-1 = L_i L_i^T.
    """

    def __init__(self, means: np.ndarray | torch.Tensor, precision_cholesky: np.ndarray | torch.Tensor) -> None:
        super().__init__()
        means_t = torch.as_tensor(np.asarray(means) if not torch.is_tensor(means) else means).float()
        chol_t = torch.as_tensor(
            np.asarray(precision_cholesky) if not torch.is_tensor(precision_cholesky) else precision_cholesky
        ).float()
        if means_t.dim() != 2 or chol_t.shape != (means_t.shape[0], means_t.shape[1], means_t.shape[1]):
            raise ValueError(
                f"cluster statistics do not fit: means {tuple(means_t.shape)} must be [k, D] and "
                f"precision_cholesky {tuple(chol_t.shape)} must be [k, D, D]"
            )
        self.register_buffer("means", means_t.contiguous())
        self.register_buffer("precision_cholesky", chol_t.contiguous())

    @property
    def num_clusters(self) -> int:
        return self.means.shape[0]

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    def _check(self, features: torch.Tensor, cluster_ids: torch.Tensor) -> None:
        if features.dim() != 2 or features.shape[1] != self.dim:
            raise ValueError(f"features have shape {tuple(features.shape)}, expected [B, {self.dim}]")
        if cluster_ids.shape != (features.shape[0],):
            raise ValueError(f"cluster_ids have shape {tuple(cluster_ids.shape)}, expected [{features.shape[0]}]")

    def kl1(self, features: torch.Tensor, cluster_ids: torch.Tensor) -> torch.Tensor:
        """L_kL1: mean over batch and dimensions of |mu_i - f|. features [B, D], cluster_ids [B] -> scalar."""
        self._check(features, cluster_ids)
        return (self.means[cluster_ids] - features.float()).abs().mean()

    def mahalanobis(self, features: torch.Tensor, cluster_ids: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
        """L_km: mean over batch of sqrt(||L_i^T (f - mu_i)||^2 + eps). features [B, D] -> scalar."""
        self._check(features, cluster_ids)
        diff = features.float() - self.means[cluster_ids]  # [B, D]
        return torch.sqrt(self._whiten(diff, cluster_ids).square().sum(dim=1) + eps).mean()

    def _whiten(self, diff: torch.Tensor, cluster_ids: torch.Tensor, grouped: bool | None = None) -> torch.Tensor:
        """y_b = L_i^T d_b for each row b (as the row vector d_b^T L_i), [B, D] -> [B, D].

        On CPU the rows are grouped by cluster: one [n_c, D] x [D, D] product per cluster present, reading each
        L_i once. Gathering L_i per row instead copies 6.5 MB per row at D = 1280: fwd + bwd 5.6 vs 3.9 ms
        for 2 rows, 94 vs 22 ms for 16 as one batched product, 24 / 160 ms with the einsum used before
        (``benchmarks/mahalanobis.py``). On CUDA the grouping would wait for the device (``unique`` reads
        the ids back), so there the gather stays: one batched product, no host sync. ``grouped`` forces
        either way (tests compare the two).
        """
        if not (diff.device.type == "cpu" if grouped is None else grouped):
            return torch.bmm(diff.unsqueeze(1), self.precision_cholesky[cluster_ids]).squeeze(1)
        if diff.shape[0] == 0:
            return diff
        clusters, inverse = torch.unique(cluster_ids, return_inverse=True)
        order = torch.argsort(inverse, stable=True)  # rows sorted by cluster, so each cluster is one slice
        counts = torch.bincount(inverse, minlength=len(clusters)).tolist()
        groups = zip(clusters.tolist(), diff[order].split(counts), strict=True)
        parts = [d @ self.precision_cholesky[c] for c, d in groups]
        return torch.cat(parts).index_select(0, torch.argsort(order))  # back to the rows' own order
