"""NDB and JSD (Richardson & Weiss, "On GANs and GMMs", NeurIPS 2018).

The training samples are split into K bins by k-means (at most 100 iterations). Optionally every dimension
is first standardised with the training mean and std + 1e-6 (MSGAN's authors did so); above 1000 dimensions
a random (seeded) d // 6 subset of dimensions is used for clustering and assignment, as in the reference.
Each generated sample goes to its nearest bin centre. Per bin, a two-sided two-proportion z-test with pooled
standard error compares the training share (n1 = training samples) with the generated share (n2 = generated
samples); the bin is "different" when p < alpha. NDB = number of different bins; JSD = Jensen-Shannon
divergence of the two share vectors, natural log (at most ln 2).

The space is explicit: :func:`pixel_space` maps images to flattened pixels at a stated resolution (MSGAN
used raw images); feature arrays (e.g. encoder features) are used as given. Always report K, the sample
counts and the space with the numbers.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy.special import rel_entr
from scipy.stats import norm
from sklearn.cluster import KMeans
from torch import Tensor

from clustergan.cache import atomic_write_bytes, cache_dir, hash_key
from clustergan.errors import ClusterganError
from clustergan.metrics.images import check_images
from clustergan.metrics.registry import MetricContext, MetricResult, register_metric

MAX_DIMS = 1000  # above this, cluster on a random d // 6 subset of dimensions (reference behaviour)
STD_EPS = 1e-6
KMEANS_INIT = 10  # k-means++ restarts; the reference used scikit-learn's default of its time (10)


def pixel_space(images: Tensor, resolution: int = 64) -> np.ndarray:
    """Images [N, 3, H, W] in [-1, 1] -> flattened pixels [N, 3 * resolution**2] (float32).

    Resized with bilinear interpolation and antialiasing (so downsampling averages rather than aliases),
    skipped when the images already have that size.
    """
    images = check_images(images, "ndb", "input")
    if images.shape[-2:] != (resolution, resolution):
        images = F.interpolate(
            images.float(), size=(resolution, resolution), mode="bilinear", align_corners=False, antialias=True
        )
    return images.detach().float().flatten(1).cpu().numpy()


def _as_features(samples: Tensor | np.ndarray, name: str) -> np.ndarray:
    array = samples.detach().cpu().numpy() if isinstance(samples, Tensor) else np.asarray(samples)
    if array.ndim != 2 or array.shape[0] == 0:
        raise ClusterganError(f"ndb: {name} samples must be a non-empty array [N, D], got shape {list(array.shape)}")
    if not np.isfinite(array).all():
        raise ClusterganError(f"ndb: {name} samples contain NaN or Inf values")
    return array.astype(np.float64)


@dataclass
class NDBBins:
    """K-means bins fit once on the training samples [M, D]; reused for every query.

    ``dims`` are the indices of the dimensions used (all of them up to 1000), ``mean``/``std`` the
    standardisation over those dims (zeros/ones when off), ``centers`` [K, len(dims)] in standardised space,
    ``train_counts`` [K] the training samples per bin.
    """

    centers: np.ndarray
    dims: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    train_counts: np.ndarray
    input_dim: int
    standardize: bool
    seed: int
    max_iter: int

    @classmethod
    def fit(
        cls, train: Tensor | np.ndarray, bins: int, standardize: bool = True, seed: int = 0, max_iter: int = 100
    ) -> NDBBins:
        """Fit ``bins`` k-means bins on training samples [M, D] (features or :func:`pixel_space` output)."""
        train = _as_features(train, "training")
        if not isinstance(bins, int) or bins < 2:
            raise ClusterganError(f"ndb: bins must be an integer >= 2, got {bins!r}")
        if train.shape[0] < bins:
            raise ClusterganError(
                f"ndb: {train.shape[0]} training samples cannot fill {bins} bins; lower the number of bins"
            )
        input_dim = train.shape[1]
        dims = np.arange(input_dim)
        if input_dim > MAX_DIMS:
            dims = np.sort(np.random.default_rng(seed).choice(input_dim, input_dim // 6, replace=False))
        selected = train[:, dims]
        if standardize:
            mean, std = selected.mean(0), selected.std(0) + STD_EPS
        else:
            mean, std = np.zeros(len(dims)), np.ones(len(dims))
        kmeans = KMeans(n_clusters=bins, max_iter=max_iter, n_init=KMEANS_INIT, random_state=seed)
        kmeans.fit((selected - mean) / std)
        result = cls(
            centers=kmeans.cluster_centers_.astype(np.float64),
            dims=dims,
            mean=mean,
            std=std,
            train_counts=np.zeros(bins, dtype=np.int64),
            input_dim=input_dim,
            standardize=standardize,
            seed=seed,
            max_iter=max_iter,
        )
        # Count training samples with the same nearest-centre rule as queries, so that a generated set
        # equal to the training set lands in exactly the same bins.
        result.train_counts = np.bincount(result.assign(train), minlength=bins)
        return result

    @property
    def bins(self) -> int:
        return self.centers.shape[0]

    @property
    def n_train(self) -> int:
        return int(self.train_counts.sum())

    def assign(self, samples: Tensor | np.ndarray) -> np.ndarray:
        """Index of the nearest bin centre for each sample [N, D] -> [N] (int64)."""
        samples = _as_features(samples, "query")
        if samples.shape[1] != self.input_dim:
            raise ClusterganError(
                f"ndb: query samples have {samples.shape[1]} dimensions but the bins were fit "
                f"on {self.input_dim}; use the same space and resolution"
            )
        x = (samples[:, self.dims] - self.mean) / self.std
        squared = (x**2).sum(1, keepdims=True) - 2 * x @ self.centers.T + (self.centers**2).sum(1)
        return squared.argmin(1).astype(np.int64)

    def evaluate(self, generated: Tensor | np.ndarray, alpha: float = 0.05) -> dict:
        """NDB, JSD and per-bin statistics of generated samples [N, D] against the training bins."""
        gen_counts = np.bincount(self.assign(generated), minlength=self.bins)
        return ndb_from_counts(self.train_counts, gen_counts, alpha)

    def save(self, path: Path) -> None:
        buffer = io.BytesIO()
        np.savez(
            buffer,
            centers=self.centers,
            dims=self.dims,
            mean=self.mean,
            std=self.std,
            train_counts=self.train_counts,
            scalars=np.array([self.input_dim, int(self.standardize), self.seed, self.max_iter]),
        )
        atomic_write_bytes(Path(path), buffer.getvalue())

    @classmethod
    def load(cls, path: Path) -> NDBBins:
        with np.load(path, allow_pickle=False) as f:
            input_dim, standardize, seed, max_iter = (int(v) for v in f["scalars"])
            return cls(
                centers=f["centers"],
                dims=f["dims"],
                mean=f["mean"],
                std=f["std"],
                train_counts=f["train_counts"],
                input_dim=input_dim,
                standardize=bool(standardize),
                seed=seed,
                max_iter=max_iter,
            )

    @classmethod
    def fit_cached(
        cls,
        train: Tensor | np.ndarray,
        bins: int,
        standardize: bool = True,
        seed: int = 0,
        max_iter: int = 100,
        space: str = "",
    ) -> NDBBins:
        """:meth:`fit`, cached under ``cache_dir("ndb")`` by a hash of the samples, the settings and ``space``."""
        train = _as_features(train, "training")
        key = hash_key(
            "ndb-bins-v1", space, bins, standardize, seed, max_iter, KMEANS_INIT, train.shape, _digest(train)
        )
        path = cache_dir("ndb") / f"bins_{key}.npz"
        if path.is_file():
            return cls.load(path)
        result = cls.fit(train, bins, standardize, seed, max_iter)
        result.save(path)
        return result


def _digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()[:16]


def two_proportion_p_values(p1: np.ndarray, n1: int, p2: np.ndarray, n2: int) -> np.ndarray:
    """Two-sided p-values of two-proportion z-tests with pooled standard error, per bin."""
    pooled = (n1 * p1 + n2 * p2) / (n1 + n2)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    # se == 0 only when both shares are 0 (or both 1): no difference, z = 0.
    z = np.divide(p1 - p2, se, out=np.zeros_like(se), where=se > 0)
    return 2 * norm.sf(np.abs(z))


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence of two probability vectors, natural log (0 log 0 = 0; at most ln 2)."""
    m = (p + q) / 2
    return float(0.5 * rel_entr(p, m).sum() + 0.5 * rel_entr(q, m).sum())


