"""Multi-objective sweeps, the driver (:func:`run_sweep`): Ray Tune trials (:mod:`clustergan.tune.trial`),
each training with Ray Train or in-process, searched by Optuna.

Layout of an experiment folder (``--storage``, default ``runs/sweeps/<name>``)::

    sweep.yaml            the sweep config as run (plus the resolved base training config)
    sweep_state.json      {"status": "running" | "finished" | "partial: N of M trials", protocol, objectives}
    clusters/k{K}/        cluster statistics for every k the space allows, computed by the driver up front
    optuna.db             the Optuna study (SQLite; ``optuna-dashboard sqlite:///optuna.db``)
    baselines/, search/   the two Ray Tune experiments (Ray's own state; ``Tuner.restore`` resumes them)
    trials/<trial_id>/    trial.json (:class:`clustergan.tune.records.TrialRecord`) and seed<S>/ run folders
                          (checkpoints/, samples/, tensorboard/, metrics.json)
    ranking.csv, ranking.md, pareto.png, best_config.yaml    written by :mod:`clustergan.tune.report`

With a URI ``--storage`` (``s3://...``, ``gs://...``, ``file://...``), Ray Tune's state goes straight to the URI
and everything of ours is mirrored there from local copies (:mod:`clustergan.tune.storage`); the driver's
local copy (``--local``, default ``runs/sweeps/<name>``) holds the report too.

The baselines (pix2pix: no noise, no clusters, all lambdas 0, dropout; MSGAN: noise + L_MS, no clusters) run
as their own small Tune experiment before the search, under the same protocol, so every ranking has them.
Optuna gets the three objectives (NDB min, JSD min, LPIPS max) through ``OptunaSearch`` only; Tune's own
``metric``/``mode`` stay unset (a list there raises). The optional FID ceiling is applied in the ranking:
a trial above it is reported but ranked apart as infeasible (Optuna itself does not see the constraint); so is
a trial whose conditional gain is below the optional floor (its outputs ignore their inputs).
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

import yaml

from clustergan.cache import atomic_write_bytes
from clustergan.config import validate
from clustergan.errors import ClusterganError
from clustergan.jsonio import read_json, write_json
from clustergan.tune.driver import Driver, planned_trials
from clustergan.tune.feedback import race_means
from clustergan.tune.ledger import archive, ledger_trials, restore, restored_trials
from clustergan.tune.records import RECORD, TrialRecord, TrialSpec
from clustergan.tune.report import write_report
from clustergan.tune.space import cluster_ks, fixed_kind, fixed_trials
from clustergan.tune.storage import STATE, Storage, open_experiment
from clustergan.tune.sweep_adopt import check, check_clusters, parse_adopt
from clustergan.tune.sweep_config import MODES, OBJECTIVES, SweepConfig, load_sweep, with_values

SMOKE_OVERRIDES = {
    "train.epochs": 1,
    "train.epochs_decay": 0,
    "train.max_steps": 2,
    "train.checkpoint_every": 1,
    "train.sample_every": 1,
}


def prepare_clusters(base: dict[str, Any], ks: list[int], storage: Path) -> dict[int, str]:
    """Driver side, before any trial: the procedural dataset, the training-set features (once; cached) and
    the cluster statistics for every k under ``<storage>/clusters/k{K}``. Trials only read them."""
    from clustergan.train.builders import ensure_clusters, with_data_root

    config = with_data_root(validate(base, source="sweep base"))
    dirs = {}
    for k in ks:
        out = storage / "clusters" / f"k{k}"
        cfg = config.model_copy(deep=True)
        cfg.cluster.k = k
        ensure_clusters(cfg, out)  # a resumed sweep whose base changed gets new statistics, not stale ones
        dirs[k] = str(out.resolve())
    return dirs


def _load(sweep_yaml: str | Path, smoke_test: bool, time_limit_s: float | None) -> tuple[SweepConfig, dict]:
    sweep, base = load_sweep(sweep_yaml)
    if smoke_test:
        base = with_values(base, SMOKE_OVERRIDES)
        sweep = sweep.model_copy(
            update={"num_trials": min(sweep.num_trials, 2), "seeds": sweep.seeds[:1], "scheduler": None}
        )
    if time_limit_s is not None:
        if time_limit_s <= 0:
            raise ClusterganError(f"--time-limit {time_limit_s}: give a positive number of seconds")
        sweep = sweep.model_copy(update={"time_limit_s": float(time_limit_s)})
    return sweep, base


def _from_ledger(ledger: Path, store: Storage, base: dict[str, Any], resume: bool) -> list[TrialRecord]:
    """The ledger's finished trials, restored into a fresh experiment (and mirrored); in a resumed one, those
    restored when it began."""
    if store.is_fresh():
        restored = restore(ledger, store.local, base)
        for record in restored:
            store.push(f"trials/{record.trial_id}")
        return restored
    if resume:  # restored when this experiment began: the same trials count as done
        return restored_trials(store.local)
    if ledger_trials(ledger):
        raise ClusterganError(
            f"--ledger {ledger}: {store.local} already holds a sweep, and the ledger restores "
            "into a new experiment folder only. Continue this one with --resume, or give "
            "another --storage"
        )
    return []


def _write_start(
    store: Storage, sweep: SweepConfig, base: dict, name: str, smoke_test: bool, started: float, base_config: Path
):
    atomic_write_bytes(
        store.local / "sweep.yaml",
        yaml.safe_dump(
            {"sweep": sweep.model_dump(mode="python"), "base": base, "smoke_test": smoke_test}, sort_keys=False
        ).encode(),
    )
    write_json(
        store.local / STATE,
        {
            "status": "running",
            "name": name,
            "protocol": sweep.protocol,
            "note": sweep.note,
            "smoke_test": smoke_test,
            "objectives": dict(zip(OBJECTIVES, MODES, strict=False)),
            "fid_ceiling": sweep.fid_ceiling,
            "cond_gain_floor": sweep.cond_gain_floor,
            "started": started,
            "remote": store.uri,
            "base_config": str(base_config),  # what best_config.yaml extends
        },
    )


def run_sweep(
    sweep_yaml: str | Path,
    storage: str | Path | None = None,
    resume: bool = False,
    smoke_test: bool = False,
    ledger: str | Path | None = None,
    time_limit_s: float | None = None,
    local: str | Path | None = None,
    max_trials: int | None = None,
    adopt: list[str] | None = None,
) -> Path:
    """Run (or with ``resume`` continue) a sweep; returns the (local) experiment folder with the ranking written.

    ``storage``: a folder, or a URI pyarrow opens (the experiment is mirrored there; ``local`` is the driver's
    copy, default ``runs/sweeps/<name>``).

    ``ledger``: a folder of finished trials kept across machines (:mod:`clustergan.tune.ledger`): restored
    into a new experiment before the sweep, updated after it. ``time_limit_s`` overrides the sweep's own
    whole-sweep limit (e.g. the time a machine is lent for); a trial still running when it is spent is lost.
    ``max_trials`` instead caps the trials this run starts (baselines first, then search trials), so that a
    slice of a long sweep ends between trials; the rest wait for the next run with the ledger. ``adopt``:
    ``KIND=FOLDER`` items, a fixed trial's seeds taken from runs trained elsewhere
    (:mod:`clustergan.tune.sweep_adopt`). Connects to a running Ray cluster (``RAY_ADDRESS``) or starts a
    local one.
    """
    import ray

    sweep, base = _load(sweep_yaml, smoke_test, time_limit_s)
    if max_trials is not None and max_trials < 1:
        raise ClusterganError(f"--max-trials {max_trials}: give at least 1 (the trials this run may start)")
    if max_trials is not None and resume:
        raise ClusterganError(
            "--max-trials with --resume: a resumed sweep finishes the trials its first run "
            "planned; drop --max-trials, or start the next slice with --ledger and a new --storage"
        )
    adopted = parse_adopt(adopt or [], sweep)
    adopt_plan = check(adopted, sweep, base)  # a wrong folder is refused before anything is written
    name = sweep.name + ("-smoke" if smoke_test else "")
    ledger = Path(ledger) if ledger is not None else None
    store = open_experiment(storage, local, name, resume)
    restored = _from_ledger(ledger, store, base, resume) if ledger is not None else []
    store.local.mkdir(parents=True, exist_ok=True)
    started = time.time()

    ks = cluster_ks(sweep, base)
    for k in ks:  # a sweep resumed on another machine reuses the statistics at its URI (checked, not trusted)
        if not (store.local / "clusters" / f"k{k}").is_dir():
            store.pull(f"clusters/k{k}")
    cluster_dirs = prepare_clusters(base, ks, store.local)
    for k in cluster_dirs:
        store.push(f"clusters/k{k}")
    check_clusters(adopted, sweep, base, cluster_dirs)
    for line in adopt_plan:
        print(f"--adopt {line}", flush=True)
    _write_start(store, sweep, base, name, smoke_test, started, (Path(sweep_yaml).parent / sweep.base).resolve())
    if not ray.is_initialized():
        ray.init()
    spec = TrialSpec(
        name=name,
        base=base,
        space=sweep.space,
        controls=sweep.controls,
        seeds=sweep.seeds,
        protocol=sweep.protocol,
        workers=sweep.workers,
        cpus_per_worker=sweep.cpus_per_worker,
        gpus_per_worker=sweep.gpus_per_worker,
        report_every_s=0.0 if sweep.scheduler is not None else 30.0,
        storage=str(store.local),
        cluster_dirs=cluster_dirs,
        remote=store.uri,
        driver_node=ray.get_runtime_context().get_node_id(),
        adopt=adopted,
    )
    store.push_driver_files()
    # per-epoch reports carry training losses only; the objectives come with each trial's final report
    os.environ["TUNE_DISABLE_STRICT_METRIC_CHECKING"] = "1"
    # Tune's TensorBoard logger would add every trial again to the HParams table under a generated name
    # (clustergan.tune.hparams writes the table); the driver passes the JSON and CSV loggers Tune reads itself
    os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"
    driver = Driver(sweep, spec, store, resume, started)

    done_baselines = {r.kind for r in restored if not r.is_search}
    done_search = sum(r.is_search for r in restored)
    search_left = max(sweep.num_trials - done_search, 0)
    if restored:
        print(
            f"ledger {ledger}: {len(restored)} finished trials restored ({sorted(done_baselines)} and "
            f"{done_search} searched); {search_left} search trials left",
            flush=True,
        )
    budget = max_trials if max_trials is not None else math.inf  # trials this run may still start
    fixed = [v for v in fixed_trials(sweep) if fixed_kind(v) not in done_baselines]
    fixed = fixed[: int(min(budget, len(fixed)))]
    if fixed:
        budget -= len(fixed)
        driver.baselines(fixed)
    search_now = int(min(search_left, budget))
    if search_left and driver.out_of_time():
        print(
            f"the sweep's time limit ({sweep.time_limit_s:.0f} s) is spent: the search waits for the next run",
            flush=True,
        )
    elif search_left and search_now < 1:
        print(f"--max-trials {max_trials} is spent: {search_left} search trials wait for the next run", flush=True)
    elif search_now > 0:
        raced = race_means(ledger) if ledger is not None else {}
        if raced:
            print(f"ledger {ledger}: {len(raced)} raced trials enter the study with their race means", flush=True)
        driver.search(search_now, restored, raced)
    _finish(store, sweep, started, ledger)
    return store.local


def _finish(store: Storage, sweep: SweepConfig, started: float, ledger: Path | None) -> None:
    """Collect the records, write the state and the report (mirrored), update the ledger."""
    store.pull_records()  # the records of trials that ran on other nodes
    # "finished" only when every planned trial ran; a slice (--max-trials), a spent --time-limit or a Ctrl-C
    # (Tune stops gracefully and fit returns) leaves the rest for --resume or the next --ledger run
    planned = planned_trials(sweep)
    ran = len(list(store.local.glob(f"trials/*/{RECORD}")))
    state = read_json(store.local / STATE)
    state.update(
        status="finished" if ran >= planned else f"partial: {ran} of {planned} trials",
        finished=time.time(),
        seconds=time.time() - started,
    )
    write_json(store.local / STATE, state)
    print(write_report(store.local))
    store.push_driver_files(report=True)
    if store.uri is not None:
        print(f"experiment mirrored to {store.uri}", flush=True)
    if ledger is not None:
        n = archive(store.local, ledger, planned)
        print(
            f"ledger {ledger}: {n} of {planned} trials finished (commit the folder; rerun with --ledger to continue)",
            flush=True,
        )
