"""Sample grids like the paper's Figure 2: a row per input; columns = cluster index x several z."""

from __future__ import annotations

import torch
from torchvision.utils import make_grid


@torch.no_grad()
def sample_grid(
    G: torch.nn.Module, sources: torch.Tensor, nz: int, k: int, seed: int = 0, num_z: int = 3, max_clusters: int = 8
) -> torch.Tensor:
    """Rows: ``sources`` [R, 3, H, W]; first column the input, then for each cluster (up to ``max_clusters``)
    ``num_z`` noise draws (6 draws when unconditional). Returns an image [3, H', W'] in [0, 1]."""
    gen = torch.Generator(device="cpu").manual_seed(seed)
    R = sources.shape[0]
    clusters = list(range(min(k, max_clusters))) if k else [None]
    draws = num_z if k else 2 * num_z
    columns = [sources]
    for c in clusters:
        ids = torch.full((R,), c, dtype=torch.long, device=sources.device) if c is not None else None
        for _ in range(draws if nz else 1 if k else 2):
            z = torch.randn(R, nz, generator=gen).to(sources.device) if nz else None
            columns.append(G(sources, z, ids).float())
    tiles = torch.stack(columns, dim=1).flatten(0, 1)  # [R * C, 3, H, W], row-major
    return make_grid((tiles.clamp(-1, 1) + 1) / 2, nrow=len(columns), padding=1, pad_value=1.0)
