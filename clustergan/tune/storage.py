"""Where a sweep experiment lives: a local folder (:class:`Storage`), or a URI with local copies
(:class:`MirroredStorage`): ``s3://``, ``gs://``, ``abfs://``, ``hdfs://``, ``file://``, whatever ``pyarrow.fs``
opens, the same filesystems Ray's persistent storage uses. The driver and the trials talk to one interface;
for a local folder, mirroring does nothing.

At a URI, Ray Tune writes its own state (``baselines/``, ``search/``) straight there. Our files are written on
a local disk first and mirrored with ``pyarrow.fs.copy_files``:

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

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from clustergan.errors import ClusterganError
from clustergan.jsonio import read_json
from clustergan.tune.records import RECORD, TrialRecord, TrialSpec, read_record, record_path, write_record
from clustergan.tune.remote_fs import Remote

#: The driver's files, pushed after each trial and at the end (the report's files too, once written).
OPTUNA_DB = "optuna.db"
DRIVER_FILES = ("sweep.yaml", "sweep_state.json", OPTUNA_DB)
REPORT_FILES = ("ranking.csv", "ranking.md", "pareto.png", "best_config.yaml", "report.html", "hparams")
STATE = "sweep_state.json"


def is_uri(storage: Any) -> bool:
    return storage is not None and "://" in str(storage)


def default_storage(name: str) -> Path:
    return Path("runs") / "sweeps" / name


def scratch_root(name: str) -> Path:
    """Where a trial on a node other than the driver's keeps its experiment files."""
    return Path(tempfile.gettempdir()) / "clustergan-sweeps" / name


class Storage:
    """An experiment folder on this machine: Ray Tune and the trials write there, nothing is mirrored."""

    uri: str | None = None

    def __init__(self, local: str | Path):
        self.local = Path(local)

    @property
    def tune_root(self) -> str:
        """Where Ray Tune keeps its experiments (a folder or the URI)."""
        return str(self.local)

    def is_fresh(self) -> bool:
        """No sweep has run here yet (no Optuna study, no Tune experiment)."""
        return not any((self.local / name).exists() for name in ("optuna.db", "search", "baselines"))

    def push(self, rel: str) -> None:
        """Mirror ``<local>/<rel>`` (a file or a folder) to the URI."""

    def pull(self, rel: str) -> bool:
        """Bring ``<uri>/<rel>`` into ``<local>/<rel>``; False when there is nothing to bring."""
        return False

    def push_driver_files(self, report: bool = False) -> None:
        """The driver's files (and with ``report`` the report's) to the URI."""

    def pull_records(self) -> int:
        """The driver files and every trial record (and sample grid) into the local copy; returns the records."""
        return len(list(self.local.glob(f"trials/*/{RECORD}")))

    def driver_callbacks(self) -> list | None:
        """Tune callbacks the driver needs for this storage."""
        return None


class MirroredStorage(Storage):
    """An experiment at ``uri``, with ``local`` as this process's working copy (the driver's copy, or a
    trial's node scratch)."""

    def __init__(self, local: str | Path, uri: str, what: str = "--storage"):
        super().__init__(local)
        self.remote = Remote(uri, what=what)
        self.uri = self.remote.uri

    @property
    def tune_root(self) -> str:
        return self.remote.uri

    def is_fresh(self) -> bool:
        return super().is_fresh() and not self.remote.exists(STATE)

    def push(self, rel: str) -> None:
        self.remote.push(self.local / rel, rel)

    def pull(self, rel: str) -> bool:
        return self.remote.pull(rel, self.local / rel)

    def push_driver_files(self, report: bool = False) -> None:
        for name in DRIVER_FILES + (REPORT_FILES if report else ()):
            self.push(name)

    def pull_records(self) -> int:
        """The records' paths are rewritten to the local copies (:func:`localise_record`)."""
        for name in DRIVER_FILES:
            if not (self.local / name).exists():
                self.pull(name)
        n = 0
        for trial_id in self.remote.listdir("trials"):
            rel, path = f"trials/{trial_id}", record_path(self.local, trial_id)
            if _finished_here(path):  # a finished record never changes: no download
                n += 1
                continue
            if not self.pull(f"{rel}/{RECORD}"):
                continue
            record = localise_record(read_record(path), path.parent, lambda sub, r=rel: self.pull(f"{r}/{sub}"))
            write_record(path, record)
            n += 1
        return n

    def driver_callbacks(self) -> list | None:
        from ray import tune

        storage = self

        class MirrorDriverFiles(tune.Callback):
            """Push the driver's files (the Optuna database above all) to the URI after each trial, so that a
            sweep resumed on another machine loses no finished trial's draw."""

            def on_trial_complete(self, iteration, trials, trial, **info):
                storage.push_driver_files()

            on_trial_error = on_trial_complete

        return [MirrorDriverFiles()]


