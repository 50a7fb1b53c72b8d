"""A sweep experiment kept at a URI (``s3://``, ``gs://``, ``abfs://``, ``hdfs://``, ``file://``): whatever
``pyarrow.fs`` opens, the same filesystems Ray's persistent storage uses.

Ray Tune writes its own state (``baselines/``, ``search/``) straight to the URI. Our files are written on a
local disk first and mirrored with ``pyarrow.fs.copy_files``:

- the driver keeps a local copy (default ``runs/sweeps/<name>``): the cluster statistics it computes, the
  Optuna database, ``sweep.yaml``, ``sweep_state.json`` and the report, pushed to the URI as they change;
- a trial works in the driver's copy when it runs on the driver's node, else in a node-local scratch folder
  (``<tmp>/clustergan-sweeps/<name>``) into which it pulls the cluster statistics it needs; it pushes its
  ``trials/<id>/`` folder (record, run folders, checkpoints) after each seed and when it ends;
- a resumed sweep (``--resume``, possibly on another machine) pulls the driver files and the trial records;
  a resumed trial on a node without its folder pulls it back, checkpoints included.

An object store writes each object whole, so a reader never sees half a file; a crash between two pushes
loses at most what the next push would have carried, and the local copy still has it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from clustergan.errors import ClusterganError

#: The driver's files, pushed after each trial and at the end (the report's files too, once written).
DRIVER_FILES = ("sweep.yaml", "sweep_state.json", "optuna.db")
REPORT_FILES = ("ranking.csv", "ranking.md", "pareto.png", "best_config.yaml")
#: Files below this size are uploaded on every push of their folder; larger ones only when they changed.
SMALL = 1 << 20


def is_uri(storage: Any) -> bool:
    return storage is not None and "://" in str(storage)


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
                "folder") from None
        self.root = self.root.rstrip("/")
        self._local = pafs.LocalFileSystem()

    def __reduce__(self):  # travels to the trials as its URI; each process opens its own filesystem
        return (Remote, (self.uri,))

    def path(self, rel: str = "") -> str:
        return f"{self.root}/{rel}" if rel else self.root

    def child_uri(self, rel: str) -> str:
        return f"{self.uri}/{rel}"

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
        there = {Path(i.path).relative_to(self.path(rel)).as_posix(): i
                 for i in self.fs.get_file_info(pafs.FileSelector(self.path(rel), recursive=True))
                 if i.type == pafs.FileType.File}
        sent = 0
        for file in sorted(p for p in local.rglob("*") if p.is_file()):
            sub = file.relative_to(local).as_posix()
            st, info = file.stat(), there.get(sub)
            if (info is not None and st.st_size >= SMALL and info.size == st.st_size and info.mtime_ns is not None
                    and info.mtime_ns >= st.st_mtime_ns):
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


# ------------------------------------------------------------------------------------------- the driver


def pull_experiment(remote: Remote, local: Path) -> int:
    """Driver side: the driver files and every trial's record and last sample grid, into ``local``; the
    records' paths are rewritten to the local copies. Returns the number of trial records pulled."""
    for name in DRIVER_FILES:
        if not (local / name).exists():
            remote.pull(name, local / name)
    n = 0
    for trial_id in remote.listdir("trials"):
        rel = f"trials/{trial_id}"
        dst = local / "trials" / trial_id
        if _finished_here(dst / "trial.json"):  # a finished record never changes: no download
            n += 1
            continue
        if not remote.pull(f"{rel}/trial.json", dst / "trial.json"):
            continue
        record = json.loads((dst / "trial.json").read_text())
        record = localise_record(record, dst, lambda sub, d=dst, r=rel: remote.pull(f"{r}/{sub}", d / sub))
        (dst / "trial.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
        n += 1
    return n


def _finished_here(path: Path) -> bool:
    try:
        return json.loads(path.read_text()).get("status") == "finished"
    except (OSError, ValueError):
        return False


def localise_record(record: dict[str, Any], trial_dir: Path, fetch=None) -> dict[str, Any]:
    """Point a trial record's ``sample_grid`` and ``run_dir`` paths (written on the trial's node, under some
    ``.../trials/<id>/``) at ``trial_dir``; ``fetch(sub)`` brings a grid file there first."""
    marker = f"/trials/{record.get('trial_id')}/"

    def relocate(value: Any, is_grid: bool) -> Any:
        if not isinstance(value, str) or marker not in value.replace("\\", "/"):
            return value
        sub = value.replace("\\", "/").split(marker, 1)[1]
        if is_grid and fetch is not None and not (trial_dir / sub).is_file():
            fetch(sub)
        return str(trial_dir / sub)

    record["sample_grid"] = relocate(record.get("sample_grid"), True)
    for seed in (record.get("per_seed") or {}).values():
        if isinstance(seed, dict):
            seed["sample_grid"] = relocate(seed.get("sample_grid"), True)
            seed["run_dir"] = relocate(seed.get("run_dir"), False)
    return record


def push_driver_files(remote: Remote, local: Path, report: bool = False) -> None:
    for name in DRIVER_FILES + (REPORT_FILES if report else ()):
        remote.push(local / name, name)


# ------------------------------------------------------------------------------------------ the trials


def scratch_root(name: str) -> Path:
    """Where a trial on a node other than the driver's keeps its experiment files."""
    return Path(tempfile.gettempdir()) / "clustergan-sweeps" / name


def trial_root(spec: dict[str, Any], node_id: str | None) -> Path:
    """The experiment folder a trial writes in: the driver's copy on the driver's node, else node scratch."""
    if spec.get("remote") is None or node_id == spec.get("driver_node"):
        return Path(spec["storage"])
    return scratch_root(spec["name"])


def cluster_dir(spec: dict[str, Any], k: int, root: Path) -> str:
    """The statistics folder for ``k``: the driver's own, or pulled from the URI into this node's scratch."""
    if spec.get("remote") is None or root == Path(spec["storage"]):
        return spec["cluster_dirs"][str(k)]
    from clustergan.clustering.stats import STATS_JSON, STATS_NPZ

    local = root / "clusters" / f"k{k}"
    if not ((local / STATS_NPZ).is_file() and (local / STATS_JSON).is_file()):
        # pulled beside it, then renamed: two trials on one node never read each other's half-copied files
        part = local.with_name(f".{local.name}.{os.getpid()}")
        if not Remote(spec["remote"]).pull(f"clusters/k{k}", part):
            raise ClusterganError(f"{spec['remote']}/clusters/k{k}: the driver's cluster statistics for k={k} are "
                                  "missing at the sweep's storage URI")
        try:
            part.rename(local)
        except OSError:  # another trial got there first
            shutil.rmtree(part, ignore_errors=True)
    return str(local)


def report_remote(uri: str, local: str | Path | None = None) -> tuple[Path, str]:
    """``clustergan report URI``: pull the records into the local copy, rank, push the report back."""
    from clustergan.tune.report import write_report
    from clustergan.tune.sweep import default_storage

    remote = Remote(uri, what="clustergan report")
    state = remote.read_json("sweep_state.json")
    if state is None:
        raise ClusterganError(f"{remote.uri}: no sweep_state.json there; is this the --storage of a sweep?")
    folder = Path(local or default_storage(state["name"])).expanduser().resolve()
    pull_experiment(remote, folder)
    (folder / "sweep_state.json").write_text(json.dumps(state, indent=2, default=str) + "\n")  # the latest
    table = write_report(folder)
    push_driver_files(remote, folder, report=True)
    return folder, table
