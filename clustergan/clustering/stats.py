"""Cluster statistics of the training targets' features: the artifact the training losses read.

Fitting (:func:`fit_cluster_stats`): k-means on the encoder features [N, D] gives every training image a
cluster; each cluster i keeps its mean ``mu_i`` (the mean of its members' features) and a covariance
``Sigma_i``.

Why Ledoit-Wolf: with D = 1280 features and tens of images per cluster, the empirical covariance has rank
< D and cannot be inverted, yet the Mahalanobis loss needs ``Sigma_i^-1``. The paper names no
regularisation, so we use the Ledoit-Wolf shrinkage estimator ``(1 - s) * S + s * mu * I`` (``mu`` = mean
variance, ``s`` chosen by the Ledoit-Wolf formula): it is always positive definite for non-degenerate data,
needs no tuning constant, and its shrinkage ``s`` per cluster is recorded (``shrinkage``).

Edge cases (all defined, none silent):

- ``k < 1`` or ``k > N`` -> :class:`ClusterganError` naming k and N.
- A cluster with fewer than 2 members has no covariance: it gets the Ledoit-Wolf covariance of ALL
  features (its mean is still its own member's feature); recorded in ``notes`` and printed as a warning.
  The same fallback applies whenever a cluster's own shrunk covariance is singular: with exactly 2
  members the Ledoit-Wolf formula always gives shrinkage 0 (so the covariance has rank 1), and members
  that are all identical have zero spread.
- k-means returning an empty cluster (fewer distinct feature vectors than k) -> ClusterganError.
- Silhouette is undefined for k = 1 or k = N: stored as NaN (null in JSON) with a note.

Convention for the precision factor (read by the training loss): ``precision_cholesky[i]`` is the lower
triangular ``L_i`` with ``Sigma_i^-1 = L_i @ L_i.T``, so the Mahalanobis distance is

    d_i(f) = sqrt((f - mu_i)^T Sigma_i^-1 (f - mu_i)) = || L_i^T (f - mu_i) ||_2 .

It is computed in float64 (Cholesky of Sigma_i, triangular solve, Cholesky of the inverse) and stored as
float32.
"""

from __future__ import annotations

import io
import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.linalg
from threadpoolctl import threadpool_limits

from clustergan.cache import atomic_write_bytes
from clustergan.clustering.backends import ClusterBackend
from clustergan.errors import ClusterganError
from clustergan.jsonio import write_json

STATS_NPZ = "cluster_stats.npz"
STATS_JSON = "cluster_stats.json"
FORMAT_VERSION = 1


