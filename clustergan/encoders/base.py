"""The frozen feature extractor E shared by cluster statistics and training losses.

One module sees every image the same way: images in [-1, 1] are resized to the network's own input
size and normalised with the network's own mean/std inside ``forward``. Cluster statistics (computed
on training targets) and the feature losses (computed on generated images) therefore live in exactly
the same feature space, whatever the training resolution.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

# The folded network must compute the same features as the original up to float rounding: measured ~1e-6
# relative on a random image; a wrong pairing of layers would be off by orders of magnitude more.
FOLD_TOLERANCE = 1e-4
# The EfficientNets downsample by 32: below that the last feature map would be empty.
MIN_INPUT_SIZE = 32


def fold_batchnorm(net: nn.Module) -> int:
    """Fold every eval-mode batch norm into the convolution it follows, in place; returns how many.

    A frozen batch norm is a per-channel affine map, so ``conv -> bn`` equals one convolution with scaled
    weights and a bias (``torch.nn.utils.fusion.fuse_conv_bn_weights``). A pair is a ``Conv2d`` directly followed,
    among its parent's children, by a ``BatchNorm2d`` of as many channels; a timm ``BatchNormAct2d`` keeps its
    dropout and activation. This is how timm's EfficientNets are written; ``FrozenEncoder`` checks the result
    against the unfolded network and keeps that one if they differ. Why: on CPU the encoder's forward + backward (the
    feature losses' cost) ran
    1.5-2x faster with this and channels_last (``docs/BENCHMARKS.md``).
    """
    from torch.nn.utils.fusion import fuse_conv_bn_weights

    folded = 0
    for parent in list(net.modules()):
        children = list(parent.named_children())
        for (_, conv), (bn_name, bn) in zip(children, children[1:], strict=False):
            if not isinstance(conv, nn.Conv2d) or not isinstance(bn, nn.BatchNorm2d):
                continue
            if bn.num_features != conv.out_channels or bn.running_mean is None or bn.running_var is None:
                continue
            conv.weight, conv.bias = fuse_conv_bn_weights(
                conv.weight, conv.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias
            )
            rest = [m for m in (getattr(bn, "drop", None), getattr(bn, "act", None)) if m is not None]
            setattr(parent, bn_name, nn.Sequential(*rest) if rest else nn.Identity())
            folded += 1
    return folded


def state_dict_digest(net: nn.Module) -> str:
    """A 16-hex-digit SHA-256 of a module's tensors (names, dtypes, shapes and bytes), in state-dict order.

    It identifies weights by what they are, not where they were read from: the same weights in another venv
    or cache folder give the same digest, and another file at the same path does not.
    """
    digest = hashlib.sha256()
    for name, tensor in net.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


class FrozenEncoder(nn.Module):
    """A pretrained classifier used as a frozen, differentiable feature map.

    ``forward(images [B, 3, H, W] in [-1, 1]) -> features [B, D]`` (globally pooled).

    The parameters never train (``requires_grad`` is False) and the module stays in eval mode even when a
    parent calls ``.train()``: batch-norm running statistics must not drift and dropout must stay off, or
    the cluster statistics would no longer describe the features the losses see. Gradients still flow to
    the input images, which is how the feature losses reach the generator.

    Attributes:
        name: registry name (e.g. ``"efficientnet_lite0"``).
        input_size: side length the images are resized to; the network's own size (``native_input_size``)
            unless :meth:`set_input_size` chose another.
        native_input_size: the size the network was trained at (224 for both EfficientNets).
        feature_dim: D, the pooled feature size (1280 for both EfficientNets).
        weights_source: where the weights came from, in words, or ``"RANDOM INIT (requested)"``.
        weights_id: :func:`state_dict_digest` of the network as built (before batch-norm folding): what
            caches and cluster statistics are keyed by.
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
        self.input_size = self.native_input_size = int(input_size)
        self.feature_dim = int(feature_dim)
        self.weights_source = weights_source
        # Buffers (not parameters) so they follow .to(device) and never train; not saved in state dicts
        # because they are a property of the encoder kind, not learned state.
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        for p in self.net.parameters():
            p.requires_grad_(False)
        super().train(False)
        self.weights_id = state_dict_digest(self.net)
        self._fold()

    def _fold(self) -> None:
        """Batch norms folded into their convolutions and the network in channels_last (see
        :func:`fold_batchnorm`), checked on one random image against the network as it was built."""
        import copy

        reference = copy.deepcopy(self.net)
        folded = fold_batchnorm(self.net)
        self.net = self.net.to(memory_format=torch.channels_last)
        self.bn_folded = folded
        if not folded:
            return
        probe = torch.Generator().manual_seed(0)
        x = self.preprocess(torch.rand(1, 3, self.input_size, self.input_size, generator=probe) * 2 - 1)
        with torch.no_grad():
            want, got = reference(x), self.net(x)
        error = float((want - got).abs().max() / want.abs().max().clamp_min(1e-12))
        if error > FOLD_TOLERANCE:  # not conv -> bn as its children are listed: keep the network as it was
            import warnings

            warnings.warn(
                f"{self.name}: folding {folded} batch norms changed the features by {error:.2e} "
                f"(relative, > {FOLD_TOLERANCE:g}), so the encoder runs unfolded (same features, slower)",
                stacklevel=3,
            )
            self.net = reference.to(memory_format=torch.channels_last)
            self.bn_folded = 0

    def set_input_size(self, size: int) -> FrozenEncoder:
        """Resize images to ``size`` instead of the network's own size (the network is fully convolutional
        and globally pooled, so any size >= MIN_INPUT_SIZE gives D features).

        Why: at 64 px the encoder's pass on both fakes, upsampled to 224, cost more than the GAN step
        itself; at a smaller size the k-means assignment of the training set barely changes
        (``benchmarks/encoder_input_size.py``). The size is part of the feature space, so the cluster
        statistics and the losses must use the same one (both build the encoder from ``encoder.input_size``).
        """
        if int(size) < MIN_INPUT_SIZE:
            raise ValueError(f"{self.name}: input size {size} is below {MIN_INPUT_SIZE} (the network's total stride)")
        self.input_size = int(size)
        return self

    def train(self, mode: bool = True) -> FrozenEncoder:
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
            x = F.interpolate(
                x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False, antialias=False
            )
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """[B, 3, H, W] in [-1, 1] -> pooled features [B, D]."""
        return self.net(self.preprocess(images))

    def extra_repr(self) -> str:
        return (
            f"name={self.name!r}, input_size={self.input_size} (native {self.native_input_size}), "
            f"feature_dim={self.feature_dim}, "
            f"weights_source={self.weights_source!r}, weights_id={self.weights_id}"
        )
