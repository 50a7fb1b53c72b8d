"""A folder at a URI (``s3://``, ``gs://``, ``abfs://``, ``hdfs://``, ``file://``: whatever ``pyarrow.fs``
opens): push local files and folders to it, pull them back. :mod:`clustergan.tune.storage` builds an
experiment's storage on it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from clustergan.errors import ClusterganError

#: Files below this size are uploaded on every push of their folder; larger ones only when they changed.
SMALL = 1 << 20


class Remote:
    """The experiment folder at ``uri``: push local files and folders to it, pull them back."""

    def __init__(self, uri: str, what: str = "--storage"):
        import pyarrow
        import pyarrow.fs as pafs

        self.uri = str(uri).rstrip("/")
        try:
            self.fs, self.root = pafs.FileSystem.from_uri(self.uri)
        except (pyarrow.ArrowInvalid, OSError) as e:
            raise ClusterganError(
                f"{what} {uri}: pyarrow cannot open this URI ({e}). Use a scheme pyarrow.fs supports "
                "(s3://, gs://, abfs://, hdfs://, file://) with its credentials set, or a local or mounted "
                "folder"
            ) from None
        self.root = self.root.rstrip("/")
        self._local = pafs.LocalFileSystem()

    def __reduce__(self):  # travels to the trials as its URI; each process opens its own filesystem
        return (Remote, (self.uri,))

    def path(self, rel: str = "") -> str:
        return f"{self.root}/{rel}" if rel else self.root

    def exists(self, rel: str) -> bool:
        import pyarrow.fs as pafs

        return self.fs.get_file_info(self.path(rel)).type != pafs.FileType.NotFound

    def listdir(self, rel: str) -> list[str]:
        """Names directly under ``rel`` (empty when it does not exist)."""
        import pyarrow.fs as pafs

        if not self.exists(rel):
            return []
        infos = self.fs.get_file_info(pafs.FileSelector(self.path(rel), recursive=False))
        return sorted(Path(i.path).name for i in infos)

    def push(self, local: Path, rel: str) -> int:
        """Copy a local file or folder (recursively) to ``<uri>/<rel>``; a missing source is skipped.

        A folder is pushed incrementally: a file of at least ``SMALL`` bytes whose copy at the URI has the same
        size and is not older than the local file is not uploaded again (a trial pushes its folder after
        every seed, and its earlier checkpoints never change). Smaller files (records, JSON, grids) are always
        uploaded, so a rewrite of the same length is never missed on a clock skew. Returns files uploaded."""
        import pyarrow.fs as pafs

        local = Path(local)
        if not local.exists():
            return 0
        if not local.is_dir():
            self._put(local, rel)
            return 1
        self.fs.create_dir(self.path(rel), recursive=True)
        there = {
            Path(i.path).relative_to(self.path(rel)).as_posix(): i
            for i in self.fs.get_file_info(pafs.FileSelector(self.path(rel), recursive=True))
            if i.type == pafs.FileType.File
        }
        sent = 0
        for file in sorted(p for p in local.rglob("*") if p.is_file()):
            sub = file.relative_to(local).as_posix()
            st, info = file.stat(), there.get(sub)
            if (
                info is not None
                and st.st_size >= SMALL
                and info.size == st.st_size
                and info.mtime_ns is not None
                and info.mtime_ns >= st.st_mtime_ns
            ):
                continue
            self._put(file, f"{rel}/{sub}")
            sent += 1
        return sent

    def _put(self, file: Path, rel: str) -> None:
        """One local file to ``<uri>/<rel>``, its parent folder created."""
        import pyarrow.fs as pafs

        self.fs.create_dir(self.path(rel).rsplit("/", 1)[0], recursive=True)
        pafs.copy_files(str(file), self.path(rel), source_filesystem=self._local, destination_filesystem=self.fs)

    def pull(self, rel: str, local: Path) -> bool:
        """Copy ``<uri>/<rel>`` (a file or a folder) to ``local``; False when it is not there."""
        import pyarrow.fs as pafs

        info = self.fs.get_file_info(self.path(rel))
        if info.type == pafs.FileType.NotFound:
            return False
        local = Path(local)
        if info.type == pafs.FileType.Directory:
            local.mkdir(parents=True, exist_ok=True)
        else:
            local.parent.mkdir(parents=True, exist_ok=True)
        pafs.copy_files(self.path(rel), str(local), source_filesystem=self.fs, destination_filesystem=self._local)
        return True

    def read_json(self, rel: str) -> dict[str, Any] | None:
        if not self.exists(rel):
            return None
        with self.fs.open_input_stream(self.path(rel)) as f:
            return json.loads(f.read().decode())
