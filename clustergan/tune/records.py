"""What a sweep's trial is given and what it leaves behind, typed: :class:`TrialSpec` (the description every
trial of a sweep gets from the driver) and :class:`TrialRecord` (``trials/<id>/trial.json``).

This module alone reads and writes ``trial.json`` (atomically, through :mod:`clustergan.jsonio`). A record is
strict: an unknown key, a wrong type or a missing field is a :class:`ClusterganError` naming the file and the
key. Parameters and Optuna's draws stay numbers (``int`` for integer parameters, ``float`` otherwise).

``schema_version`` says which layout a record has:

- 1: no ``schema_version`` key (every record written before the key existed);
- 2: ``schema_version: 2``; ``per_seed`` holds one object per finished seed, nothing else.

An older record is upgraded when it is read (:func:`upgrade`), so an old experiment folder or ledger still
reports, restores and resumes; ``python -m clustergan.tune.records --migrate DIR ...`` rewrites the records
under ``DIR`` at the current version (the committed ledgers in ``docs/sweeps`` are). A record of a newer
version than this clustergan knows is an error, never guessed at.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, PlainValidator, ValidationError, field_validator, model_validator

from clustergan.config import describe_error
from clustergan.errors import ClusterganError
from clustergan.jsonio import read_json, write_json
from clustergan.tune.sweep_config import OBJECTIVES, ParamSpace

SCHEMA_VERSION = 2
SPEC_VERSION = 1
#: Every metric a trial records per seed (the objectives first), in the order they are written.
METRICS = (*OBJECTIVES, "fid", "mode_coverage", "cond_gain")
RECORD = "trial.json"
_SCHEMA_FILE = "clustergan/tune/records.py"


def _number(value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{value!r} is not a number")
    return value


#: A parameter value: an int stays an int (``cluster.k``), a float a float.
Number = Annotated[int | float, PlainValidator(_number)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class TrialSpec(_Model):
    """What every trial of one sweep is given (``tune.with_parameters``); the trial's own parameters come from
    Tune's config (a baseline's or control's name, or Optuna's draws)."""

    schema_version: int = SPEC_VERSION
    name: str  # the experiment's name (the scratch folder of a trial on another node)
    base: dict[str, Any]  # the base training config, the sweep's overrides applied
    space: dict[str, ParamSpace]
    controls: dict[str, dict[str, Number]] = {}  # the sweep's hand-set configurations, by name
    seeds: list[int]
    protocol: str
    workers: int  # Ray Train workers per trial; 0 = train in the trial's own process
    cpus_per_worker: float
    gpus_per_worker: float
    report_every_s: float  # in-process training: the least time between two epoch reports to Tune
    storage: str  # the driver's local experiment folder
    cluster_dirs: dict[int, str]  # the driver's cluster statistics folder for every k >= 1
    remote: str | None = None  # the experiment's URI, when it is stored at one
    driver_node: str | None = None  # the Ray node of the driver (a trial there works in the driver's folder)
    adopt: dict[str, str] = {}  # fixed trial kind -> folder of seed<N>/ runs taken instead of trained (--adopt)

    @field_validator("schema_version")
    @classmethod
    def _version(cls, v: int) -> int:
        if v != SPEC_VERSION:
            raise ValueError(f"trial spec version {v}; this clustergan knows version {SPEC_VERSION}")
        return v


class SeedResult(_Model):
    """One seed of a trial, trained and evaluated."""

    ndb: float
    jsd: float
    lpips: float
    fid: float | None = None
    mode_coverage: float | None = None
    cond_gain: float | None = None
    sample_grid: str | None = None  # the run's last sample grid
    run_dir: str
    adopted_from: str | None = None  # the run folder its training came from (sweep --adopt), not trained here

    def metrics(self) -> dict[str, float]:
        return {m: v for m in METRICS if (v := getattr(self, m)) is not None}


class TrialRecord(_Model):
    """``trials/<id>/trial.json``: written when the trial starts, after each seed, and when it ends."""

    schema_version: int = SCHEMA_VERSION
    trial_id: str
    trial_name: str | None = None
    kind: str  # "search", "baseline:<name>" or "control:<name>"
    params: dict[str, Number]  # {dotted training config key: value}, "off" parameters at 0
    status: Literal["running", "finished", "failed"]
    seeds: list[int]
    started: float
    per_seed: dict[str, SeedResult] = {}  # by str(seed)
    sampled: dict[str, Number] | None = None  # a search trial's raw Optuna draws, "<key>:off" ones included
    train_config: dict[str, Any] | None = None  # the first seed's training config, as trained
    test_inputs: int | None = None
    metrics: dict[str, float] | None = None  # seed means, once finished
    finished: float | None = None
    sample_grid: str | None = None
    error: str | None = None
    traceback: str | None = None
    restored_from: str | None = None  # the ledger this record came from

    @field_validator("schema_version")
    @classmethod
    def _version(cls, v: int) -> int:
        if v != SCHEMA_VERSION:
            raise ValueError(
                f"version {v}; this clustergan reads and writes version {SCHEMA_VERSION} "
                f"(older ones through records.upgrade)"
            )
        return v

    @field_validator("kind")
    @classmethod
    def _kind(cls, v: str) -> str:
        fixed = any(v.startswith(p) and len(v) > len(p) for p in ("baseline:", "control:"))
        if v != "search" and not fixed:
            raise ValueError(f"kind {v!r}: expected 'search', 'baseline:<name>' or 'control:<name>'")
        return v

    @model_validator(mode="after")
    def _finished_has_objectives(self) -> TrialRecord:
        if self.status == "finished" and not all(m in (self.metrics or {}) for m in OBJECTIVES):
            raise ValueError(
                f"a finished trial's metrics need {', '.join(OBJECTIVES)} (got {sorted(self.metrics or {})})"
            )
        return self

    @property
    def is_search(self) -> bool:
        return self.kind == "search"

    def seed_means(self) -> dict[str, float]:
        """The metrics every seed has, averaged over the seeds (all of ``seeds`` must be done)."""
        results = [self.per_seed[str(s)].metrics() for s in self.seeds]
        return {m: sum(r[m] for r in results) / len(results) for m in METRICS if all(m in r for r in results)}

    def to_json(self) -> dict[str, Any]:
        """The record as written: fields that are None are left out (absent means None)."""
        data = self.model_dump(mode="python", exclude={"per_seed"})
        data = {k: v for k, v in data.items() if v is not None}
        data["per_seed"] = {
            s: {k: v for k, v in r.model_dump(mode="python").items() if v is not None} for s, r in self.per_seed.items()
        }
        order = list(type(self).model_fields)
        return dict(sorted(data.items(), key=lambda kv: order.index(kv[0])))


# ---------------------------------------------------------------------------------------------- versions


def _v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    per_seed = data.get("per_seed") or {}
    return {
        **data,
        "schema_version": 2,
        "per_seed": {k: v for k, v in per_seed.items() if isinstance(v, dict)}
        if isinstance(per_seed, dict)
        else per_seed,
    }


#: ``UPGRADES[v]`` turns a version-v record (a JSON object) into a version v+1 one.
UPGRADES = {1: _v1_to_v2}


def stored_version(data: dict[str, Any], source: str) -> int:
    version = data.get("schema_version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ClusterganError(f"{source}: schema_version {version!r} is not a record version (1, 2, ...)")
    if version > SCHEMA_VERSION:
        raise ClusterganError(
            f"{source}: trial record schema_version {version} is newer than this clustergan's "
            f"({SCHEMA_VERSION}); update clustergan to read it"
        )
    return version


def upgrade(data: dict[str, Any], source: str = "trial record") -> dict[str, Any]:
    """A record's JSON object at any known version -> the same record at :data:`SCHEMA_VERSION`."""
    for version in range(stored_version(data, source), SCHEMA_VERSION):
        data = UPGRADES[version](data)
    return data


