"""An exponential moving average of the generator's weights (as StyleGAN2-ADA and BigGAN keep one).

Why: a GAN generator's weights keep oscillating from step to step around the point the adversarial game is
circling, so any one snapshot carries that step's noise. The average over the last few thousand images is a
smoother, usually better generator at no training cost (it never receives gradients and never feeds D). It
is what evaluation and sampling use by default; the raw G keeps training exactly as without it.

The update, after each ``opt_G.step()`` (StyleGAN2-ADA's, counted in images so that it does not depend on
the batch size or the number of workers)::

    ema_nimg = half_life_images
    if rampup is not None:                      # early on, average over a window that grows with training
        ema_nimg = min(ema_nimg, images_seen * rampup)
    beta = 0.5 ** (global_batch_images / max(ema_nimg, 1e-8))
    ema_param = lerp(param, ema_param, beta)    # = beta * ema_param + (1 - beta) * param
    ema_buffer = buffer                         # e.g. batch-norm running statistics: copied

``images_seen`` counts the images of the steps before this one (0 on the first step, so that the average
starts as a copy of G when ramping up); ``global_batch_images`` is ``batch_size * world_size``. Half of the
average's weight lies on the last ``half_life_images`` images. With DDP the average tracks the unwrapped
module; every rank updates its own copy (the weights agree across ranks after the gradient all-reduce), and
rank 0's copy is the one saved.
"""

from __future__ import annotations

import copy

import torch


def ema_beta(half_life_images: float, rampup: float | None, images_seen: float, batch_images: float) -> float:
    """The weight kept on the old average for one step of ``batch_images`` images after ``images_seen``."""
    ema_nimg = float(half_life_images)
    if rampup is not None:
        ema_nimg = min(ema_nimg, images_seen * rampup)
    return 0.5 ** (batch_images / max(ema_nimg, 1e-8))


class GeneratorEMA:
    """A frozen copy of ``G`` (in eval mode, no gradients) that follows G's weights by :func:`ema_beta`."""

    def __init__(self, G: torch.nn.Module, half_life_images: int, rampup: float | None, batch_images: int):
        self.half_life_images, self.rampup, self.batch_images = half_life_images, rampup, batch_images
        self.module = copy.deepcopy(G).eval().requires_grad_(False)

    @classmethod
    def from_config(cls, ema_config, G: torch.nn.Module, batch_images: int) -> GeneratorEMA | None:
        """``ema_config`` is ``config.train.ema``; None when EMA is off (``half_life_images`` 0)."""
        if not ema_config.half_life_images:
            return None
        return cls(G, ema_config.half_life_images, ema_config.rampup, batch_images)

    @torch.no_grad()
    def update(self, G: torch.nn.Module, images_seen: int) -> float:
        """Fold G's current weights in; ``images_seen`` before this step's batch. Returns the beta used."""
        beta = ema_beta(self.half_life_images, self.rampup, images_seen, self.batch_images)
        for p_ema, p in zip(self.module.parameters(), G.parameters(), strict=True):
            p_ema.copy_(p.detach().lerp(p_ema, beta))
        for b_ema, b in zip(self.module.buffers(), G.buffers(), strict=True):
            b_ema.copy_(b)
        return beta

    def restore(self, state: dict[str, torch.Tensor] | None, G: torch.nn.Module, announce: bool = True) -> None:
        """On resume: the checkpoint's average (``state``, its "G_ema"), or, for a checkpoint trained without
        EMA (``state`` None), a new average starting from the checkpoint's ``G`` (said when ``announce``)."""
        if state is not None:
            self.module.load_state_dict(state)
            return
        self.module.load_state_dict(G.state_dict())
        if announce:
            print(
                "train.ema is on but the checkpoint has no EMA generator (G_ema): the EMA starts from its G", flush=True
            )

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.module.state_dict()