def ndb_from_counts(train_counts: np.ndarray, gen_counts: np.ndarray, alpha: float = 0.05) -> dict:
    """NDB/JSD from per-bin sample counts of the training and the generated set."""
    n_train, n_gen = int(train_counts.sum()), int(gen_counts.sum())
    if n_gen == 0:
        raise ClusterganError("ndb: no generated samples were given")
    train_prop, gen_prop = train_counts / n_train, gen_counts / n_gen
    p_values = two_proportion_p_values(train_prop, n_train, gen_prop, n_gen)
    different = p_values < alpha
    jsd = js_divergence(train_prop, gen_prop)
    return {
        "ndb": int(different.sum()),
        "jsd": jsd,
        "bins": len(train_counts),
        "n_train": n_train,
        "n_generated": n_gen,
        "alpha": alpha,
        "train_prop": train_prop.tolist(),
        "gen_prop": gen_prop.tolist(),
        "p_values": p_values.tolist(),
        "different": different.tolist(),
    }


def _to_space(samples: Tensor | np.ndarray, resolution: int) -> tuple[np.ndarray, str]:
    if isinstance(samples, Tensor) and samples.dim() == 4:
        return pixel_space(samples, resolution), f"pixels@{resolution}x{resolution}"
    return _as_features(samples, "input"), "features"