@dataclass
class ClusterStats:
    """Per-cluster feature statistics of the training targets.

    Attributes:
        k: number of clusters.
        means: [k, D] float32, mu_i.
        precision_cholesky: [k, D, D] float32, lower triangular L_i with Sigma_i^-1 = L_i L_i^T.
        shrinkage: [k] float64, the Ledoit-Wolf shrinkage of each cluster's covariance (for a fallback
            cluster, that of the all-features covariance).
        sizes: [k] int64, members per cluster.
        cluster_ids: [N] int64, the cluster of each training image (in ``load_targets`` order).
        silhouette: mean silhouette of the clustering (Euclidean), NaN where undefined.
        encoder: encoder registry name.
        weights_source: the encoder's ``weights_source``.
        backend: the backend that fitted it (``"sklearn"`` or ``"cuml"``).
        notes: human-readable remarks (fallbacks taken, etc.).
        inputs: everything the statistics were computed from (dataset fingerprint, direction, size, k,
            k-means seed, encoder, its weights digest and input size, backend;
            :func:`clustergan.clustering.run.cluster_inputs`), so that reusing them for another run can be
            checked; empty for statistics written before it was recorded.
    """

    k: int
    means: np.ndarray
    precision_cholesky: np.ndarray
    shrinkage: np.ndarray
    sizes: np.ndarray
    cluster_ids: np.ndarray
    silhouette: float
    encoder: str
    weights_source: str
    backend: str
    notes: list[str] = field(default_factory=list)
    inputs: dict = field(default_factory=dict)

    @property
    def feature_dim(self) -> int:
        return int(self.means.shape[1])

    def save(self, directory: str | Path) -> None:
        """Write ``cluster_stats.npz`` (arrays) and ``cluster_stats.json`` (scalars, strings) to ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        np.savez(
            buf,
            means=self.means.astype(np.float32),
            precision_cholesky=self.precision_cholesky.astype(np.float32),
            shrinkage=self.shrinkage.astype(np.float64),
            sizes=self.sizes.astype(np.int64),
            cluster_ids=self.cluster_ids.astype(np.int64),
        )
        atomic_write_bytes(directory / STATS_NPZ, buf.getvalue())
        meta = {
            "format_version": FORMAT_VERSION,
            "k": self.k,
            "feature_dim": self.feature_dim,
            "silhouette": None if math.isnan(self.silhouette) else self.silhouette,
            "encoder": self.encoder,
            "weights_source": self.weights_source,
            "backend": self.backend,
            "notes": list(self.notes),
            "inputs": dict(self.inputs),
            "precision_cholesky_convention": "lower L_i with inv(Sigma_i) = L_i @ L_i.T; "
            "mahalanobis = || L_i.T @ (f - mu_i) ||_2",
        }
        write_json(directory / STATS_JSON, meta, indent=1)

    def same_as(self, other: ClusterStats) -> bool:
        """The same clusters: equal assignments, and means and precisions equal up to float noise (statistics
        computed again from the same features on another machine)."""
        return (
            np.array_equal(self.cluster_ids, other.cluster_ids)
            and np.allclose(self.means, other.means, atol=1e-6)
            and np.allclose(self.precision_cholesky, other.precision_cholesky, rtol=1e-4, atol=1e-5)
        )

    @classmethod
    def load(cls, directory: str | Path) -> ClusterStats:
        """Read what :meth:`save` wrote; :class:`ClusterganError` if it is missing or inconsistent."""
        directory = Path(directory)
        npz_path, json_path = directory / STATS_NPZ, directory / STATS_JSON
        for path in (npz_path, json_path):
            if not path.is_file():
                raise ClusterganError(f"cluster statistics file {path} not found; run `clustergan cluster` first")
        try:
            meta = json.loads(json_path.read_text())
            with np.load(npz_path, allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in npz.files}
        except (OSError, ValueError, json.JSONDecodeError) as e:
            raise ClusterganError(
                f"cannot read cluster statistics in {directory}: {e}; re-run `clustergan cluster`"
            ) from e
        if meta.get("format_version") != FORMAT_VERSION:
            raise ClusterganError(
                f"{json_path} has format_version {meta.get('format_version')!r}, expected {FORMAT_VERSION}; "
                "re-run `clustergan cluster`"
            )
        try:
            stats = cls(
                k=int(meta["k"]),
                means=arrays["means"],
                precision_cholesky=arrays["precision_cholesky"],
                shrinkage=arrays["shrinkage"],
                sizes=arrays["sizes"],
                cluster_ids=arrays["cluster_ids"],
                silhouette=float("nan") if meta["silhouette"] is None else float(meta["silhouette"]),
                encoder=str(meta["encoder"]),
                weights_source=str(meta["weights_source"]),
                backend=str(meta["backend"]),
                notes=[str(n) for n in meta["notes"]],
                inputs=dict(meta.get("inputs") or {}),
            )
        except KeyError as e:
            raise ClusterganError(f"cluster statistics in {directory} lack {e}; re-run `clustergan cluster`") from e
        k, d = stats.k, stats.feature_dim
        if stats.means.shape != (k, d) or stats.precision_cholesky.shape != (k, d, d) or stats.sizes.shape != (k,):
            raise ClusterganError(
                f"cluster statistics in {directory} are inconsistent (k={k}, means {stats.means.shape}, "
                f"precision_cholesky {stats.precision_cholesky.shape}); re-run `clustergan cluster`"
            )
        return stats


def _try_precision_cholesky(cov: np.ndarray) -> np.ndarray | None:
    """:func:`_precision_cholesky`, or None if ``cov`` is not positive definite."""
    try:
        chol = _precision_cholesky(cov)
    except np.linalg.LinAlgError:
        return None
    return chol if np.isfinite(chol).all() else None


def _precision_cholesky(cov: np.ndarray) -> np.ndarray:
    """[D, D] SPD covariance -> lower L (float64) with inv(cov) = L L^T. Raises LinAlgError if not SPD."""
    d = cov.shape[0]
    chol_cov = np.linalg.cholesky(cov)  # cov = C C^T, C lower
    inv_c = scipy.linalg.solve_triangular(chol_cov, np.eye(d), lower=True)  # C^-1, lower
    precision = inv_c.T @ inv_c  # inv(cov) = C^-T C^-1
    precision = (precision + precision.T) / 2  # remove round-off asymmetry before factorising
    return np.linalg.cholesky(precision)


def fit_cluster_stats(
    features: np.ndarray,
    k: int,
    backend: ClusterBackend,
    seed: int = 0,
    encoder: str = "",
    weights_source: str = "",
) -> ClusterStats:
    """k-means + per-cluster Ledoit-Wolf statistics of ``features`` [N, D] (see the module docstring).

    Args:
        features: [N, D] encoder features of the training targets.
        k: number of clusters, 1 <= k <= N.
        backend: a backend instance from :func:`clustergan.clustering.backends.get_backend`.
        seed: k-means random state.
        encoder, weights_source: recorded in the result.
    """
    features = np.asarray(features, dtype=np.float32)
    if features.ndim != 2:
        raise ValueError(f"features must be [N, D], got shape {features.shape}")
    n = features.shape[0]
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        raise ClusterganError(f"number of clusters k={k!r} must be an integer >= 1")
    if k > n:
        raise ClusterganError(
            f"number of clusters k={k} is larger than the number of training images N={n}; choose k <= {n}"
        )
    k = int(k)
    notes: list[str] = []
    cluster_ids = np.zeros(n, dtype=np.int64) if k == 1 else backend.kmeans(features, k, seed)
    sizes = np.bincount(cluster_ids, minlength=k).astype(np.int64)
    if (sizes == 0).any():
        raise ClusterganError(
            f"k-means left {int((sizes == 0).sum())} of k={k} clusters empty (the {n} features have fewer "
            f"than {k} distinct values, e.g. duplicate images); choose a smaller k"
        )

    with threadpool_limits(limits=1, user_api="blas"):
        # One BLAS thread: these are many small (D x D) factorisations, where multi-threaded OpenBLAS
        # gains little and, on a busy machine, was measured 25x slower (spin-waiting threads).
        return _fit_covariances(features, k, cluster_ids, sizes, backend, notes, encoder, weights_source)


def _fit_covariances(
    features: np.ndarray,
    k: int,
    cluster_ids: np.ndarray,
    sizes: np.ndarray,
    backend: ClusterBackend,
    notes: list[str],
    encoder: str,
    weights_source: str,
) -> ClusterStats:
    n, d = features.shape
    global_cov: tuple[np.ndarray, float] | None = None

    def fallback(i: int, why: str) -> tuple[np.ndarray, float]:
        nonlocal global_cov
        if global_cov is None:
            global_cov = backend.ledoit_wolf(features)
        note = f"cluster {i}: {why}; using the Ledoit-Wolf covariance of all {n} features"
        notes.append(note)
        warnings.warn(note, stacklevel=4)
        return global_cov

    means = np.zeros((k, d), dtype=np.float64)
    chols = np.zeros((k, d, d), dtype=np.float32)
    shrinkage = np.zeros(k, dtype=np.float64)
    for i in range(k):
        members = features[cluster_ids == i].astype(np.float64)
        means[i] = members.mean(axis=0)
        chol = None
        if sizes[i] >= 2:
            cov, shrink = backend.ledoit_wolf(members)
            chol = _try_precision_cholesky(cov)
            if chol is None:
                cov, shrink = fallback(
                    i,
                    f"the Ledoit-Wolf covariance of its {sizes[i]} members is singular "
                    f"(shrinkage {shrink:.3g}; 2 members or identical members)",
                )
        else:
            cov, shrink = fallback(i, f"{sizes[i]} member (a covariance needs >= 2)")
        if chol is None:
            chol = _try_precision_cholesky(cov)
        if chol is None:
            raise ClusterganError(
                "the Ledoit-Wolf covariance of all features is singular (all training features "
                "identical?); check the dataset and the encoder"
            )
        chols[i] = chol.astype(np.float32)
        shrinkage[i] = shrink

    if 2 <= k <= n - 1:
        from sklearn.metrics import silhouette_score

        silhouette = float(silhouette_score(features, cluster_ids, metric="euclidean"))
    else:
        silhouette = float("nan")
        notes.append(f"silhouette undefined for k={k} with N={n} (needs 2 <= k <= N-1)")
    return ClusterStats(
        k=k,
        means=means.astype(np.float32),
        precision_cholesky=chols,
        shrinkage=shrinkage,
        sizes=sizes,
        cluster_ids=cluster_ids,
        silhouette=silhouette,
        encoder=encoder,
        weights_source=weights_source,
        backend=backend.name,
        notes=notes,
    )
