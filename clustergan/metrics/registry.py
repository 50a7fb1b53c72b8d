"""The metric registry.

A metric is an accumulator: :func:`clustergan.metrics.runner.evaluate` generates the samples once, in
batches, hands each batch to every metric's ``update`` and finally asks each for ``compute()``. So the
samples of a whole test set never have to sit in memory at once (106 inputs x 50 samples at 256 px would be
4 GB).

To add a metric: write a module with a class that has ``update`` and ``compute``, and a builder decorated
with ``@register_metric("name")`` that turns a :class:`MetricContext` into an instance (pull out of the
context exactly the arguments the class needs). Import the module in ``clustergan/metrics/__init__.py`` and
add the name to the ``metrics`` of the protocols that should run it (:mod:`clustergan.metrics.protocols`).
Name the values ``compute`` returns in :mod:`clustergan.scores`, which every table and ranking reads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from typing import Protocol as TypingProtocol

import torch
from torch import Tensor

from clustergan.metrics.protocols import Protocol
from clustergan.registry import Registry


@dataclass
class MetricResult:
    """Named floats (the headline numbers) plus JSON-friendly details (per-bin counts, sample counts...)."""

    values: dict[str, float]
    details: dict[str, Any] = field(default_factory=dict)


class Metric(TypingProtocol):
    def update(self, samples: Tensor) -> None:
        """Consume generated samples [B, S, 3, H, W] in [-1, 1] for B test inputs."""

    def compute(self) -> MetricResult:
        """The metric over everything seen so far."""


@dataclass
class MetricContext:
    """What a builder may draw on; builders pass explicit arguments on to the metric classes.

    ``train_targets`` [M, 3, H, W] in [-1, 1]; ``device`` is where the metric networks run.
    """

    protocol: Protocol
    train_targets: Tensor
    seed: int
    device: torch.device
    mode_classifier: Callable[[Tensor], Tensor] | None = None
    num_modes: int | None = None
    feature_fn: Callable[[Tensor], Tensor] | None = None
    feature_name: str | None = None
    test_targets: Tensor | None = None  # [N_test, 3, H, W], in the sources' order (cond_gain)


MetricBuilder = Callable[[MetricContext], Metric]

METRICS: Registry[MetricBuilder] = Registry("metric")


def register_metric(name: str, needs: tuple[str, ...] = ()) -> Callable[[MetricBuilder], MetricBuilder]:
    """Decorator that registers a metric builder under ``name``. ``needs`` names the optional
    :class:`MetricContext` fields it cannot run without: a protocol's metric whose needs the caller did not
    give is left out of that evaluation (e.g. mode coverage on data without known modes)."""

    def decorate(builder: MetricBuilder) -> MetricBuilder:
        builder.needs = tuple(needs)
        return METRICS.register(name)(builder)

    return decorate