def ndb_jsd(
    train: Tensor | np.ndarray,
    generated: Tensor | np.ndarray,
    bins: int = 20,
    standardize: bool = True,
    alpha: float = 0.05,
    seed: int = 0,
    max_iter: int = 100,
    resolution: int = 64,
) -> dict:
    """NDB and JSD of ``generated`` against ``train``.

    Both are images [N, 3, H, W] in [-1, 1] (compared as pixels at ``resolution`` x ``resolution``) or both
    feature arrays [N, D]. Returns ``ndb``, ``jsd``, ``bins``, ``n_train``, ``n_generated``, per-bin
    ``train_prop``, ``gen_prop``, ``p_values``, ``different``, and the ``space`` used.
    """
    train_x, train_space = _to_space(train, resolution)
    gen_x, gen_space = _to_space(generated, resolution)
    if train_space != gen_space:
        raise ClusterganError(
            f"ndb: training samples are {train_space} but generated samples are {gen_space}; "
            f"pass both as images or both as features"
        )
    result = NDBBins.fit(train_x, bins, standardize, seed, max_iter).evaluate(gen_x, alpha)
    return {**result, "space": train_space}


class NdbMetric:
    """NDB/JSD of the first ``queries_per_input`` samples of every input against fixed bins."""

    def __init__(self, bins: NDBBins, queries_per_input: int, to_space, space: str, alpha: float = 0.05) -> None:
        self.bins = bins
        self.queries_per_input = queries_per_input
        self.to_space = to_space  # images [N, 3, H, W] -> samples [N, D] in the bins' space
        self.space = space
        self.alpha = alpha
        self.gen_counts = np.zeros(bins.bins, dtype=np.int64)

    def update(self, samples: Tensor) -> None:
        """``samples`` [B, S, 3, H, W] in [-1, 1]."""
        queries = samples[:, : self.queries_per_input].flatten(0, 1)
        self.gen_counts += np.bincount(self.bins.assign(self.to_space(queries)), minlength=self.bins.bins)

    def compute(self) -> MetricResult:
        result = ndb_from_counts(self.bins.train_counts, self.gen_counts, self.alpha)
        values = {"ndb": result.pop("ndb"), "jsd": result.pop("jsd")}
        return MetricResult(
            values=values,
            details={
                **result,
                "space": self.space,
                "queries_per_input": self.queries_per_input,
                "standardize": self.bins.standardize,
                "dims_used": len(self.bins.dims),
            },
        )


@register_metric("ndb")
def build_ndb(ctx: MetricContext) -> NdbMetric:
    protocol = ctx.protocol
    if protocol.ndb_space == "pixels":
        resolution = protocol.ndb_resolution

        def to_space(images: Tensor) -> np.ndarray:
            return pixel_space(images, resolution)

        space = f"pixels@{resolution}x{resolution}"
    else:
        if ctx.feature_fn is None or not ctx.feature_name:
            raise ClusterganError(
                f"ndb: protocol {protocol.name!r} uses ndb_space='features'; pass feature_fn "
                f"and feature_name (e.g. the encoder's name) to evaluate"
            )
        feature_fn = ctx.feature_fn

        def to_space(images: Tensor) -> np.ndarray:
            with torch.no_grad():
                return _as_features(feature_fn(images), "feature")

        space = f"features:{ctx.feature_name}"
    bins = NDBBins.fit_cached(
        to_space(ctx.train_targets.to(ctx.device)),
        protocol.ndb_bins,
        protocol.ndb_standardize,
        protocol.ndb_seed,
        space=space,
    )
    return NdbMetric(bins, protocol.ndb_queries_per_input, to_space, space)
