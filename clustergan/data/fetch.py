"""Download a public paired dataset in the pix2pix layout (``clustergan data fetch facades --out DIR``).

The archive is downloaded to a temporary folder beside ``out``, checked for truncation, extracted with
tarfile's ``"data"`` filter (no absolute paths, no ``..``, no links leaving the folder), and its split
sizes are compared with :data:`DATASETS`. Only a complete, verified dataset is moved to ``out``; on any
failure the temporary folder is removed and ``out`` is left as it was.
"""

from __future__ import annotations

import http.client
import os
import shutil
import tarfile
import urllib.error
import urllib.request
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from clustergan.data.paired import IMAGE_EXTENSIONS
from clustergan.errors import DataError


@dataclass(frozen=True)
class DatasetSource:
    """Where a dataset comes from and how many images each split must hold."""

    url: str
    split_counts: dict[str, int] = field(default_factory=dict)


DATASETS: dict[str, DatasetSource] = {
    # The official pix2pix archive: facades/{train,val,test}/N.jpg, 512x256, photo | label map.
    "facades": DatasetSource(
        url="http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/facades.tar.gz",
        split_counts={"train": 400, "val": 100, "test": 106},
    ),
}


def count_images(folder: Path) -> int:
    """Number of visible .jpg/.jpeg/.png files directly in ``folder`` (0 if it does not exist)."""
    if not folder.is_dir():
        return 0
    return sum(
        1
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS
    )


def split_problems(root: Path, split_counts: Mapping[str, int]) -> list[str]:
    """What differs between ``root``'s splits and the expected image counts (empty when all match)."""
    problems = []
    for split, expected in split_counts.items():
        found = count_images(root / split)
        if found != expected:
            problems.append(f"split {split!r} holds {found} images, expected {expected}")
    return problems


def download(url: str, dest: Path, timeout: float, desc: str) -> int:
    """Stream ``url`` into ``dest`` with a progress bar; returns the byte count.

    Raises :class:`DataError` if the connection fails or ends before ``Content-Length`` bytes arrived.
    """
    received = 0
    total = None
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(dest, "wb") as f:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            with tqdm(total=total, unit="B", unit_scale=True, desc=desc, mininterval=0.5) as bar:
                while chunk := response.read(1 << 20):
                    f.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
    except http.client.IncompleteRead as err:
        received += len(err.partial)
    except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
        raise DataError(
            f"download of {url} failed ({err}): check the network and retry, or download the archive "
            f"yourself and pass its location as --url file:///path/to/archive.tar.gz"
        ) from err
    if total is not None and received < total:
        raise DataError(f"download of {url} was truncated: received {received} of {total} bytes; retry the download")
    return received


def _dataset_root(extracted: Path, split_counts: Mapping[str, int], url: str) -> Path:
    """The folder holding the splits: the extraction folder itself or its single top-level folder."""
    if any((extracted / split).is_dir() for split in split_counts):
        return extracted
    entries = [p for p in extracted.iterdir() if not p.name.startswith(".")]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    raise DataError(
        f"the archive from {url} does not hold the splits {', '.join(split_counts)} "
        f"(at its top level or in one top-level folder): check the URL"
    )


def fetch_dataset(
    name: str,
    out: str | Path,
    url: str | None = None,
    expected_counts: Mapping[str, int] | None = None,
    timeout: float = 60.0,
) -> Path:
    """Download dataset ``name`` into ``out`` (then holding ``train/``, ``test/``, ...); returns ``out``.

    Args:
        name: a key of :data:`DATASETS` (``"facades"``).
        out: the dataset folder to create; it must not exist or be empty. If it already holds a
            complete copy (split counts match), nothing is downloaded.
        url: another location of the same archive (a mirror, or ``file:///...`` for a local copy).
        expected_counts: images per split to verify, overriding the table (tests use tiny archives).
        timeout: seconds to wait on the network before giving up.

    Prints a one-line summary.
    """
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}: known datasets are {', '.join(sorted(DATASETS))}")
    source = DATASETS[name]
    url = url or source.url
    split_counts = dict(expected_counts if expected_counts is not None else source.split_counts)
    out = Path(out)
    summary = ", ".join(f"{split} {n}" for split, n in split_counts.items())

    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        problems = split_problems(out, split_counts)
        if problems:
            raise DataError(
                f"{out} already exists and is not a complete copy of {name} ({'; '.join(problems)}): "
                f"delete it or choose another output folder"
            )
        print(f"{name} already present in {out} ({summary} images)")
        return out

    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        archive = tmp / "archive"
        download(url, archive, timeout, desc=f"download {name}")
        extracted = tmp / "extracted"
        try:
            with tarfile.open(archive, "r:*") as tar:
                tar.extractall(extracted, filter="data")
        except tarfile.FilterError as err:
            raise DataError(f"the archive from {url} has an unsafe member ({err}): refusing to extract it") from err
        except (tarfile.TarError, EOFError, zlib.error, OSError) as err:
            raise DataError(f"the archive from {url} is truncated or corrupt ({err}): retry the download") from err
        root = _dataset_root(extracted, split_counts, url)
        problems = split_problems(root, split_counts)
        if problems:
            raise DataError(
                f"the archive from {url} is not a complete copy of {name} ({'; '.join(problems)}): "
                f"retry the download, or check the URL"
            )
        if out.exists():
            out.rmdir()  # empty, checked above
        os.replace(root, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"fetched {name}: {summary} images -> {out}")
    return out
