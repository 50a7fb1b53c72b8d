"""The frozen feature extractor E shared by cluster statistics and training losses.

One module sees every image the same way: images in [-1, 1] are resized to the network's own input
size and normalised with the network's own mean/std inside ``forward``. Cluster statistics (computed
on training targets) and the feature losses (computed on generated images) therefore live in exactly
the same feature space, whatever the training resolution.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class FrozenEncoder(nn.Module):
    """A pretrained classifier used as a frozen, differentiable feature map.

    ``forward(images [B, 3, H, W] in [-1, 1]) -> features [B, D]`` (globally pooled).

    The parameters never train (``requires_grad`` is False) and the module stays in eval mode even when a
    parent calls ``.train()``: batch-norm running statistics must not drift and dropout must stay off, or
    the cluster statistics would no longer describe the features the losses see. Gradients still flow to
    the input images, which is how the feature losses reach the generator.

    Attributes:
        name: registry name (e.g. ``"efficientnet_lite0"``).
        input_size: side length the images are resized to (224 for both EfficientNets).
        feature_dim: D, the pooled feature size (1280 for both EfficientNets).
        weights_source: where the weights came from, in words, or ``"RANDOM INIT (requested)"``.
    """

    def __init__(
        self,
        net: nn.Module,
        name: str,
        input_size: int,
        feature_dim: int,
        mean: Sequence[float],
        std: Sequence[float],
        weights_source: str,
    ) -> None:
        super().__init__()
        self.net = net
        self.name = name
        self.input_size = int(input_size)
        self.feature_dim = int(feature_dim)
        self.weights_source = weights_source
        # Buffers (not parameters) so they follow .to(device) and never train; not saved in state dicts
        # because they are a property of the encoder kind, not learned state.
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        for p in self.net.parameters():
            p.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True) -> "FrozenEncoder":
        """Ignore ``mode``: the encoder is in eval mode forever (see the class docstring)."""
        return super().train(False)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """[B, 3, H, W] in [-1, 1] -> [B, 3, S, S] resized and normalised for the network (S = input_size)."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"{self.name} expects images [B, 3, H, W], got shape {tuple(images.shape)}")
        x = (images + 1.0) * 0.5  # [-1, 1] -> [0, 1], the range the mean/std are defined on
        if x.shape[-2:] != (self.input_size, self.input_size):
            # Bilinear without antialiasing: cheap and differentiable; upsampling (the usual case, 64-256 px
            # -> 224) does not alias anyway.
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear",
                              align_corners=False, antialias=False)
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """[B, 3, H, W] in [-1, 1] -> pooled features [B, D]."""
        return self.net(self.preprocess(images))

    def extra_repr(self) -> str:
        return (f"name={self.name!r}, input_size={self.input_size}, feature_dim={self.feature_dim}, "
                f"weights_source={self.weights_source!r}")
