"""``train.amp``: which precision the GAN's forward passes run in.

- ``none``: fp32 everywhere.
- ``bf16``: bf16 autocast for G and D (the frozen encoder and the loss reductions stay fp32, see
  :mod:`clustergan.train.loop`).
- ``auto``: bf16 where the device computes it natively, fp32 elsewhere. On CPU that means the AVX512-BF16
  or AMX-BF16 instructions: without them torch emulates bf16 and a step gets slower, not faster. On CUDA,
  ``torch.cuda.is_bf16_supported()``.

What ``auto`` resolved to is recorded with the run (``resolved_amp`` in the checkpoint's provenance and the
epoch metrics), since the same config trains differently on two machines.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch

# CPU flags (as /proc/cpuinfo spells them) of native bf16 arithmetic
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The CPU's feature flags (empty where /proc/cpuinfo does not exist, e.g. macOS)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def native_bf16(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and any(flag in cpu_flags() for flag in BF16_CPU_FLAGS)


def resolve_amp(amp: str, device: torch.device) -> str:
    """``train.amp`` -> ``"none"`` or ``"bf16"`` on ``device``."""
    if amp == "auto":
        return "bf16" if native_bf16(device) else "none"
    return amp


def autocast(resolved: str, device: torch.device):
    """The autocast context of a resolved precision (a no-op for fp32)."""
    if resolved == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
