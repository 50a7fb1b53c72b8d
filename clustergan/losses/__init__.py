"""Losses of the generator objective L = L_ori + lambda_MS L_MS + lambda_kL1 L_kL1 + lambda_km L_km.

- :class:`GANLoss` (L_ori's adversarial part, summed over discriminator scales) and
  :func:`l1_reconstruction` (L_ori's lambda_L1 part);
- :func:`mode_seeking_loss` (MSGAN's L_MS);
- :class:`ClusterTargets` with ``kl1`` (L_kL1) and ``mahalanobis`` (L_km) on encoder features.

Each loss lives in one module; its weight lives in the config, never here.
"""

from clustergan.losses.cluster import ClusterTargets
from clustergan.losses.gan import GAN_MODES, GANLoss
from clustergan.losses.mode_seeking import mode_seeking_loss
from clustergan.losses.reconstruction import l1_reconstruction

__all__ = ["GAN_MODES", "ClusterTargets", "GANLoss", "l1_reconstruction", "mode_seeking_loss"]
