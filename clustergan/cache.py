"""One cache folder for features, cluster statistics and converted weights.

Default ``~/.cache/clustergan``; ``CLUSTERGAN_CACHE`` overrides it.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def cache_root() -> Path:
    root = os.environ.get("CLUSTERGAN_CACHE")
    path = Path(root).expanduser() if root else Path.home() / ".cache" / "clustergan"
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir(sub: str) -> Path:
    """A sub-folder of the cache root, created on demand (e.g. ``cache_dir("features")``)."""
    path = cache_root() / sub
    path.mkdir(parents=True, exist_ok=True)
    return path


def hash_key(*parts: object) -> str:
    """A short stable hex key from the string forms of ``parts``."""
    h = hashlib.sha256()
    for part in parts:
        h.update(repr(part).encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a crash never leaves a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_copy(src: Path, dst: Path) -> None:
    """Copy a small file (a record, a grid, a result file) to ``dst`` atomically: never a half-written copy."""
    atomic_write_bytes(dst, Path(src).read_bytes())
