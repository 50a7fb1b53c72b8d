"""Frozen pretrained encoders E: images [B, 3, H, W] in [-1, 1] -> pooled features [B, D].

Use :func:`build_encoder` (``build_encoder("efficientnet_lite0")``). Every encoder resizes and
normalises its input itself, is frozen, stays in eval mode, and is differentiable w.r.t. its input.

To add an encoder: write ``fn(weights: str | None) -> FrozenEncoder`` in a module of this package,
decorate it with ``@register("name")``, import the module below, and the registry contract tests in
``tests/test_encoders.py`` cover it automatically.
"""

from clustergan.encoders import efficientnet as _efficientnet  # noqa: F401  (registers the EfficientNets)
from clustergan.encoders.base import FrozenEncoder
from clustergan.encoders.registry import (
    ENCODERS,
    RANDOM_SOURCE,
    RANDOM_WEIGHTS,
    available_encoders,
    build_encoder,
    register,
)

__all__ = [
    "ENCODERS",
    "FrozenEncoder",
    "RANDOM_SOURCE",
    "RANDOM_WEIGHTS",
    "available_encoders",
    "build_encoder",
    "register",
]
