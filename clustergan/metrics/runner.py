"""The evaluation runner: generate once, in batches, feed every metric, return one flat result.

The caller supplies the sampling (``generate_fn``): it decides the cluster indices and the noise, and so the
protocol's ``cluster_choice`` is only recorded here. The same seed, batch size and ``generate_fn`` give the
same numbers.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from clustergan.errors import ClusterganError
from clustergan.jsonio import write_json
from clustergan.metrics.images import check_images
from clustergan.metrics.protocols import Protocol
from clustergan.metrics.registry import METRICS, MetricContext
from clustergan.scores import SCORES

GenerateFn = Callable[[Tensor, int, torch.Generator], Tensor]


def metric_names(protocol: Protocol, ctx: MetricContext) -> list[str]:
    """The protocol's metrics, in its order, less those whose needed inputs ``ctx`` lacks."""
    return [
        name for name in protocol.metrics if all(getattr(ctx, need) is not None for need in METRICS.lookup(name).needs)
    ]


def evaluate(
    generate_fn: GenerateFn,
    sources: Tensor,
    train_targets: Tensor,
    protocol: Protocol,
    seed: int = 0,
    mode_classifier: Callable[[Tensor], Tensor] | None = None,
    num_modes: int | None = None,
    batch_size: int = 4,
    feature_fn: Callable[[Tensor], Tensor] | None = None,
    feature_name: str | None = None,
    test_targets: Tensor | None = None,
) -> dict:
    """Evaluate a sampler under ``protocol``.

    ``generate_fn(sources [B, 3, H, W], n_samples, generator) -> [B, n_samples, 3, H, W]`` in [-1, 1] is
    called on ``batch_size`` test inputs at a time with ``protocol.samples_per_input`` samples each and one
    ``torch.Generator`` seeded with ``seed`` (on the sources' device). ``train_targets`` [M, 3, H, W] are the
    real images for FID and the NDB bins. ``mode_classifier`` (images -> mode labels [N]) with ``num_modes``
    adds mode coverage; ``feature_fn``/``feature_name`` give the space when ``protocol.ndb_space`` is
    "features". ``test_targets`` [N, 3, H, W] (each source's own target, in order) add the conditional gain.

    Returns the values of the protocol's metrics (``protocol.metrics``: e.g. "fid", "ndb" and "jsd", "lpips";
    "mode_coverage" only with a classifier, "cond_gain" only with test targets) and
    "details": {metric: {...}}, "protocol": asdict(protocol), "seed", "seconds"}``.
    """
    start = time.perf_counter()
    sources = check_images(sources, "evaluate", "source")
    train_targets = check_images(train_targets, "evaluate", "training target", min_count=2)
    if (mode_classifier is None) != (num_modes is None):
        raise ClusterganError("evaluate: pass mode_classifier and num_modes together, or neither")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ClusterganError(f"evaluate: batch_size must be a positive integer, got {batch_size!r}")
    if test_targets is not None:
        test_targets = check_images(test_targets, "evaluate", "test target")
        if test_targets.shape != sources.shape:
            raise ClusterganError(
                f"evaluate: test_targets {list(test_targets.shape)} must match the sources "
                f"{list(sources.shape)} (one target per input, in order)"
            )
    device = sources.device
    ctx = MetricContext(
        protocol=protocol,
        train_targets=train_targets,
        seed=seed,
        device=device,
        mode_classifier=mode_classifier,
        num_modes=num_modes,
        feature_fn=feature_fn,
        feature_name=feature_name,
        test_targets=test_targets,
    )
    names = metric_names(protocol, ctx)
    metrics = {name: METRICS.lookup(name)(ctx) for name in names}
    seconds = {name: 0.0 for name in names}
    seconds["setup"] = time.perf_counter() - start

    generator = torch.Generator(device=device).manual_seed(seed)
    num_samples = protocol.samples_per_input
    generation_start = time.perf_counter()
    batches = tqdm(
        range(0, sources.shape[0], batch_size),
        desc=f"evaluate ({len(names)} metrics, {num_samples} samples/input)",
        unit="batch",
        leave=False,
        mininterval=2.0,
    )
    for first in batches:
        batch = sources[first : first + batch_size]
        with torch.no_grad():
            samples = generate_fn(batch, num_samples, generator)
        _check_samples(samples, batch, num_samples, first)
        for name, metric in metrics.items():
            tick = time.perf_counter()
            metric.update(samples)
            seconds[name] += time.perf_counter() - tick
    seconds["generation"] = time.perf_counter() - generation_start - sum(seconds[n] for n in names)

    result: dict[str, Any] = {}
    details: dict[str, Any] = {}
    for name, metric in metrics.items():
        tick = time.perf_counter()
        computed = metric.compute()
        seconds[name] += time.perf_counter() - tick
        unnamed = sorted(set(computed.values) - set(SCORES))
        if unnamed:
            raise ClusterganError(
                f"metric {name!r} returned {unnamed}, which clustergan/scores.py does not name: add them to "
                f"SCORES, LOWER_IS_BETTER and LABELS there"
            )
        result.update(computed.values)
        details[name] = {**computed.details, "seconds": seconds[name]}
    details["inputs"] = int(sources.shape[0])
    details["n_train_targets"] = int(train_targets.shape[0])
    details["generation_seconds"] = seconds["generation"]
    result["details"] = details
    result["protocol"] = asdict(protocol)
    result["protocol_hash"] = protocol.digest
    result["seed"] = seed
    result["seconds"] = time.perf_counter() - start
    return result


def _check_samples(samples: Any, batch: Tensor, num_samples: int, first: int) -> None:
    expected = [batch.shape[0], num_samples, *batch.shape[1:]]
    where = f"evaluate: generate_fn on inputs {first}..{first + batch.shape[0] - 1}"
    if not isinstance(samples, Tensor) or list(samples.shape) != expected:
        shape = list(samples.shape) if isinstance(samples, Tensor) else type(samples).__name__
        raise ClusterganError(
            f"{where} returned {shape}; expected a tensor of shape {expected} ([B, n_samples, 3, H, W])"
        )
    check_images(samples.flatten(0, 1), "evaluate", f"generated (inputs {first}..)")


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.generic, Tensor)):
        return _jsonable(value.item())
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN/Inf; a missing value reads as null
    if isinstance(value, Path):
        return str(value)
    return value


def write_metrics_json(path: str | Path, result: dict, provenance: dict) -> Path:
    """Write ``{**result, "provenance": provenance}`` as JSON atomically; returns the path.

    ``provenance`` should say what produced the numbers: checkpoint, config hash, git commit, data paths.
    """
    path = Path(path)
    return write_json(path, _jsonable({**result, "provenance": provenance}), sort_keys=True)
