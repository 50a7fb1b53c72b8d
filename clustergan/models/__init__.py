"""Networks: the conditional U-Net generator G(x, z, i) and the multi-scale projection PatchGAN D(x, y, i).

To add an architecture, put it in its own module with typed constructor arguments and export it here.
"""

from torch import nn

from clustergan.models.discriminator import PatchDiscriminator
from clustergan.models.generator import UNetGenerator


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters of ``module`` (only those with requires_grad when ``trainable_only``)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


__all__ = ["PatchDiscriminator", "UNetGenerator", "count_parameters"]