def parse_record(data: Any, source: str = "trial record") -> TrialRecord:
    """A record's JSON object (any known version) -> :class:`TrialRecord`; a ClusterganError names each problem."""
    if not isinstance(data, dict):
        raise ClusterganError(f"{source}: a trial record is a JSON object, not {type(data).__name__}")
    try:
        return TrialRecord.model_validate(upgrade(data, source))
    except ValidationError as e:
        problems = "\n  ".join(describe_error(err, _SCHEMA_FILE) for err in e.errors())
        raise ClusterganError(f"{source}: invalid trial record:\n  {problems}") from None


# ------------------------------------------------------------------------------------------------- files


def record_path(exp: str | Path, trial_id: str) -> Path:
    return Path(exp) / "trials" / trial_id / RECORD


def read_record(path: str | Path) -> TrialRecord:
    """The record in ``path``; a missing, unreadable or invalid file is a ClusterganError naming it."""
    return parse_record(read_json(path), str(path))


def write_record(path: str | Path, record: TrialRecord) -> Path:
    """Check ``record`` (fields set since it was built included) and write it atomically."""
    data = record.to_json()
    parse_record(data, str(path))
    return write_json(path, data)


def experiment_records(exp: str | Path) -> list[TrialRecord]:
    """Every trial record of an experiment folder or ledger, by trial folder name (none when it has none)."""
    return [read_record(p) for p in sorted(Path(exp).glob(f"trials/*/{RECORD}"))]


def finished_records(exp: str | Path) -> list[TrialRecord]:
    return [r for r in experiment_records(exp) if r.status == "finished"]


def record_files(root: str | Path) -> list[Path]:
    """Every ``trials/*/trial.json`` under ``root`` (an experiment folder, a ledger, or a folder of them)."""
    root = Path(root)
    return sorted({*root.glob(f"trials/*/{RECORD}"), *root.glob(f"**/trials/*/{RECORD}")})


def migrate(root: str | Path, write: bool = True) -> list[Path]:
    """Rewrite at :data:`SCHEMA_VERSION` every record under ``root`` stored at an older version (each is
    validated; nothing is written unless all are valid); returns those paths (the ones to migrate, with
    ``write=False``)."""
    old: list[tuple[Path, TrialRecord]] = []
    for path in record_files(root):
        data = read_json(path)
        record = parse_record(data, str(path))
        if stored_version(data, str(path)) < SCHEMA_VERSION:
            old.append((path, record))
    for path, record in old if write else ():
        write_record(path, record)
    return [p for p, _ in old]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m clustergan.tune.records",
        description="Check the sweep trial records under each DIR; with --migrate, "
        f"rewrite older ones at schema version {SCHEMA_VERSION}.",
    )
    p.add_argument("dirs", nargs="+", metavar="DIR", help="experiment folder, ledger, or a folder of them")
    p.add_argument("--migrate", action="store_true", help="rewrite records of an older schema version")
    args = p.parse_args(argv)
    try:
        for root in args.dirs:
            files = record_files(root)
            old = migrate(root, write=args.migrate)
            verb = "migrated" if args.migrate else "to migrate (--migrate)"
            print(f"{root}: {len(files)} trial records valid; {len(old)} {verb} to schema version {SCHEMA_VERSION}")
    except ClusterganError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
