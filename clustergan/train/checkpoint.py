"""Atomic checkpoints that load with ``torch.load(weights_only=True)``.

A checkpoint is a plain dict of state dicts, tensors, numbers and strings (never pickled modules). It carries
the resolved config and provenance, so a checkpoint alone is enough to rebuild and sample the generator.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import torch

from clustergan.cache import atomic_write_bytes
from clustergan.errors import ClusterganError

_NAME = re.compile(r"^epoch_(\d+)\.pt$")


def save_checkpoint(path: Path, state: dict[str, Any]) -> Path:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(Path(path), buffer.getvalue())
    return Path(path)


def load_checkpoint(path: Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ClusterganError(f"{path}: checkpoint not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure is a bad file for the user
        raise ClusterganError(f"{path}: not a readable clustergan checkpoint ({type(e).__name__}: {e})") from None


def list_checkpoints(folder: Path) -> list[tuple[int, Path]]:
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = []
    for p in folder.iterdir():
        m = _NAME.match(p.name)
        if m:
            found.append((int(m.group(1)), p))
    return sorted(found)


def latest_checkpoint(folder: Path) -> Path | None:
    found = list_checkpoints(folder)
    return found[-1][1] if found else None


def prune_checkpoints(folder: Path, keep: int | None) -> list[Path]:
    """Delete all but the newest ``keep`` epoch checkpoints in ``folder`` (``None``: keep every one); returns
    what was deleted. Called after a save, so the newest is always one that was just written whole."""
    if keep is None:
        return []
    old = [p for _, p in list_checkpoints(folder)[:-keep]]
    for p in old:
        p.unlink(missing_ok=True)
    return old


def checkpoint_name(epoch: int) -> str:
    return f"epoch_{epoch:04d}.pt"
