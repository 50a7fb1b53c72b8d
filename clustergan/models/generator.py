"""pix2pix U-Net generator conditioned on noise z and a cluster index (MSGAN / BicycleGAN "add_all").

Layout for ``size = 2^n`` (n down blocks, the innermost one ends at 1x1)::

    x [B, in, S, S] --cat c--> down0 --cat c--> down1 ... --cat c--> down(n-1)  (1x1 bottleneck)
                                 |                |                      |
    y [B, out, S, S] <-tanh-- up0 <--cat skip-- up1 ... <--cat skip-- up(n-1)

Down block i: (LeakyReLU 0.2, except block 0) -> Conv 4x4 stride 2 -> norm (not in block 0, not in the
innermost block whose output is 1x1: instance norm of a single value is always 0). Up block i: ReLU ->
ConvTranspose 4x4 stride 2 -> norm (+ dropout), except up0 which ends in tanh. Channels of down block i:
``min(ngf * 2^i, max_channels)``.

Conditioning: ``c = concat(z, embedding(cluster_ids))`` [B, nz + cluster_emb_dim] is tiled over the spatial
grid and concatenated to the input of EVERY down block, as MSGAN's pix2pix does with its noise (it follows
BicycleGAN's "add_all" generator). The cluster index enters exactly like the noise, through a learned
embedding, so G(x, z, i) sees i at every resolution.

Dropout: pix2pix makes its generator stochastic by keeping dropout (p = 0.5 in the up blocks just outside
the innermost one) active at test time. To reproduce that, ``dropout > 0`` applies
``F.dropout(training=True)`` after up blocks max(1, n-4) .. n-2 (the three just outside the innermost at
256 px; never the innermost nor the outermost), in ``eval()`` mode too. MSGAN uses no dropout (``dropout = 0``).

Initialisation: Xavier-normal with gain 0.02 for every conv (BicycleGAN / MSGAN's default "xavier" init),
zero biases, batch-norm weights N(1, 0.02); the cluster embedding is N(0, 1) like z.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from clustergan.errors import ConfigError

NORMS = ("instance", "batch")


def make_norm(norm: str, channels: int) -> nn.Module:
    """Instance norm without affine parameters (pix2pix's choice) or batch norm."""
    if norm == "instance":
        return nn.InstanceNorm2d(channels, affine=False)
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    raise ConfigError(f"unknown norm {norm!r}: use one of {', '.join(NORMS)}")


def init_weights(module: nn.Module) -> None:
    """Xavier-normal (gain 0.02) convs, zero biases, N(1, 0.02) batch-norm weights."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.xavier_normal_(m.weight, gain=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class UNetGenerator(nn.Module):
    """G(x, z, i): U-Net from [B, in_channels, size, size] to [B, out_channels, size, size] in [-1, 1].

    Args:
        size: image side, a power of two >= 16 (the number of down blocks is log2(size)).
        in_channels / out_channels: image channels.
        ngf: channels of the first down block.
        nz: noise dimension; 0 means no noise input.
        num_clusters: number of clusters k; 0 means unconditional.
        cluster_emb_dim: size of the learned cluster embedding.
        norm: "instance" or "batch".
        dropout: dropout probability in the three up blocks outside the innermost; active at test time.
        max_channels: cap on the channels of every block.
    """

    def __init__(
        self,
        size: int,
        in_channels: int = 3,
        out_channels: int = 3,
        ngf: int = 64,
        nz: int = 8,
        num_clusters: int = 0,
        cluster_emb_dim: int = 8,
        norm: str = "instance",
        dropout: float = 0.0,
        max_channels: int = 512,
    ) -> None:
        super().__init__()
        if not isinstance(size, int) or size < 16 or size & (size - 1):
            raise ConfigError(f"generator image size {size!r} is not supported: use a power of two >= 16")
        if norm not in NORMS:
            raise ConfigError(f"unknown generator norm {norm!r}: use one of {', '.join(NORMS)}")
        if nz < 0 or num_clusters < 0 or cluster_emb_dim < 1 or ngf < 1 or max_channels < 1:
            raise ConfigError(
                f"generator sizes must be positive: got nz={nz}, num_clusters={num_clusters}, "
                f"cluster_emb_dim={cluster_emb_dim}, ngf={ngf}, max_channels={max_channels}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"generator dropout {dropout!r} must be in [0, 1)")
        self.size = size
        self.in_channels = in_channels
        self.nz = nz
        self.num_clusters = num_clusters
        self.dropout = float(dropout)
        self.embedding = nn.Embedding(num_clusters, cluster_emb_dim) if num_clusters > 0 else None
        nc = nz + (cluster_emb_dim if num_clusters > 0 else 0)
        self.cond_dim = nc

        n = int(math.log2(size))
        chans = [min(ngf * 2**i, max_channels) for i in range(n)]
        bias = norm == "instance"  # batch norm has its own shift; instance norm (affine False) has none
        self.downs = nn.ModuleList()
        for i in range(n):
            cin = (in_channels if i == 0 else chans[i - 1]) + nc
            layers: list[nn.Module] = [] if i == 0 else [nn.LeakyReLU(0.2)]
            layers.append(nn.Conv2d(cin, chans[i], 4, stride=2, padding=1, bias=bias or i in (0, n - 1)))
            if 0 < i < n - 1:
                layers.append(make_norm(norm, chans[i]))
            self.downs.append(nn.Sequential(*layers))
        self.ups = nn.ModuleList()
        for i in range(n):
            cin = chans[i] if i == n - 1 else 2 * chans[i]  # the innermost has no skip to concatenate
            cout = out_channels if i == 0 else chans[i - 1]
            layers = [nn.ReLU(), nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1, bias=bias or i == 0)]
            layers.append(nn.Tanh() if i == 0 else make_norm(norm, cout))
            self.ups.append(nn.Sequential(*layers))
        # pix2pix's dropout sits in the blocks just outside the innermost (three of them at 256 px).
        self.dropout_levels = frozenset(range(max(1, n - 4), n - 1))
        init_weights(self)

    def condition(self, batch: int, z: torch.Tensor | None, cluster_ids: torch.Tensor | None) -> torch.Tensor | None:
        """Check the inputs and return c = concat(z, embedding(cluster_ids)) [B, nz + emb], or None."""
        parts = []
        if self.nz > 0:
            if z is None:
                raise ValueError(f"this generator has nz={self.nz}: pass z of shape [B, {self.nz}]")
            if z.shape != (batch, self.nz):
                raise ValueError(f"z has shape {tuple(z.shape)}, expected [{batch}, {self.nz}]")
            parts.append(z)
        elif z is not None:
            raise ValueError("this generator has nz=0 (no noise input): pass z=None")
        if self.embedding is not None:
            if cluster_ids is None:
                raise ValueError(f"this generator is conditioned on {self.num_clusters} clusters: pass cluster_ids [B]")
            if cluster_ids.shape != (batch,) or cluster_ids.dtype != torch.long:
                raise ValueError(
                    f"cluster_ids must be a LongTensor of shape [{batch}], "
                    f"got {cluster_ids.dtype} {tuple(cluster_ids.shape)}"
                )
            parts.append(self.embedding(cluster_ids).to(parts[0].dtype if parts else self.embedding.weight.dtype))
        elif cluster_ids is not None:
            raise ValueError("this generator is unconditional (num_clusters=0): pass cluster_ids=None")
        return torch.cat(parts, dim=1) if parts else None

    def forward(
        self, x: torch.Tensor, z: torch.Tensor | None = None, cluster_ids: torch.Tensor | None = None
    ) -> torch.Tensor:
        """x [B, in, S, S], z [B, nz] or None, cluster_ids LongTensor [B] or None -> [B, out, S, S] in [-1, 1]."""
        if x.dim() != 4 or x.shape[1] != self.in_channels or x.shape[2:] != (self.size, self.size):
            raise ValueError(
                f"generator input has shape {tuple(x.shape)}, "
                f"expected [B, {self.in_channels}, {self.size}, {self.size}]"
            )
        c = self.condition(x.shape[0], z, cluster_ids)
        skips = []
        h = x
        for down in self.downs:
            if c is not None:
                tiled = c[:, :, None, None].to(h.dtype).expand(-1, -1, h.shape[2], h.shape[3])
                h = torch.cat([h, tiled], dim=1)
            h = down(h)
            skips.append(h)
        n = len(self.ups)
        for i in reversed(range(n)):
            if i < n - 1:
                h = torch.cat([skips[i], h], dim=1)
            h = self.ups[i](h)
            if self.dropout > 0 and i in self.dropout_levels:
                # training=True on purpose: pix2pix keeps dropout on at test time as its noise source.
                h = F.dropout(h, self.dropout, training=True)
        return h
