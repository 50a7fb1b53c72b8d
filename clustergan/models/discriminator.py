"""Conditional multi-scale PatchGAN with cluster conditioning by projection.

Each scale is pix2pix's PatchGAN on concat(source, target) [B, 6, H, W]::

    Conv 4x4/2 -> LReLU -> n_layers - 1 x [Conv 4x4/2 -> norm -> LReLU]
        -> Conv 4x4/1 -> norm -> LReLU  = h [B, C, h, w]   (C = ndf * min(2^n_layers, 8))
        -> head: Conv 4x4/1 (C -> 1) + projection  = logits [B, 1, h - 1, w - 1]

With ``n_layers = 3`` a logit sees a 70x70 patch and a 256 px input gives a 30x30 map. With
``num_scales = 2`` a second, independent PatchGAN judges the input average-pooled by 2 (3x3 window,
stride 2, as MSGAN / BicycleGAN do); MSGAN sums the two scales' losses and gives its second scale half
the channels (``scale_width="halved"``; the default keeps ``ndf`` at both).

Cluster conditioning by projection (Miyato & Koyama 2018): the logit is ``psi(phi(x)) + <e_i, phi(x)>``
with a learned embedding ``e_i`` per cluster, so D scores both realism and fit to cluster i. Here phi(x)
at an output location is the 4x4xC window of ``h`` that pix2pix's last conv reads, so the projection is
a per-sample 4x4 convolution of ``h`` with the kernel ``e_i`` [C, 4, 4] (a grouped conv). This keeps the
unconditional network exactly pix2pix's (and its 70 px receptive field) instead of replacing its last conv
by a 1x1 conv; with a 1x1 window it would be the textbook per-location projection.

Small images: the patch map must stay at least 1x1. A stride-2 conv whose input is 4 px or smaller runs
with stride 1 and size-keeping padding (same weights), so with any n_layers every scale's input of
16 px or more yields a map of at least 2x2 (e.g. a 32 px image with two scales and n_layers = 3: 2x2 at
full scale and 2x2 on the 16 px pooled copy). With n_layers = 3 nothing changes at 64 px and above.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from clustergan.errors import ConfigError
from clustergan.models.generator import NORMS, init_weights, make_norm


class _AdaptiveStrideConv(nn.Conv2d):
    """4x4 conv with stride 2, or size-keeping stride 1 when its input is 4 px or smaller (module doc)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if min(x.shape[-2:]) > 4:
            return F.conv2d(x, self.weight, self.bias, 2, self.padding)
        # Stride 1 with asymmetric padding keeps the size, so any number of layers leaves a map >= 3x3.
        return F.conv2d(F.pad(x, (1, 2, 1, 2)), self.weight, self.bias, 1, 0)


class _PatchGAN(nn.Module):
    """One scale: features h [B, C, h, w], then the head (+ projection when conditioned)."""

    def __init__(self, in_channels: int, ndf: int, n_layers: int, num_clusters: int, norm: str) -> None:
        super().__init__()
        bias = norm == "instance"
        layers: list[nn.Module] = [_AdaptiveStrideConv(in_channels, ndf, 4, padding=1), nn.LeakyReLU(0.2)]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2**n, 8)
            layers += [
                _AdaptiveStrideConv(ndf * prev, ndf * mult, 4, padding=1, bias=bias),
                make_norm(norm, ndf * mult),
                nn.LeakyReLU(0.2),
            ]
        prev, mult = mult, min(2**n_layers, 8)
        layers += [
            nn.Conv2d(ndf * prev, ndf * mult, 4, stride=1, padding=1, bias=bias),
            make_norm(norm, ndf * mult),
            nn.LeakyReLU(0.2),
        ]
        self.features = nn.Sequential(*layers)
        self.channels = ndf * mult
        self.head = nn.Conv2d(self.channels, 1, 4, stride=1, padding=1)
        self.embedding = nn.Embedding(num_clusters, self.channels * 16) if num_clusters > 0 else None

    def forward(self, x: torch.Tensor, cluster_ids: torch.Tensor | None) -> torch.Tensor:
        h = self.features(x)
        logits = self.head(h)
        if self.embedding is not None:
            b, c, hh, ww = h.shape
            kernels = self.embedding(cluster_ids).view(b, c, 4, 4).to(h.dtype)  # e_i per sample
            # groups=b: sample j's feature map is convolved with its own cluster's kernel only.
            proj = F.conv2d(h.reshape(1, b * c, hh, ww), kernels, padding=1, groups=b)
            logits = logits + proj.view(b, 1, *proj.shape[-2:])
        return logits


