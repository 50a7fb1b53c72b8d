"""Conditional gain: does each output fit its own input?

FID, NDB, JSD and LPIPS diversity compare *sets* of images (or samples of one input with each other), so a
generator that draws the same good image for every input scores as well on them as one that follows its
input. This metric asks the conditional question: for every test input ``x_a`` (in order) and its first
``samples_per_input`` samples,

    own   = LPIPS(G(x_a), y_a)        the distance to its own target
    other = LPIPS(G(x_a), y_b)        the distance to the next input's target (b = a + 1, wrapping)
    cond_gain = mean(other) - mean(own)

A generator that ignores its input has a gain of ~0 (its outputs are as far from their own target as from
another one); a perfect one has the targets' own between-input distance, ``mean LPIPS(y_a, y_b)``, reported
beside it as ``targets_gain``. The sweep can rank trials under a floor on it (``cond_gain_floor``), as it
does with the FID ceiling.

:func:`lpips_between_outputs` asks the complementary question of a collapsed generator: do different
inputs get different images at all?
"""

from __future__ import annotations

import torch
from torch import Tensor

from clustergan.errors import ClusterganError
from clustergan.metrics.lpips_diversity import lpips_distance
from clustergan.metrics.registry import MetricContext, MetricResult, register_metric


class ConditionalGain:
    def __init__(self, test_targets: Tensor, samples_per_input: int = 4, batch_size: int = 64) -> None:
        if samples_per_input < 1:
            raise ClusterganError(f"cond_gain: samples_per_input must be >= 1, got {samples_per_input}")
        self.targets = test_targets
        self.samples_per_input = samples_per_input
        self.batch_size = batch_size
        self.seen = 0
        self.used = 0  # samples per input actually compared: min(S, samples_per_input)
        self.own: list[Tensor] = []
        self.other: list[Tensor] = []

    def update(self, samples: Tensor) -> None:
        """``samples`` [B, S, 3, H, W] in [-1, 1] for the next B test inputs (in the targets' order)."""
        num_inputs, num_samples = samples.shape[:2]
        n = len(self.targets)
        if self.seen + num_inputs > n:
            raise ClusterganError(f"cond_gain: samples for {self.seen + num_inputs} inputs, but {n} test targets")
        s = self.used = min(num_samples, self.samples_per_input)
        index = torch.arange(self.seen, self.seen + num_inputs)
        images = samples[:, :s].flatten(0, 1)
        own = self.targets[index].repeat_interleave(s, 0).to(images.device)
        other = self.targets[(index + 1) % n].repeat_interleave(s, 0).to(images.device)
        d = lpips_distance(torch.cat([images, images]), torch.cat([own, other]), self.batch_size).double()
        self.own.append(d[: len(images)])
        self.other.append(d[len(images) :])
        self.seen += num_inputs

    def compute(self) -> MetricResult:
        n = len(self.targets)
        if self.seen != n:
            raise ClusterganError(f"cond_gain: samples for {self.seen} of the {n} test inputs")
        own, other = float(torch.cat(self.own).mean()), float(torch.cat(self.other).mean())
        reference = float(lpips_distance(self.targets, torch.roll(self.targets, -1, 0), self.batch_size).mean())
        return MetricResult(
            values={"cond_gain": other - own},
            details={
                "own_lpips": own,
                "other_lpips": other,
                "targets_gain": reference,
                "inputs": n,
                "samples_per_input": self.used,
                "other": "the next input's target (wrapping)",
            },
        )


@register_metric("cond_gain", needs=("test_targets",))
def build_cond_gain(ctx: MetricContext) -> ConditionalGain:
    if ctx.test_targets is None:
        raise ClusterganError("cond_gain needs the test targets (evaluate(..., test_targets=...))")
    return ConditionalGain(ctx.test_targets)


@torch.no_grad()
def lpips_between_outputs(generate_fn, sources: Tensor, seed: int = 0) -> float:
    """Mean LPIPS between the outputs of neighbouring inputs (one sample each, ``a`` against ``a + 1``,
    wrapping). ~0 when every input gets the same image; the facades test photos are ~0.5 apart."""
    out = generate_fn(sources, 1, torch.Generator().manual_seed(seed))[:, 0]
    return float(lpips_distance(out, torch.roll(out, -1, 0)).mean())
