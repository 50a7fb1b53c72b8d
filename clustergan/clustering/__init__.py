"""Clusters of the training targets in encoder feature space (step 1 of the method).

- :mod:`.features`: encoder features of a split, cached on disk (:func:`cached_features`).
- :mod:`.backends`: k-means + Ledoit-Wolf on CPU (scikit-learn) or GPU (cuML), registry :data:`BACKENDS`.
- :mod:`.stats`: :class:`ClusterStats` (means, precision Cholesky factors, ...), fitting, save/load; its
  docstring documents the Ledoit-Wolf choice, the edge cases and the Mahalanobis convention.
- :mod:`.run`: :func:`run_clustering`, what ``clustergan cluster`` calls; :func:`cluster_inputs`, what
  statistics depend on, and :func:`input_differences`, whether they fit a run.

To add a backend: a class with ``kmeans`` and ``ledoit_wolf`` (see :mod:`.backends`) decorated with
``@register_backend("name")``.
"""

from clustergan.clustering.backends import BACKENDS, cuda_usable, get_backend, register_backend
from clustergan.clustering.features import cached_features, extract_features
from clustergan.clustering.run import cluster_inputs, input_differences, run_clustering
from clustergan.clustering.stats import ClusterStats, fit_cluster_stats

__all__ = [
    "BACKENDS",
    "ClusterStats",
    "cached_features",
    "cluster_inputs",
    "cuda_usable",
    "extract_features",
    "fit_cluster_stats",
    "get_backend",
    "input_differences",
    "register_backend",
    "run_clustering",
]
