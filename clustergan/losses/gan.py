"""Adversarial loss over one or several discriminator scales."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from clustergan.errors import ConfigError

GAN_MODES = ("lsgan", "vanilla")


class GANLoss:
    """``GANLoss(mode)(preds, target_is_real) -> scalar``, hiding the all-ones / all-zeros targets.

    - "lsgan": mean squared error to 1 (real) or 0 (fake) (MSGAN's and pix2pix's default);
    - "vanilla": binary cross-entropy with logits (the original GAN loss).

    ``preds`` is one logit map [B, 1, h, w] or a list of them (one per discriminator scale); the loss is
    the SUM over scales of each scale's mean, as MSGAN sums the losses of its two discriminators.
    """

    def __init__(self, mode: str) -> None:
        if mode not in GAN_MODES:
            raise ConfigError(f"loss.gan_mode: unknown value {mode!r}; use one of {', '.join(GAN_MODES)}")
        self.mode = mode

    def _single(self, pred: torch.Tensor, target_is_real: bool) -> torch.Tensor:
        target = torch.full_like(pred, 1.0 if target_is_real else 0.0)
        if self.mode == "lsgan":
            return F.mse_loss(pred, target)
        return F.binary_cross_entropy_with_logits(pred, target)

    def __call__(self, preds: list[torch.Tensor] | torch.Tensor, target_is_real: bool) -> torch.Tensor:
        if isinstance(preds, torch.Tensor):
            preds = [preds]
        if not preds:
            raise ValueError("GANLoss needs at least one prediction map")
        return sum((self._single(p, target_is_real) for p in preds[1:]), self._single(preds[0], target_is_real))
