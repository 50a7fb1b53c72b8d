"""Where a result came from: git commit, package versions, device, thread count."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

import torch

_PACKAGES = ("clustergan", "torch", "torchvision", "ray", "timm", "optuna", "lpips", "pytorch-fid", "scikit-learn")


def git_commit() -> str:
    try:
        here = Path(__file__).resolve().parent
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5, check=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def versions() -> dict[str, str]:
    found = {}
    for name in _PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def provenance(device: torch.device | str | None = None) -> dict[str, object]:
    device = torch.device(device or "cpu")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    return {
        "git_commit": git_commit(),
        "versions": versions(),
        "python": platform.python_version(),
        "device": f"{device} ({name})",
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "host": platform.node(),
    }