def _finished_here(path: Path) -> bool:
    try:
        return read_record(path).status == "finished"
    except ClusterganError:  # absent or damaged: pulled again
        return False


def localise_record(record: TrialRecord, trial_dir: Path, fetch=None) -> TrialRecord:
    """Point a trial record's ``sample_grid`` and ``run_dir`` paths (written on the trial's node, under some
    ``.../trials/<id>/``) at ``trial_dir``; ``fetch(sub)`` brings a grid file there first."""
    marker = f"/trials/{record.trial_id}/"

    def relocate(value: str | None, is_grid: bool) -> str | None:
        if value is None or marker not in value.replace("\\", "/"):
            return value
        sub = value.replace("\\", "/").split(marker, 1)[1]
        if is_grid and fetch is not None and not (trial_dir / sub).is_file():
            fetch(sub)
        return str(trial_dir / sub)

    record = record.model_copy(deep=True)
    record.sample_grid = relocate(record.sample_grid, True)
    for seed in record.per_seed.values():
        seed.sample_grid = relocate(seed.sample_grid, True)
        seed.run_dir = relocate(seed.run_dir, False) or seed.run_dir
    return record


# ------------------------------------------------------------------------------------------- the driver


def open_experiment(storage: str | Path | None, local: str | Path | None, name: str, resume: bool) -> Storage:
    """The driver's storage for ``--storage`` and ``--local``; a resumed sweep at a URI pulls the driver files
    and trial records into the local copy first."""
    if not is_uri(storage):
        if local is not None:
            raise ClusterganError(
                f"--local {local}: the driver's local copy is for a sweep stored at a URI; with "
                f"--storage {storage or default_storage(name)} the experiment is already local"
            )
        return Storage(Path(storage or default_storage(name)).expanduser().resolve())
    store = MirroredStorage(Path(local or default_storage(name)).expanduser().resolve(), str(storage))
    owner = read_json(store.local / STATE, {"remote": store.uri}).get("remote")
    if owner != store.uri:
        raise ClusterganError(
            f"{store.local} holds the local copy of another sweep (sweep_state.json: remote "
            f"{owner}); give this one its own --local folder"
        )
    if store.remote.exists(STATE):
        if not resume:
            raise ClusterganError(
                f"{store.uri}: this sweep already ran here; pass --resume to continue it "
                "(finished trials are kept) or choose another --storage"
            )
        n = store.pull_records()
        print(f"{store.uri}: {n} trial records pulled into {store.local}", flush=True)
    return store


def open_uri_report(uri: str, local: str | Path | None) -> tuple[MirroredStorage, dict[str, Any]]:
    """``clustergan report URI``: the experiment at ``uri`` with its latest state, records pulled locally."""
    remote = Remote(uri, what="clustergan report")
    state = remote.read_json(STATE)
    if state is None:
        raise ClusterganError(f"{remote.uri}: no sweep_state.json there; is this the --storage of a sweep?")
    store = MirroredStorage(
        Path(local or default_storage(state["name"])).expanduser().resolve(), uri, what="clustergan report"
    )
    store.pull_records()
    return store, state


# ------------------------------------------------------------------------------------------ the trials


def trial_storage(spec: TrialSpec, node_id: str | None) -> Storage:
    """The experiment folder a trial writes in: the driver's copy on the driver's node (or without a URI),
    else this node's scratch folder, mirrored to the URI."""
    if spec.remote is None:
        return Storage(spec.storage)
    root = Path(spec.storage) if node_id == spec.driver_node else scratch_root(spec.name)
    return MirroredStorage(root, spec.remote)


def cluster_dir(spec: TrialSpec, k: int, store: Storage) -> str:
    """The statistics folder for ``k``: the driver's own, or pulled from the URI into this node's scratch."""
    if not isinstance(store, MirroredStorage) or store.local == Path(spec.storage):
        return spec.cluster_dirs[k]
    from clustergan.clustering.stats import STATS_JSON, STATS_NPZ

    local = store.local / "clusters" / f"k{k}"
    if not ((local / STATS_NPZ).is_file() and (local / STATS_JSON).is_file()):
        # pulled beside it, then renamed: two trials on one node never read each other's half-copied files
        part = local.with_name(f".{local.name}.{os.getpid()}")
        if not store.remote.pull(f"clusters/k{k}", part):
            raise ClusterganError(
                f"{store.uri}/clusters/k{k}: the driver's cluster statistics for k={k} are "
                "missing at the sweep's storage URI"
            )
        try:
            part.rename(local)
        except OSError:  # another trial got there first
            shutil.rmtree(part, ignore_errors=True)
    return str(local)