class PatchDiscriminator(nn.Module):
    """D(source, target, i) -> one logit map [B, 1, h, w] per scale.

    Args:
        in_channels: channels of concat(source, target) (6 for RGB pairs).
        ndf: channels of the first conv.
        n_layers: stride-2 convs per scale (3 gives pix2pix's 70x70 PatchGAN).
        num_scales: number of PatchGANs, each on a further 2x average-pooled input.
        num_clusters: k for projection conditioning; 0 means unconditional.
        norm: "instance" or "batch".
        scale_width: "same" (``ndf`` at every scale) or "halved" (scale s has ``round(ndf / 2**s)``).
    """

    def __init__(
        self,
        in_channels: int = 6,
        ndf: int = 64,
        n_layers: int = 3,
        num_scales: int = 1,
        num_clusters: int = 0,
        norm: str = "instance",
        scale_width: str = "same",
    ) -> None:
        super().__init__()
        if norm not in NORMS:
            raise ConfigError(f"unknown discriminator norm {norm!r}: use one of {', '.join(NORMS)}")
        if n_layers < 1 or num_scales < 1 or ndf < 1 or num_clusters < 0:
            raise ConfigError(
                f"discriminator sizes must be positive: got n_layers={n_layers}, num_scales={num_scales}, "
                f"ndf={ndf}, num_clusters={num_clusters}"
            )
        if scale_width not in ("same", "halved"):
            raise ConfigError(f"unknown discriminator scale_width {scale_width!r}: use 'same' or 'halved'")
        widths = [ndf if scale_width == "same" else max(1, round(ndf / 2**s)) for s in range(num_scales)]
        self.in_channels = in_channels
        self.num_clusters = num_clusters
        self.scales = nn.ModuleList(_PatchGAN(in_channels, w, n_layers, num_clusters, norm) for w in widths)
        init_weights(self)
        for scale in self.scales:
            if scale.embedding is not None:
                nn.init.normal_(scale.embedding.weight, 0.0, 0.02)

    def forward(
        self, source: torch.Tensor, target: torch.Tensor, cluster_ids: torch.Tensor | None = None
    ) -> list[torch.Tensor]:
        """source, target [B, C, H, W]; cluster_ids LongTensor [B] or None -> list of [B, 1, h, w] logits."""
        x = torch.cat([source, target], dim=1)
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"discriminator input concat(source, target) has shape {tuple(x.shape)}, "
                f"expected [B, {self.in_channels}, H, W]"
            )
        batch = x.shape[0]
        if self.num_clusters > 0:
            if cluster_ids is None:
                raise ValueError(
                    f"this discriminator is conditioned on {self.num_clusters} clusters: pass cluster_ids [B]"
                )
            if cluster_ids.shape != (batch,) or cluster_ids.dtype != torch.long:
                raise ValueError(
                    f"cluster_ids must be a LongTensor of shape [{batch}], "
                    f"got {cluster_ids.dtype} {tuple(cluster_ids.shape)}"
                )
        elif cluster_ids is not None:
            raise ValueError("this discriminator is unconditional (num_clusters=0): pass cluster_ids=None")
        min_side = 16 * 2 ** (len(self.scales) - 1)
        if min(x.shape[-2:]) < min_side:
            raise ValueError(
                f"discriminator input {tuple(x.shape[-2:])} is too small for {len(self.scales)} scale(s): "
                f"use images of at least {min_side} px"
            )
        outputs = []
        for k, scale in enumerate(self.scales):
            if k > 0:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            outputs.append(scale(x, cluster_ids))
        return outputs
