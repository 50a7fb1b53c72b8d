"""L1 reconstruction loss of pix2pix (weighted by lambda_L1 in the generator objective)."""

import torch


def l1_reconstruction(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of fake and real [B, C, H, W] -> scalar."""
    return (fake - real).abs().mean()
