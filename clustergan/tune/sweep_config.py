"""The sweep YAML: its own strict schema, like the training configs.

Example (``sweeps/debug_sweep.yaml``)::

    note: "smoke scale: ..."         # optional, shown at the top of the ranking
    base: debug.yaml                 # training config, relative to this file
    overrides: {train.epochs: 1}     # dotted keys applied to the base for every trial
    space:
      cluster.k: {type: int, low: 2, high: 4, zero_allowed: 0.2}     # 0 = no clusters, with probability 0.2
      loss.lambda_ms: {type: loguniform, low: 0.1, high: 10}
    num_trials: 2                    # search trials (the baselines come on top)
    seeds: [0]                       # each configuration is trained once per seed; metrics are averaged
    workers: 0                       # Ray Train workers per trial; 0 = train inside the trial process

``zero_allowed`` is the prior probability that a parameter is exactly 0, which means "off" (no clusters, no
mode-seeking loss). Optuna samples it through an auxiliary uniform ``<key>:off`` in [0, 1): the parameter is
0 when that draw is below ``zero_allowed``, so TPE can learn whether "off" pays.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from clustergan.config import _resolve_extends, describe_error, read_yaml, validate
from clustergan.errors import ConfigError
from clustergan.scores import LOWER_IS_BETTER

OBJECTIVES = ("ndb", "jsd", "lpips")
MODES = tuple("min" if LOWER_IS_BETTER[k] else "max" for k in OBJECTIVES)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ParamSpace(_Strict):
    type: Literal["int", "float", "loguniform"]
    low: float
    high: float
    zero_allowed: float = Field(0.0, ge=0.0, lt=1.0)

    @model_validator(mode="after")
    def _range(self) -> ParamSpace:
        if self.high < self.low:
            raise ValueError(f"high={self.high} must be >= low={self.low}")
        if self.type == "loguniform" and self.low <= 0:
            raise ValueError(f"a loguniform range needs low > 0 (got {self.low}); use zero_allowed for 'off'")
        if self.type == "int" and (self.low != int(self.low) or self.high != int(self.high)):
            raise ValueError(f"an int range needs integer bounds (got {self.low}, {self.high})")
        return self


class SchedulerConfig(_Strict):
    type: Literal["asha"] = "asha"
    metric: str = "G_l1"  # must be reported every epoch (a training loss), ASHA needs intermediate values
    mode: Literal["min", "max"] = "min"
    grace_period: int = Field(1, ge=1)  # epochs before a trial may be stopped
    reduction_factor: float = Field(2.0, gt=1.0)


class RaceConfig(_Strict):
    """The ``race:`` section: how ``clustergan race`` gives an explored experiment's candidates more seeds
    (:mod:`clustergan.tune.race`; the decision rule: :mod:`clustergan.tune.race_rule`)."""

    schedule: list[int] = [2, 4, 8]  # seeds per entrant after each round, increasing
    seeds: list[int] | None = None  # the seeds, in the order they are added; default 0 .. schedule[-1] - 1
    alpha: float = Field(0.05, gt=0.0, lt=1.0)  # the race's false-drop rate, shared by its rounds
    test: Literal["t", "wilcoxon"] = "t"  # paired t-test, or the exact Wilcoxon signed-rank test
    # a difference within the margin is no difference (NDB is an integer with many ties)
    margins: dict[str, float] = {"ndb": 1.0, "jsd": 0.01, "lpips": 0.01}
    max_candidates: int = Field(6, ge=1)  # searched trials entering (the baselines and controls come on top)
    near_front: bool = True  # also trials within the margins of the Pareto front, not only the front
    max_runs: int | None = Field(None, ge=1)  # budget: new training runs this race may start
    time_limit_s: float | None = Field(None, gt=0.0)  # budget: no new run starts after this
    # 1: runs train one at a time in the driver's process; N > 1: a round's runs as Ray tasks, N at a time
    concurrent: int = Field(1, ge=1)
    cpus_per_run: float = Field(1.0, gt=0.0)  # what each such task asks Ray for
    # hand-set configurations entering as controls besides the experiment's own, by their overrides of the
    # sweep's base config (e.g. {clustergan: {cluster.k: 8, loss.lambda_ms: 0.1}})
    controls: dict[str, dict[str, Any]] = {}
    # a candidate whose mean cond_gain is significantly below it drops (it ignores its input), tested in each
    # round's Holm family (clustergan.tune.race_rule); unset: the sweep's cond_gain_floor; null = objectives only
    cond_gain_floor: float | None = None

    @model_validator(mode="after")
    def _check(self) -> RaceConfig:
        if (
            not self.schedule
            or any(b <= a for a, b in zip(self.schedule, self.schedule[1:], strict=False))
            or self.schedule[0] < 2
        ):
            raise ValueError(f"schedule {self.schedule}: give increasing seed counts from 2, e.g. [2, 4, 8]")
        if self.seeds is not None and (len(self.seeds) < self.schedule[-1] or len(set(self.seeds)) != len(self.seeds)):
            raise ValueError(f"seeds {self.seeds}: give {self.schedule[-1]} distinct seeds (the schedule's last count)")
        if set(self.margins) != set(OBJECTIVES) or any(v < 0 for v in self.margins.values()):
            raise ValueError(f"margins {self.margins}: give a margin >= 0 for each of {list(OBJECTIVES)}")
        return self

    def seed_list(self) -> list[int]:
        return list(self.seeds[: self.schedule[-1]]) if self.seeds is not None else list(range(self.schedule[-1]))


class SweepConfig(_Strict):
    name: str = "sweep"
    note: str | None = None  # shown at the top of the ranking, e.g. the scale a reader must know about
    base: str  # training config YAML; relative paths are relative to the sweep file
    overrides: dict[str, Any] = {}
    space: dict[str, ParamSpace] = {}
    num_trials: int = Field(8, ge=0)
    seeds: list[int] = [0]
    workers: int = Field(0, ge=0)  # Ray Train workers per trial; 0 = in the trial's own process
    cpus_per_worker: float = Field(1.0, gt=0.0)
    gpus_per_worker: float = Field(0.0, ge=0.0)
    max_concurrent: int = Field(1, ge=1)
    time_limit_s: float | None = Field(None, gt=0.0)
    trial_time_limit_s: float | None = Field(None, gt=0.0)
    protocol: str = "sweep"
    fid_ceiling: float | None = Field(None, gt=0.0)
    # trials whose conditional gain (clustergan.metrics.conditioning) is below it ignore their input: ranked apart
    cond_gain_floor: float | None = None
    scheduler: SchedulerConfig | None = None
    baselines: bool = True
    # hand-set configurations trained beside the baselines, ranked with every trial, never searched:
    # {name: {dotted training config key: value}}, e.g. {clustergan: {cluster.k: 4, loss.lambda_ms: 0.1}}
    controls: dict[str, dict[str, int | float]] = {}
    optuna_seed: int = 0
    race: RaceConfig | None = None  # `clustergan race`: more seeds for the front (defaults when absent)

    @model_validator(mode="after")
    def _check(self) -> SweepConfig:
        if not self.seeds:
            raise ValueError("seeds must list at least one seed, e.g. [0]")
        if "seed" in self.space:
            raise ValueError("`seed` cannot be searched: list the seeds under `seeds`")
        for name in self.controls:
            if not name or not name.replace("_", "").replace("-", "").isalnum():
                raise ValueError(f"control name {name!r}: use letters, digits, '_' or '-'")
        if self.workers > 1 and 0.0 < self.gpus_per_worker < 1.0:
            raise ValueError(
                f"gpus_per_worker {self.gpus_per_worker:g} with workers {self.workers}: DDP over NCCL "
                "needs a whole GPU per worker; use gpus_per_worker 1, or workers 1 (trials may share a "
                "GPU then)"
            )
        if self.race is not None and "cond_gain_floor" not in self.race.model_fields_set:
            # the floor a trial had to pass to enter; a copy, so the caller's RaceConfig is left as given
            self.race = self.race.model_copy(update={"cond_gain_floor": self.cond_gain_floor})
        return self


def with_values(data: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """A copy of the config dict ``data`` with ``{dotted key: value}`` set; the values go in as they are (typed,
    no YAML text in between). ``{"loss.lambda_ms": 1.0}`` sets ``data["loss"]["lambda_ms"] = 1.0``."""
    out = copy.deepcopy(data)
    for key, value in values.items():
        parts = key.split(".")
        if not all(parts):
            raise ConfigError(f"`{key}`: empty key")
        node = out
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"`{key}`: `{part}` is not a section")
            node = child
        node[parts[-1]] = copy.deepcopy(value)
    return out


def representative(space: ParamSpace) -> float | int:
    """A value inside the range (used to check that a key exists in the training config)."""
    return int(space.low) if space.type == "int" else float(space.low)


def load_sweep(path: str | Path) -> tuple[SweepConfig, dict[str, Any]]:
    """Read and check a sweep YAML. Returns the sweep config and the base training config as a plain dict
    (``extends`` resolved, the sweep's ``overrides`` applied, not yet validated: trials add their values)."""
    path = Path(path)
    data = read_yaml(path, what="sweep file", example="sweeps/debug_sweep.yaml")
    data.setdefault("name", path.stem)
    try:
        sweep = SweepConfig.model_validate(data)
    except ValidationError as e:
        problems = "\n  ".join(describe_error(err, "clustergan/tune/sweep_config.py") for err in e.errors())
        raise ConfigError(f"{path}: invalid sweep config:\n  {problems}") from None
    base_path = (path.parent / sweep.base).resolve()
    base = _resolve_extends(base_path)
    base.setdefault("name", base_path.stem)
    try:
        base = with_values(base, sweep.overrides)
    except ConfigError as e:
        raise ConfigError(f"{path}: overrides: {e}") from None
    # trials run in Tune's own working folders (and perhaps on other nodes): resolve relative paths here,
    # against the directory the sweep was started from, as `clustergan train` does
    for dotted in ("data.root", "cluster.stats_dir", "encoder.weights"):
        section, leaf = dotted.split(".")
        value = (base.get(section) or {}).get(leaf)
        if isinstance(value, str) and value != "random" and "://" not in value:
            base[section][leaf] = str(Path(value).expanduser().resolve())
    # every searched key must exist in the training config, and the base must be valid on its own
    validate(base, source=f"{path}: base {sweep.base} with overrides")
    for key, space in sweep.space.items():
        try:
            validate(with_values(base, {key: representative(space)}), source=f"{path}: space key `{key}`")
        except ConfigError as e:
            if "unknown key" in str(e) or "is not a section" in str(e):
                raise ConfigError(
                    f"{path}: space key `{key}` is not a training config key (dotted, e.g. loss.lambda_ms)"
                ) from None
            # other failures (e.g. lambda_kl1 > 0 needs clusters) depend on the other sampled values
    for name, values in sweep.controls.items():
        try:
            validate(with_values(base, values), source=f"{path}: controls.{name}")
        except ConfigError as e:
            raise ConfigError(f"{e}\n  (each control is {{dotted training config key: value}} over the base)") from None
    from clustergan.metrics import get_protocol

    get_protocol(sweep.protocol)  # raises ConfigError naming the allowed protocols
    return sweep, base
