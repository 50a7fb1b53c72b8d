"""The encoder registry: a plain dict of builders behind ``@register(name)``.

A builder is ``fn(weights: str | None) -> FrozenEncoder`` where ``weights`` is
``None`` (the encoder's default real weights), ``"random"`` (random init, asked for by name and
labelled in ``weights_source``) or a path to a local weight file.
"""

from __future__ import annotations

from collections.abc import Callable

from clustergan.encoders.base import FrozenEncoder
from clustergan.registry import Registry

EncoderBuilder = Callable[[str | None], FrozenEncoder]

ENCODERS: Registry[EncoderBuilder] = Registry("encoder")
register = ENCODERS.register  # ``@register("name")`` on a builder

RANDOM_WEIGHTS = "random"
RANDOM_SOURCE = "RANDOM INIT (requested)"


def available_encoders() -> list[str]:
    return sorted(ENCODERS)


def build_encoder(name: str, weights: str | None = None, input_size: int | None = None) -> FrozenEncoder:
    """Build the frozen encoder ``name``.

    Args:
        name: a key of :data:`ENCODERS`.
        weights: ``None`` for the encoder's default real weights, ``"random"`` for a random-init network
            (labelled ``RANDOM INIT (requested)``), or a path to a local weight file.
        input_size: the side images are resized to before the network (``encoder.input_size``); ``None`` for
            the network's own size (224 for the EfficientNets). See :meth:`FrozenEncoder.set_input_size`.

    Raises:
        ConfigError: unknown ``name``.
        WeightsError: the weights cannot be found or loaded (never a silent fallback to random init).
    """
    encoder = ENCODERS.lookup(name)(weights)
    if input_size is not None:
        encoder.set_input_size(input_size)
    return encoder
