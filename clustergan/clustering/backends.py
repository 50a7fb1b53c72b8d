"""Cluster backends: k-means and Ledoit-Wolf covariance on CPU (scikit-learn) or GPU (cuML / CuPy).

A backend is a class registered with ``@register_backend(name)`` that implements

- ``kmeans(features [N, D] float32, k, seed) -> cluster_ids [N] int64`` (10 restarts, fixed seed), and
- ``ledoit_wolf(x [n, D]) -> (covariance [D, D] float64, shrinkage float)``.

Everything else (means, fallbacks, the precision Cholesky factors, the artifact) is computed once, in
:mod:`clustergan.clustering.stats`, so both backends produce the same artifact format.

Choosing: ``"sklearn"`` always works; ``"cuml"`` needs a usable CUDA GPU plus cuML and CuPy (they import
on a CPU-only machine but every operation fails there, so usability is checked, not assumed);
``"auto"`` picks ``"cuml"`` only when :func:`cuml_usable` says so, otherwise ``"sklearn"``. A GPU machine
with CuPy but without cuML (a plain PyTorch image, say) therefore gets scikit-learn under ``"auto"``, and a
clear error when it asks for ``"cuml"`` by name.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Protocol

import numpy as np

from clustergan.errors import ClusterganError
from clustergan.registry import Registry

KMEANS_RESTARTS = 10


class ClusterBackend(Protocol):
    name: str

    def kmeans(self, features: np.ndarray, k: int, seed: int) -> np.ndarray: ...

    def ledoit_wolf(self, x: np.ndarray) -> tuple[np.ndarray, float]: ...


BACKENDS: Registry[type] = Registry("cluster backend", hint=" (or auto)")


def register_backend(name: str) -> Callable[[type], type]:
    """Class decorator adding a backend to :data:`BACKENDS` under ``name`` (and naming the class by it)."""

    def deco(cls: type) -> type:
        cls.name = name
        return BACKENDS.register(name)(cls)

    return deco


def cuda_problem() -> str | None:
    """Why CuPy cannot run on a CUDA device here (None: it can): torch sees no CUDA device, CuPy does not
    import, or CuPy's runtime counts no device."""
    try:
        import torch

        if not torch.cuda.is_available():
            return "torch.cuda.is_available() is False"
        import cupy

        if cupy.cuda.runtime.getDeviceCount() == 0:
            return "CuPy counts no CUDA device"
    except Exception as e:  # noqa: BLE001 - reported: the reason goes into the error that names the backend
        return f"{type(e).__name__}: {e}"
    return None


def cuda_usable() -> bool:
    """True only if torch sees a CUDA device, CuPy imports, and CuPy's runtime counts a device."""
    return cuda_problem() is None


def cuml_import_error() -> str | None:
    """Why ``cuml`` does not import here (None: it does); an ImportError, or a CUDA library missing under it."""
    try:
        import cuml  # noqa: F401
    except Exception as e:  # noqa: BLE001 - reported: the reason goes into the error that names the backend
        return f"{type(e).__name__}: {e}"
    return None


def cuml_importable() -> bool:
    """True if the ``cuml`` package imports (it is the ``gpu`` extra, or RAPIDS' conda channel)."""
    return cuml_import_error() is None


def cuml_usable() -> bool:
    """The cuML backend can run here: a usable CUDA device (:func:`cuda_usable`) and cuML importable."""
    return cuda_usable() and cuml_importable()


def get_backend(name: str) -> ClusterBackend:
    """An instance of the backend ``name`` (``"auto"``, ``"sklearn"`` or ``"cuml"``)."""
    if name == "auto":
        name = "cuml" if cuml_usable() else "sklearn"
    backend = BACKENDS.lookup(name)
    if name == "cuml" and not cuda_usable():
        raise ClusterganError(
            f"cluster backend 'cuml' was asked for, but no usable CUDA GPU with CuPy is available here "
            f"({cuda_problem()}; needs torch.cuda.is_available(), cupy importable and a CUDA device); use backend "
            "'sklearn' (CPU) or 'auto'"
        )
    if name == "cuml" and not cuml_importable():
        raise ClusterganError(
            f"cluster backend 'cuml' was asked for and a CUDA GPU is usable, but cuML does not import "
            f"({cuml_import_error()}); install the gpu extra (pip install -e '.[gpu]') or use environment.yml "
            "(RAPIDS' conda channel), or use backend 'sklearn' or 'auto'"
        )
    return backend()


