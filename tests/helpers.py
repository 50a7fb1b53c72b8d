"""Helpers shared by test modules."""

from __future__ import annotations

import torch


def biases_before_instance_norm(model: torch.nn.Module) -> set[str]:
    """Names of conv biases directly followed by a non-affine InstanceNorm: the norm subtracts them again, so
    their true gradient is 0 and the computed one is float noise (~1e-9 to 1e-7)."""
    names = set()
    for prefix, module in model.named_modules():
        if isinstance(module, torch.nn.Sequential):
            children = list(module.named_children())
            for (name, layer), (_, after) in zip(children, children[1:]):
                norm = isinstance(after, torch.nn.InstanceNorm2d) and not after.affine
                if norm and getattr(layer, "bias", None) is not None:
                    names.add(f"{prefix}.{name}.bias" if prefix else f"{name}.bias")
    return names
