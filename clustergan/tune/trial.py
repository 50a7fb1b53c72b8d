"""What runs inside one Ray Tune trial (:func:`run_trial`): train the trial's configuration once per seed
(in the trial's own process, or on Ray Train workers), evaluate each run, record everything in
``trials/<id>/trial.json`` and report the seed means to Tune (Optuna's objectives) with the last checkpoint.
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import torch

from clustergan.config import TrainConfig
from clustergan.errors import TrainingDiverged
from clustergan.train.checkpoint import latest_checkpoint
from clustergan.train.dist import LocalContext
from clustergan.train.evaluate import evaluate_run
from clustergan.train.launch import run_training
from clustergan.tune.records import METRICS, SeedResult, TrialRecord, TrialSpec, read_record, write_record
from clustergan.tune.space import build_trial_config, fixed_kind, fixed_params, optuna_draws, trial_params
from clustergan.tune.storage import Storage, cluster_dir, trial_storage
from clustergan.tune.sweep_adopt import take


class TuneLocalContext(LocalContext):
    """In-process training inside a trial (workers: 0): epoch losses go to Tune, every epoch when a scheduler
    needs them, else at most every ``every_s`` seconds (each report waits for the driver, ~0.1 s: with short
    epochs, reporting all of them cost ~15 % of the trial time)."""

    def __init__(self, resume_from: Path | None, every_s: float):
        super().__init__(resume_from=resume_from, device="cpu")
        self.every_s = every_s
        self.last = 0.0

    def report(self, metrics: dict[str, Any], checkpoint_path: Path | None = None) -> None:
        from ray import tune

        now = time.monotonic()
        if now - self.last >= self.every_s:
            self.last = now
            tune.report({k: v for k, v in metrics.items() if isinstance(v, (int, float))})


def _train_one(config: TrainConfig, spec: TrialSpec, store: Storage, run_name: str) -> TrainConfig:
    """Train one seed (a resumed sweep continues the seed's run from its last checkpoint)."""
    from ray.tune.integration.ray_train import TuneReportCallback

    resume = latest_checkpoint(config.run_dir / "checkpoints") is not None
    return run_training(
        config,
        workers=spec.workers,
        gpu=spec.gpus_per_worker > 0,
        resume=resume,
        storage_path=f"{store.tune_root.rstrip('/')}/ray_train",
        name=run_name,
        cpus_per_worker=spec.cpus_per_worker,
        gpus_per_worker=spec.gpus_per_worker or None,
        callbacks=[TuneReportCallback()],
        max_failures=1,
        local_context=lambda resume: TuneLocalContext(resume, spec.report_every_s),
    )


def _report_final(record: TrialRecord, info_path: Path) -> None:
    """The trial's one report with the objectives (seed means), with its last checkpoint and record."""
    from ray import tune

    run_dir = Path(record.per_seed[str(record.seeds[0])].run_dir)
    with tempfile.TemporaryDirectory(prefix="clustergan-trial-") as tmp:
        last = latest_checkpoint(run_dir / "checkpoints")
        if last is not None:
            shutil.copy2(last, Path(tmp) / last.name)
        shutil.copy2(info_path, Path(tmp) / "trial.json")
        tune.report({**(record.metrics or {}), "trial_finished": 1}, checkpoint=tune.Checkpoint.from_directory(tmp))


def new_record(tune_config: dict[str, Any], spec: TrialSpec, trial_id: str, trial_name: str | None) -> TrialRecord:
    """The record a trial starts with: a fixed trial (Tune config ``{"baseline": name}``, a baseline's name or
    ``control:<name>``) or a search trial (Tune config: Optuna's draws)."""
    if "baseline" in tune_config:  # a fixed trial: a baseline, or a control ("control:<name>")
        kind = fixed_kind(tune_config["baseline"])
        return TrialRecord(
            trial_id=trial_id,
            trial_name=trial_name,
            kind=kind,
            params=fixed_params(kind, spec.controls, spec.base),
            status="running",
            seeds=spec.seeds,
            started=time.time(),
        )
    return TrialRecord(
        trial_id=trial_id,
        trial_name=trial_name,
        kind="search",
        params=trial_params(spec.space, tune_config),
        status="running",
        seeds=spec.seeds,
        started=time.time(),
        sampled=optuna_draws(tune_config),
    )


def _train_and_evaluate(record: TrialRecord, spec: TrialSpec, store: Storage, seed: int) -> SeedResult:
    trial_dir = store.local / "trials" / record.trial_id
    config = build_trial_config(spec.base, record.params, seed, trial_dir / f"seed{seed}")
    if seed == spec.seeds[0]:
        record.train_config = config.to_dict()
    if config.cluster.k:
        config.cluster.stats_dir = cluster_dir(spec, config.cluster.k, store)
    adopted = take(spec.adopt, record.kind, config)
    if adopted:
        print(f"trial {record.trial_id} ({record.kind}) seed {seed}: adopted from {adopted}, evaluating", flush=True)
    config = _train_one(config, spec, store, run_name=f"{record.trial_id}-seed{seed}")
    result = evaluate_run(config.run_dir, protocol=spec.protocol, seed=seed, out=config.run_dir / "metrics.json")
    values = {m: float(result[m]) for m in METRICS if m in result}
    bad = [m for m, v in values.items() if not math.isfinite(v)]
    if bad:
        raise TrainingDiverged(f"trial {record.trial_id} seed {seed}: metric(s) {', '.join(bad)} are NaN/Inf")
    grids = sorted((config.run_dir / "samples").glob("*.png"))
    if record.test_inputs is None:
        record.test_inputs = result.get("details", {}).get("lpips", {}).get("inputs")
    return SeedResult(
        **values, sample_grid=str(grids[-1]) if grids else None, run_dir=str(config.run_dir), adopted_from=adopted
    )


def run_trial(tune_config: dict[str, Any], spec: TrialSpec) -> None:
    """One Tune trial: train the configuration once per seed, evaluate each, report the seed means."""
    import ray
    from ray import tune

    torch.set_num_threads(max(1, int(spec.cpus_per_worker)))
    ctx = tune.get_context()
    trial_id = ctx.get_trial_id()
    store = trial_storage(spec, ray.get_runtime_context().get_node_id() if spec.remote else None)
    rel = f"trials/{trial_id}"
    info_path = store.local / rel / "trial.json"
    if not info_path.is_file():
        store.pull(rel)  # a resumed trial on a node without its folder
    info_path.parent.mkdir(parents=True, exist_ok=True)
    record = new_record(tune_config, spec, trial_id, ctx.get_trial_name())
    if info_path.is_file():  # a resumed trial keeps the seeds it already finished
        old = read_record(info_path)
        if old.status == "finished":
            # finished before the driver died, but Tune had not recorded it: report it again, train nothing
            store.push(rel)
            _report_final(old, info_path)
            return
        record.per_seed, record.started = old.per_seed, old.started
        record.train_config, record.test_inputs = old.train_config, old.test_inputs  # the first seed's, if done
    write_record(info_path, record)
    try:
        for seed in spec.seeds:
            if str(seed) not in record.per_seed:
                record.per_seed[str(seed)] = _train_and_evaluate(record, spec, store, seed)
                write_record(info_path, record)
                store.push(rel)
        record.status, record.metrics, record.finished = "finished", record.seed_means(), time.time()
        record.sample_grid = record.per_seed[str(spec.seeds[0])].sample_grid
        write_record(info_path, record)
        store.push(rel)
        _report_final(record, info_path)
    except Exception as e:
        record.status, record.finished = "failed", time.time()
        record.error, record.traceback = f"{type(e).__name__}: {e}", traceback.format_exc(limit=20)
        write_record(info_path, record)
        store.push(rel)
        raise
