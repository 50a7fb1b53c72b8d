"""MSGAN's mode-seeking loss L_MS."""

import torch


def mode_seeking_loss(
    fake1: torch.Tensor, fake2: torch.Tensor, z1: torch.Tensor, z2: torch.Tensor, eps: float = 1e-5
) -> torch.Tensor:
    """L_MS = 1 / (mean|fake2 - fake1| / mean|z2 - z1| + eps), exactly as MSGAN's authors implemented it.

    fake1, fake2 [B, C, H, W] are generated from the same inputs with noise z1, z2 [B, nz]. Minimising it
    pushes outputs apart in proportion to how far apart their noise vectors are. Both means run over ALL
    elements of the batch (not per sample), so the samples of a batch are coupled: one very different pair
    lowers the loss for the whole batch. Kept as published for comparability with MSGAN.
    """
    ratio = (fake2 - fake1).abs().mean() / (z2 - z1).abs().mean()
    return 1.0 / (ratio + eps)