def ledoit_wolf_xp(x, xp: ModuleType):
    """Ledoit-Wolf shrunk covariance with any array module ``xp`` (numpy or cupy).

    The same estimator as ``sklearn.covariance.LedoitWolf`` (maximum-likelihood covariance of the
    centred data, shrunk toward ``mu * I`` with ``mu`` = mean variance, the shrinkage chosen by the
    Ledoit-Wolf 2004 formula). Used by the cuML backend when cuML has no LedoitWolf of its own.

    Args:
        x: [n, D] samples.

    Returns:
        (covariance [D, D] float64 on ``xp``, shrinkage float in [0, 1]).
    """
    x = xp.asarray(x, dtype=xp.float64)
    n, d = x.shape
    x = x - x.mean(axis=0, keepdims=True)
    emp_cov = x.T @ x / n
    x2 = x**2
    var = x2.sum(axis=0) / n  # diagonal of emp_cov
    mu = float(var.sum()) / d
    beta_ = float((x2.T @ x2).sum())
    delta_ = float((emp_cov**2).sum())  # = sum((X^T X)^2) / n^2
    beta = (beta_ / n - delta_) / (d * n)
    delta = (delta_ - 2.0 * mu * float(var.sum()) + d * mu**2) / d
    beta = min(beta, delta)
    shrinkage = 0.0 if beta == 0 else beta / delta
    cov = (1.0 - shrinkage) * emp_cov
    cov[xp.arange(d), xp.arange(d)] += shrinkage * mu
    return cov, shrinkage


@register_backend("sklearn")
class SklearnBackend:
    """CPU: scikit-learn ``KMeans(n_init=10, random_state=seed)`` and ``LedoitWolf``."""

    name = "sklearn"

    def kmeans(self, features: np.ndarray, k: int, seed: int) -> np.ndarray:
        from sklearn.cluster import KMeans

        model = KMeans(n_clusters=k, n_init=KMEANS_RESTARTS, random_state=seed)
        return model.fit_predict(np.asarray(features, dtype=np.float32)).astype(np.int64)

    def ledoit_wolf(self, x: np.ndarray) -> tuple[np.ndarray, float]:
        from sklearn.covariance import LedoitWolf

        est = LedoitWolf(assume_centered=False, store_precision=False).fit(np.asarray(x, dtype=np.float64))
        return np.asarray(est.covariance_, dtype=np.float64), float(est.shrinkage_)


@register_backend("cuml")
class CumlBackend:
    """GPU: cuML ``KMeans(n_init=10, random_state=seed)``; cuML's ``LedoitWolf`` if present, else CuPy."""

    name = "cuml"

    def kmeans(self, features: np.ndarray, k: int, seed: int) -> np.ndarray:
        import cupy
        from cuml.cluster import KMeans

        model = KMeans(n_clusters=k, n_init=KMEANS_RESTARTS, random_state=seed)
        model.fit(cupy.asarray(features, dtype=cupy.float32))
        return cupy.asnumpy(cupy.asarray(model.labels_)).astype(np.int64)

    def ledoit_wolf(self, x: np.ndarray) -> tuple[np.ndarray, float]:
        import cupy

        try:
            from cuml.covariance import LedoitWolf  # cuML >= 26.02
        except ImportError:
            cov, shrinkage = ledoit_wolf_xp(x, cupy)
            return cupy.asnumpy(cov), shrinkage
        est = LedoitWolf(assume_centered=False).fit(cupy.asarray(x, dtype=cupy.float64))
        return cupy.asnumpy(cupy.asarray(est.covariance_)).astype(np.float64), float(est.shrinkage_)
