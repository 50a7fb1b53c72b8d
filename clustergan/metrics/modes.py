"""Mode coverage on synthetic data whose true modes are known.

For each input, the share of the ``num_modes`` true modes that appear among its S samples, averaged over
inputs (1.0: every input's samples reach every mode; 1 / num_modes: each input collapses onto one mode).
Mode labels come from a classifier supplied by the caller (``clustergan.data.synth.classify_mode``); label
-1 means "no mode" (a sample off every mode) and counts towards none.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from clustergan.errors import ClusterganError
from clustergan.metrics.registry import MetricContext, MetricResult, register_metric


def _check_labels(sample_modes: Tensor, num_modes: int) -> None:
    if not isinstance(num_modes, int) or num_modes < 1:
        raise ClusterganError(f"mode_coverage: num_modes must be a positive integer, got {num_modes!r}")
    if sample_modes.dim() != 2 or sample_modes.numel() == 0:
        raise ClusterganError(
            f"mode_coverage: sample_modes must have shape [N_inputs, S] with N_inputs, S >= 1, "
            f"got {list(sample_modes.shape)}"
        )
    if sample_modes.is_floating_point() or sample_modes.dtype == torch.bool:
        raise ClusterganError(f"mode_coverage: sample_modes must be integer mode labels, got {sample_modes.dtype}")
    low, high = int(sample_modes.min()), int(sample_modes.max())
    if low < -1 or high >= num_modes:
        raise ClusterganError(
            f"mode_coverage: mode labels must lie in [-1, {num_modes - 1}] (-1 = no mode), "
            f"got values in [{low}, {high}]"
        )


def modes_covered(sample_modes: Tensor, num_modes: int) -> Tensor:
    """Per input, the share of true modes among its samples: [N_inputs, S] labels -> [N_inputs] float64."""
    _check_labels(sample_modes, num_modes)
    hits = torch.zeros(sample_modes.shape[0], num_modes + 1, dtype=torch.bool)
    hits.scatter_(1, sample_modes.long().cpu() + 1, True)  # column 0 collects "no mode"
    return hits[:, 1:].sum(1).double() / num_modes


def mode_coverage(sample_modes: Tensor, num_modes: int) -> float:
    """Mean over inputs of the share of the ``num_modes`` true modes among each input's S samples."""
    return float(modes_covered(sample_modes, num_modes).mean())


class ModeCoverageMetric:
    def __init__(self, classifier: Callable[[Tensor], Tensor], num_modes: int) -> None:
        self.classifier = classifier  # images [N, 3, H, W] -> mode labels [N]
        self.num_modes = num_modes
        self.per_input: list[Tensor] = []

    def update(self, samples: Tensor) -> None:
        """``samples`` [B, S, 3, H, W] in [-1, 1]."""
        num_inputs, num_samples = samples.shape[:2]
        with torch.no_grad():
            labels = torch.as_tensor(self.classifier(samples.flatten(0, 1)))
        if labels.shape != (num_inputs * num_samples,):
            raise ClusterganError(
                f"mode_coverage: the mode classifier returned shape {list(labels.shape)} for "
                f"{num_inputs * num_samples} images; it must return one label per image"
            )
        self.per_input.append(modes_covered(labels.view(num_inputs, num_samples), self.num_modes))

    def compute(self) -> MetricResult:
        per_input = torch.cat(self.per_input)
        return MetricResult(
            values={"mode_coverage": float(per_input.mean())},
            details={
                "num_modes": self.num_modes,
                "inputs": len(per_input),
                "all_modes_share": float((per_input == 1).double().mean()),
            },
        )


@register_metric("mode_coverage", needs=("mode_classifier", "num_modes"))
def build_mode_coverage(ctx: MetricContext) -> ModeCoverageMetric:
    if ctx.mode_classifier is None or ctx.num_modes is None:
        raise ClusterganError("mode_coverage: pass both mode_classifier and num_modes to evaluate")
    return ModeCoverageMetric(ctx.mode_classifier, ctx.num_modes)
