"""Metrics: images in, numbers out. Images are float tensors in [-1, 1], [N, 3, H, W].

- :func:`lpips_distance` per-pair LPIPS (AlexNet, v0.1, inputs in [-1, 1]);
- :func:`fid` Frechet Inception Distance with pytorch-fid's network (weights converted offline);
- :func:`ndb_jsd` / :class:`NDBBins` NDB and JSD (Richardson & Weiss) in an explicit space;
- :func:`mode_coverage` for synthetic data with known modes;
- ``cond_gain`` (:mod:`clustergan.metrics.conditioning`): does each output fit its own input;
  :func:`lpips_between_outputs`: do different inputs get different images;
- :func:`evaluate` runs a sampler under a :class:`Protocol` (``PROTOCOLS["paper"]``, ``["sweep"]``) and
  feeds every metric in the registry (:data:`METRICS`, :func:`register_metric`).

To add a metric see :mod:`clustergan.metrics.registry`.
"""

# Importing the metric modules registers them (conditioning: cond_gain).
from clustergan.metrics.conditioning import lpips_between_outputs
from clustergan.metrics.frechet import converted_weights_path, fid, inception_features, real_statistics
from clustergan.metrics.lpips_diversity import lpips_distance
from clustergan.metrics.modes import mode_coverage
from clustergan.metrics.ndb import NDBBins, ndb_jsd, pixel_space
from clustergan.metrics.prepare import prepare_metric_weights
from clustergan.metrics.protocols import PROTOCOLS, Protocol, get_protocol
from clustergan.metrics.registry import METRICS, MetricContext, MetricResult, register_metric
from clustergan.metrics.runner import evaluate, write_metrics_json

__all__ = [
    "METRICS",
    "PROTOCOLS",
    "MetricContext",
    "MetricResult",
    "NDBBins",
    "Protocol",
    "converted_weights_path",
    "evaluate",
    "fid",
    "get_protocol",
    "inception_features",
    "lpips_between_outputs",
    "lpips_distance",
    "mode_coverage",
    "ndb_jsd",
    "pixel_space",
    "prepare_metric_weights",
    "real_statistics",
    "register_metric",
    "write_metrics_json",
]
