"""Every JSON file the project writes or reads back: one atomic writer and one reader.

A crash never leaves a half-written file (:func:`write_json` writes a temporary file and renames it), and a
file that exists but is not JSON is an error that names it, never taken for an absent one. Only plain JSON
goes through here (no pickles).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from clustergan.cache import atomic_write_bytes
from clustergan.errors import ClusterganError

_ABSENT = object()


def write_json(path: str | Path, data: Any, indent: int = 2, sort_keys: bool = False) -> Path:
    """Write ``data`` as JSON (non-JSON values by their ``str``) with a final newline, atomically."""
    path = Path(path)
    text = json.dumps(data, indent=indent, sort_keys=sort_keys, default=str)
    atomic_write_bytes(path, (text + "\n").encode())
    return path


def read_json(path: str | Path, default: Any = _ABSENT) -> Any:
    """The JSON in ``path``; ``default`` when the file does not exist (if given, else an error). A file that
    exists but cannot be read or parsed is always a :class:`ClusterganError` naming it."""
    path = Path(path)
    if not path.is_file():
        if default is not _ABSENT:
            return default
        raise ClusterganError(f"{path}: file not found")
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ClusterganError(f"{path}: not readable JSON ({e}); delete or restore it") from None
