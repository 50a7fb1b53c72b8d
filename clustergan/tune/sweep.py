"""Multi-objective sweeps: Ray Tune trials, each training with Ray Train (or in-process), searched by Optuna.

Layout of an experiment folder (``--storage``, default ``runs/sweeps/<name>``)::

    sweep.yaml            the sweep config as run (plus the resolved base training config)
    sweep_state.json      {"status": "running" | "finished" | "partial: N of M trials", protocol, objectives}
    clusters/k{K}/        cluster statistics for every k the space allows, computed by the driver up front
    optuna.db             the Optuna study (SQLite; ``optuna-dashboard sqlite:///optuna.db``)
    baselines/, search/   the two Ray Tune experiments (Ray's own state; ``Tuner.restore`` resumes them)
    trials/<trial_id>/    trial.json (params, status, metrics, error) and seed<S>/ run folders
                          (checkpoints/, samples/, tensorboard/, metrics.json)
    ranking.csv, ranking.md, pareto.png, best_config.yaml    written by :mod:`clustergan.tune.report`

With a URI ``--storage`` (``s3://...``, ``gs://...``, ``file://...``), Ray Tune's state goes straight to the URI
and everything of ours is mirrored there from local copies (:mod:`clustergan.tune.remote`); the driver's
local copy (``--local``, default ``runs/sweeps/<name>``) holds the report too.

The baselines (pix2pix: no noise, no clusters, all lambdas 0, dropout; MSGAN: noise + L_MS, no clusters) run
as their own small Tune experiment before the search, under the same protocol, so every ranking has them.
Optuna gets the three objectives (NDB min, JSD min, LPIPS max) through ``OptunaSearch`` only; Tune's own
``metric``/``mode`` stay unset (a list there raises). The optional FID ceiling is applied in the ranking:
a trial above it is reported but ranked apart as infeasible (Optuna itself does not see the constraint); so is
a trial whose conditional gain is below the optional floor (its outputs ignore their inputs).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import yaml

from clustergan.cache import atomic_write_bytes
from clustergan.config import apply_overrides, validate
from clustergan.errors import ClusterganError, TrainingDiverged
from clustergan.tune.remote import is_uri
from clustergan.tune.sweep_config import MODES, OBJECTIVES, ParamSpace, SweepConfig, dotted_overrides, load_sweep

#: The baseline points, as overrides of the base config (noise dimension filled in at run time).
BASELINES: dict[str, dict[str, Any]] = {
    "pix2pix": {"cluster.k": 0, "model.nz": 0, "model.dropout": 0.5, "loss.lambda_ms": 0.0,
                "loss.lambda_kl1": 0.0, "loss.lambda_km": 0.0},
    "msgan": {"cluster.k": 0, "model.dropout": 0.0, "loss.lambda_ms": 1.0, "loss.lambda_kl1": 0.0,
              "loss.lambda_km": 0.0},
}

SMOKE_OVERRIDES = {"train.epochs": 1, "train.epochs_decay": 0, "train.max_steps": 2, "train.checkpoint_every": 1,
                   "train.sample_every": 1}


def _write_json(path: Path, data: dict) -> None:
    atomic_write_bytes(path, (json.dumps(data, indent=2, default=str) + "\n").encode())


# ------------------------------------------------------------------------------------------ the space


class SpaceSampler:
    """Optuna define-by-run space (a class, so that Tune can pickle the searcher): a parameter with
    ``zero_allowed`` p is 0 ("off") when an auxiliary uniform draw ``<key>:off`` falls below p, else drawn
    from its range."""

    def __init__(self, space: dict[str, ParamSpace]):
        self.space = space

    def __call__(self, trial) -> None:
        for key, s in self.space.items():
            if s.zero_allowed > 0 and trial.suggest_float(f"{key}:off", 0.0, 1.0) < s.zero_allowed:
                continue  # off: the value is set to 0 in trial_params
            if s.type == "int":
                trial.suggest_int(key, int(s.low), int(s.high))
            else:
                trial.suggest_float(key, s.low, s.high, log=s.type == "loguniform")
        return None


def trial_params(space: dict[str, ParamSpace], sampled: dict[str, Any]) -> dict[str, Any]:
    """Tune's config of a search trial -> ``{dotted key: value}`` with "off" parameters at 0."""
    flat = dict(sampled)  # Optuna's names are flat ("cluster.k"); Tune unflattens only on "/"
    params = {}
    for key, s in space.items():
        if key in flat:
            params[key] = int(flat[key]) if s.type == "int" else float(flat[key])
        else:
            params[key] = 0 if s.type == "int" else 0.0
    return params


def build_trial_config(base: dict[str, Any], params: dict[str, Any], seed: int, out: Path):
    """Base + sampled params -> a validated TrainConfig for one seed. Without clusters the cluster losses
    are off (they need cluster statistics); with L_MS on, the generator needs noise."""
    data = apply_overrides(base, dotted_overrides(params))
    k = int(_get(data, "cluster.k") or 0)
    if k == 0:
        data = apply_overrides(data, ["loss.lambda_kl1=0.0", "loss.lambda_km=0.0"])
    if float(_get(data, "loss.lambda_ms") or 0) > 0 and not _get(data, "model.nz"):
        data = apply_overrides(data, ["model.nz=8"])
    data = apply_overrides(data, [f"seed={seed}", f"out={out}"])
    return validate(data, source=f"trial config ({params})")


def _get(data: dict[str, Any], dotted: str) -> Any:
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


# --------------------------------------------------------------------------------- driver preparation


def cluster_ks(sweep: SweepConfig, base: dict[str, Any]) -> list[int]:
    """Every k >= 1 a trial can use."""
    space = sweep.space.get("cluster.k")
    if space is not None:
        return list(range(max(1, int(space.low)), int(space.high) + 1))
    k = int(_get(base, "cluster.k") or 0)
    return [k] if k else []


def prepare_clusters(base: dict[str, Any], ks: list[int], storage: Path) -> dict[int, str]:
    """Driver side, before any trial: the procedural dataset, the training-set features (once; cached) and
    the cluster statistics for every k under ``<storage>/clusters/k{K}``. Trials only read them."""
    from clustergan.train.builders import ensure_clusters, synth_root

    config = validate(base, source="sweep base")
    if config.data.root is None:
        config.data.root = str(synth_root(config))
    dirs = {}
    for k in ks:
        out = storage / "clusters" / f"k{k}"
        cfg = config.model_copy(deep=True)
        cfg.cluster.k = k
        ensure_clusters(cfg, out)  # a resumed sweep whose base changed gets new statistics, not stale ones
        dirs[k] = str(out.resolve())
    return dirs


# ----------------------------------------------------------------------------------------- the trial


def _tune_local_context(resume_from, every_s: float):
    """In-process training inside a trial (workers: 0): epoch losses go to Tune, every epoch when a scheduler
    needs them, else at most every ``every_s`` seconds (each report waits for the driver, ~0.1 s: with short
    epochs, reporting all of them cost ~15 % of the trial time)."""
    from ray import tune

    from clustergan.train.dist import LocalContext

    class TuneLocalContext(LocalContext):
        last = 0.0

        def report(self, metrics, checkpoint_path=None):
            now = time.monotonic()
            if now - self.last >= every_s:
                self.last = now
                tune.report({k: v for k, v in metrics.items() if isinstance(v, (int, float))})

    return TuneLocalContext(resume_from=resume_from, device="cpu")


def _train_one(config, spec: dict[str, Any], run_name: str) -> None:
    from clustergan.train.checkpoint import latest_checkpoint
    from clustergan.train.loop import train_func, write_run_config

    write_run_config(config)
    if spec["workers"] == 0:
        resume = latest_checkpoint(config.run_dir / "checkpoints")  # a resumed sweep continues the run
        train_func(config.to_dict(), _tune_local_context(resume, spec["report_every_s"]))
        return
    from ray.tune.integration.ray_train import TuneReportCallback

    from clustergan.tune.train_ray import make_trainer

    trainer = make_trainer(config, spec["workers"], use_gpu=spec["gpus_per_worker"] > 0,
                           cpus_per_worker=spec["cpus_per_worker"], gpus_per_worker=spec["gpus_per_worker"] or None,
                           storage_path=(f"{spec['remote']}/ray_train" if spec.get("remote")
                                         else str(Path(spec["storage"]) / "ray_train")), name=run_name,
                           callbacks=[TuneReportCallback()], max_failures=1)
    result = trainer.fit()
    if result.error is not None:
        raise result.error
    from clustergan.tune.train_ray import fetch_final_checkpoint

    fetch_final_checkpoint(result, config.run_dir)


def _report_final(record: dict[str, Any], info_path: Path) -> None:
    """The trial's one report with the objectives (seed means), with its last checkpoint and record."""
    from ray import tune

    from clustergan.train.checkpoint import latest_checkpoint

    run_dir = Path(record["per_seed"][str(record["seeds"][0])]["run_dir"])
    with tempfile.TemporaryDirectory(prefix="clustergan-trial-") as tmp:
        last = latest_checkpoint(run_dir / "checkpoints")
        if last is not None:
            shutil.copy2(last, Path(tmp) / last.name)
        shutil.copy2(info_path, Path(tmp) / "trial.json")
        tune.report({**record["metrics"], "trial_finished": 1}, checkpoint=tune.Checkpoint.from_directory(tmp))


def run_trial(tune_config: dict[str, Any], spec: dict[str, Any]) -> None:
    """One Tune trial: train the configuration once per seed, evaluate each, report the seed means."""
    from ray import tune

    from clustergan.train.builders import prepare_run
    from clustergan.train.evaluate import evaluate_run

    import torch

    torch.set_num_threads(max(1, int(spec["cpus_per_worker"])))
    ctx = tune.get_context()
    trial_id = ctx.get_trial_id()
    remote = None
    root = Path(spec["storage"])
    if spec.get("remote"):
        import ray

        from clustergan.tune.remote import Remote, trial_root

        remote = Remote(spec["remote"])
        root = trial_root(spec, ray.get_runtime_context().get_node_id())
    trial_dir = root / "trials" / trial_id
    if remote is not None and not (trial_dir / "trial.json").is_file():
        remote.pull(f"trials/{trial_id}", trial_dir)  # a resumed trial on a node without its folder

    def sync() -> None:
        if remote is not None:
            remote.push(trial_dir, f"trials/{trial_id}")

    trial_dir.mkdir(parents=True, exist_ok=True)
    if "baseline" in tune_config:
        kind = f"baseline:{tune_config['baseline']}"
        params = dict(BASELINES[tune_config["baseline"]])
        if params["loss.lambda_ms"] > 0 and not _get(spec["base"], "model.nz"):
            params["model.nz"] = 8
    else:
        kind = "search"
        params = trial_params(spec["space"], tune_config)
    record: dict[str, Any] = {"trial_id": trial_id, "trial_name": ctx.get_trial_name(), "kind": kind,
                              "params": params, "status": "running", "seeds": spec["seeds"],
                              "started": time.time(), "per_seed": {}}
    if kind == "search":  # Optuna's raw draws (with the "<key>:off" ones): a ledger can give them back to it
        record["sampled"] = {k: v for k, v in tune_config.items() if isinstance(v, (int, float))}
    info_path = trial_dir / "trial.json"
    if info_path.is_file():  # a resumed trial keeps the seeds it already finished
        try:
            old = json.loads(info_path.read_text())
        except (OSError, ValueError):
            old = {}
        if old.get("status") == "finished" and old.get("metrics"):
            # finished before the driver died, but Tune had not recorded it: report it again, train nothing
            sync()
            _report_final(old, info_path)
            return
        record["per_seed"] = {k: v for k, v in old.get("per_seed", {}).items() if isinstance(v, dict)}
        record["started"] = old.get("started", record["started"])
    _write_json(info_path, record)
    try:
        for seed in spec["seeds"]:
            if str(seed) in record["per_seed"]:
                continue
            config = build_trial_config(spec["base"], params, seed, trial_dir / f"seed{seed}")
            if seed == spec["seeds"][0]:
                record["train_config"] = config.to_dict()
            if config.cluster.k:
                from clustergan.tune.remote import cluster_dir

                config.cluster.stats_dir = cluster_dir(spec, config.cluster.k, root)
            config = prepare_run(config)
            _train_one(config, spec, run_name=f"{trial_id}-seed{seed}")
            result = evaluate_run(config.run_dir, protocol=spec["protocol"], seed=seed,
                                  out=config.run_dir / "metrics.json")
            values = {m: float(result[m]) for m in (*OBJECTIVES, "fid", "mode_coverage", "cond_gain") if m in result}
            bad = [m for m, v in values.items() if not math.isfinite(v)]
            if bad:
                raise TrainingDiverged(f"trial {trial_id} seed {seed}: metric(s) {', '.join(bad)} are NaN/Inf")
            grids = sorted((config.run_dir / "samples").glob("*.png"))
            record["per_seed"][str(seed)] = {**values, "sample_grid": str(grids[-1]) if grids else None,
                                             "run_dir": str(config.run_dir)}
            record.setdefault("test_inputs", result.get("details", {}).get("lpips", {}).get("inputs"))
            _write_json(info_path, record)
            sync()
        per_seed = [record["per_seed"][str(s)] for s in spec["seeds"]]
        metrics = {m: sum(p[m] for p in per_seed) / len(per_seed) for m in per_seed[0]
                   if isinstance(per_seed[0][m], (int, float))}
        record.update(status="finished", metrics=metrics, finished=time.time(),
                      sample_grid=per_seed[0]["sample_grid"])
        _write_json(info_path, record)
        sync()
        _report_final(record, info_path)
    except Exception as e:
        record.update(status="failed", error=f"{type(e).__name__}: {e}", finished=time.time(),
                      traceback=traceback.format_exc(limit=20))
        _write_json(info_path, record)
        sync()
        raise


# ----------------------------------------------------------------------------------------- the driver


def default_storage(name: str) -> Path:
    return Path("runs") / "sweeps" / name


def _tuner(trainable, storage: str, exp_name: str, resume: bool, param_space, tune_config, time_limit,
           callbacks=None):
    """A new Tune experiment ``<storage>/<exp_name>`` (a folder or a URI), or the interrupted one restored."""
    from ray import tune

    path = f"{storage.rstrip('/')}/{exp_name}"
    if (is_uri(path) or Path(path).exists()) and tune.Tuner.can_restore(path):
        if not resume:
            raise ClusterganError(f"{path}: this sweep already ran here; pass --resume to continue it (finished "
                                  "trials are kept) or choose another --storage")
        return tune.Tuner.restore(path, trainable=trainable, resume_errored=False, restart_errored=False)
    return tune.Tuner(
        trainable,
        param_space=param_space,
        tune_config=tune_config,
        run_config=tune.RunConfig(name=exp_name, storage_path=storage, stop=time_limit, callbacks=callbacks,
                                  failure_config=tune.FailureConfig(max_failures=0), verbose=0),
    )


def _mirror_callback(remote, local: Path):
    """A Tune callback pushing the driver's files (the Optuna database above all) to the URI after each
    trial, so that a sweep resumed on another machine loses no finished trial's draw."""
    from ray import tune

    from clustergan.tune.remote import push_driver_files

    class MirrorDriverFiles(tune.Callback):
        def on_trial_complete(self, iteration, trials, trial, **info):
            push_driver_files(remote, local)

        on_trial_error = on_trial_complete

    return MirrorDriverFiles()


def _experiment_folders(storage, local, name: str, resume: bool):
    """``(local folder, Remote or None)`` for ``--storage`` and ``--local``; a resumed sweep at a URI pulls
    the driver files and trial records into the local copy first."""
    if not is_uri(storage):
        if local is not None:
            raise ClusterganError(f"--local {local}: the driver's local copy is for a sweep stored at a URI; with "
                                  f"--storage {storage or default_storage(name)} the experiment is already local")
        return Path(storage or default_storage(name)).expanduser().resolve(), None
    from clustergan.tune.remote import Remote, pull_experiment

    remote = Remote(str(storage))
    local = Path(local or default_storage(name)).expanduser().resolve()
    mine = local / "sweep_state.json"
    owner = json.loads(mine.read_text()).get("remote") if mine.is_file() else remote.uri
    if owner != remote.uri:
        raise ClusterganError(f"{local} holds the local copy of another sweep (sweep_state.json: remote "
                              f"{owner}); give this one its own --local folder")
    if remote.exists("sweep_state.json"):
        if not resume:
            raise ClusterganError(f"{remote.uri}: this sweep already ran here; pass --resume to continue it "
                                  "(finished trials are kept) or choose another --storage")
        n = pull_experiment(remote, local)
        print(f"{remote.uri}: {n} trial records pulled into {local}", flush=True)
    return local, remote


def run_sweep(sweep_yaml: str | Path, storage: str | Path | None = None, resume: bool = False,
              smoke_test: bool = False, ledger: str | Path | None = None,
              time_limit_s: float | None = None, local: str | Path | None = None,
              max_trials: int | None = None) -> Path:
    """Run (or with ``resume`` continue) a sweep; returns the (local) experiment folder with the ranking written.

    ``storage``: a folder, or a URI pyarrow opens (the experiment is mirrored there; ``local`` is the driver's
    copy, default ``runs/sweeps/<name>``).

    ``ledger``: a folder of finished trials kept across machines (:mod:`clustergan.tune.ledger`): restored
    into a new experiment before the sweep, updated after it. ``time_limit_s`` overrides the sweep's own
    whole-sweep limit (e.g. the time a session has); a trial still running when it is spent is lost.
    ``max_trials`` instead caps the trials this run starts (baselines first, then search trials), so that a
    slice of a long sweep ends between trials; the rest wait for the next run with the ledger. Connects to a
    running Ray cluster (``RAY_ADDRESS``) or starts a local one.
    """
    import optuna
    import ray
    from ray import tune
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    from clustergan.tune.report import write_report

    sweep, base = load_sweep(sweep_yaml)
    if smoke_test:
        base = apply_overrides(base, dotted_overrides(SMOKE_OVERRIDES))
        sweep = sweep.model_copy(update={"num_trials": min(sweep.num_trials, 2), "seeds": sweep.seeds[:1],
                                         "scheduler": None})
    if max_trials is not None and max_trials < 1:
        raise ClusterganError(f"--max-trials {max_trials}: give at least 1 (the trials this run may start)")
    if max_trials is not None and resume:
        raise ClusterganError("--max-trials with --resume: a resumed sweep finishes the trials its first run "
                              "planned; drop --max-trials, or start the next slice with --ledger and a new --storage")
    if time_limit_s is not None:
        if time_limit_s <= 0:
            raise ClusterganError(f"--time-limit {time_limit_s}: give a positive number of seconds")
        sweep = sweep.model_copy(update={"time_limit_s": float(time_limit_s)})
    name = sweep.name + ("-smoke" if smoke_test else "")
    storage, remote = _experiment_folders(storage, local, name, resume)
    tune_root = remote.uri if remote is not None else str(storage)
    restored: list[dict[str, Any]] = []
    if ledger is not None:
        from clustergan.tune.ledger import ledger_trials, restore

        ledger = Path(ledger)
        fresh = not ((storage / "optuna.db").exists() or (storage / "search").exists()
                     or (storage / "baselines").exists() or (remote is not None and remote.exists("sweep_state.json")))
        if fresh:
            restored = restore(ledger, storage, base)
            for r in restored if remote is not None else ():
                remote.push(storage / "trials" / r["trial_id"], f"trials/{r['trial_id']}")
        elif resume:  # restored when this experiment began: the same trials count as done
            restored = [r for p in sorted(storage.glob("trials/*/trial.json"))
                        if "restored_from" in (r := json.loads(p.read_text()))]
        elif ledger_trials(ledger):
            raise ClusterganError(f"--ledger {ledger}: {storage} already holds a sweep, and the ledger restores "
                                  "into a new experiment folder only. Continue this one with --resume, or give "
                                  "another --storage")
    storage.mkdir(parents=True, exist_ok=True)
    started = time.time()

    cluster_dirs = prepare_clusters(base, cluster_ks(sweep, base), storage)
    for k in cluster_dirs if remote is not None else ():
        if not remote.exists(f"clusters/k{k}/cluster_stats.json"):
            remote.push(storage / "clusters" / f"k{k}", f"clusters/k{k}")
    atomic_write_bytes(storage / "sweep.yaml", yaml.safe_dump(
        {"sweep": sweep.model_dump(mode="python"), "base": base, "smoke_test": smoke_test}, sort_keys=False).encode())
    _write_json(storage / "sweep_state.json", {"status": "running", "name": name, "protocol": sweep.protocol,
                                               "note": sweep.note, "smoke_test": smoke_test,
                                               "objectives": dict(zip(OBJECTIVES, MODES)),
                                               "fid_ceiling": sweep.fid_ceiling,
                                               "cond_gain_floor": sweep.cond_gain_floor, "started": started,
                                               "remote": remote.uri if remote is not None else None})
    if not ray.is_initialized():
        ray.init()
    spec = {"base": base, "space": sweep.space, "seeds": sweep.seeds, "workers": sweep.workers,
            "cpus_per_worker": sweep.cpus_per_worker, "gpus_per_worker": sweep.gpus_per_worker,
            "protocol": sweep.protocol, "storage": str(storage), "name": name,
            "report_every_s": 0.0 if sweep.scheduler is not None else 30.0,
            "cluster_dirs": {str(k): v for k, v in cluster_dirs.items()},
            "remote": remote.uri if remote is not None else None,
            "driver_node": ray.get_runtime_context().get_node_id()}
    callbacks = None
    if remote is not None:
        from clustergan.tune.remote import push_driver_files

        push_driver_files(remote, storage)
        callbacks = [_mirror_callback(remote, storage)]
    if sweep.workers == 0:  # the trial process trains: give it a worker's resources
        resources = {"cpu": sweep.cpus_per_worker, "gpu": sweep.gpus_per_worker}
    else:  # the trial only drives a TorchTrainer; its workers ask for their own resources
        resources = {"cpu": 0.01}
    trainable = tune.with_resources(tune.with_parameters(run_trial, spec=spec), resources)
    stop = {"time_total_s": sweep.trial_time_limit_s} if sweep.trial_time_limit_s else None

    # reuse_actors: the next trial runs in the process the last one finished in (same resources), which
    # skips a process start and the imports (~10 s per trial on 2 cores: most of a smoke trial); a trial
    # that failed or was stopped mid-epoch gets a fresh process

    # per-epoch reports carry training losses only; the objectives come with each trial's final report
    os.environ["TUNE_DISABLE_STRICT_METRIC_CHECKING"] = "1"

    def remaining() -> float | None:
        if sweep.time_limit_s is None:
            return None
        return max(1.0, sweep.time_limit_s - (time.time() - started))

    done_baselines = {r["kind"] for r in restored if r.get("kind", "").startswith("baseline:")}
    done_search = sum(r.get("kind") == "search" for r in restored)
    if restored:
        print(f"ledger {ledger}: {len(restored)} finished trials restored ({sorted(done_baselines)} and "
              f"{done_search} searched); {max(sweep.num_trials - done_search, 0)} search trials left", flush=True)
    budget = max_trials if max_trials is not None else math.inf  # trials this run may still start
    todo_baselines = [b for b in BASELINES if f"baseline:{b}" not in done_baselines] if sweep.baselines else []
    todo_baselines = todo_baselines[:int(min(budget, len(todo_baselines)))]
    if todo_baselines:
        budget -= len(todo_baselines)
        tuner = _tuner(trainable, tune_root, "baselines", resume,
                       {"baseline": tune.grid_search(todo_baselines)},
                       tune.TuneConfig(max_concurrent_trials=sweep.max_concurrent, time_budget_s=remaining(),
                                       reuse_actors=True), stop,
                       callbacks)
        tuner.fit()
    out_of_time = sweep.time_limit_s is not None and time.time() - started >= sweep.time_limit_s
    if out_of_time and sweep.num_trials > done_search:
        print(f"the sweep's time limit ({sweep.time_limit_s:.0f} s) is spent: the search waits for the next run",
              flush=True)
    search_now = int(min(sweep.num_trials - done_search, budget)) if sweep.num_trials > done_search else 0
    if sweep.num_trials > done_search and not out_of_time and search_now < 1:
        print(f"--max-trials {max_trials} is spent: {sweep.num_trials - done_search} search trials wait for the "
              "next run", flush=True)
    if search_now > 0 and not out_of_time:
        sampler_seed = sweep.optuna_seed
        if done_search:  # the ledger's trials, as completed trials of the study the searcher loads
            from clustergan.tune.ledger import seed_study

            study = optuna.create_study(study_name=name, directions=[f"{m}imize" for m in MODES],
                                        storage=f"sqlite:///{storage / 'optuna.db'}", load_if_exists=True)
            if not study.trials:
                seed_study(study, sweep.space, restored)
            # A new sampler seeded as the first slice's would replay that slice's draws (TPE's startup phase
            # draws at random from its seed): the facades sweep's third slice re-drew two finished trials.
            # Offset the seed by the trials the study holds, so each slice draws new points, reproducibly.
            sampler_seed += len(study.trials)
            print(f"Optuna: {len(study.trials)} trials already in the study, sampler seed {sampler_seed}", flush=True)
        searcher = OptunaSearch(
            space=SpaceSampler(sweep.space), metric=list(OBJECTIVES), mode=list(MODES), study_name=name,
            storage=optuna.storages.RDBStorage(f"sqlite:///{storage / 'optuna.db'}"),
            sampler=optuna.samplers.TPESampler(seed=sampler_seed, n_startup_trials=max(4, sweep.num_trials // 4)),
        )
        scheduler = None
        if sweep.scheduler is not None:
            from ray.tune.schedulers import ASHAScheduler

            s = sweep.scheduler
            scheduler = ASHAScheduler(metric=s.metric, mode=s.mode, grace_period=s.grace_period,
                                      reduction_factor=s.reduction_factor,
                                      max_t=10_000)
        tuner = _tuner(trainable, tune_root, "search", resume, None,
                       tune.TuneConfig(search_alg=ConcurrencyLimiter(searcher, sweep.max_concurrent),
                                       scheduler=scheduler, num_samples=search_now,
                                       time_budget_s=remaining(), reuse_actors=True), stop, callbacks)
        tuner.fit()

    if remote is not None:  # the records of trials that ran on other nodes
        from clustergan.tune.remote import pull_experiment

        pull_experiment(remote, storage)
    # "finished" only when every planned trial ran; a slice (--max-trials), a spent --time-limit or a Ctrl-C
    # (Tune stops gracefully and fit returns) leaves the rest for --resume or the next --ledger run
    planned = sweep.num_trials + (len(BASELINES) if sweep.baselines else 0)
    ran = len(list(storage.glob("trials/*/trial.json")))
    state = json.loads((storage / "sweep_state.json").read_text())
    state.update(status="finished" if ran >= planned else f"partial: {ran} of {planned} trials",
                 finished=time.time(), seconds=time.time() - started)
    _write_json(storage / "sweep_state.json", state)
    table = write_report(storage)
    print(table)
    if remote is not None:
        push_driver_files(remote, storage, report=True)
        print(f"experiment mirrored to {remote.uri}", flush=True)
    if ledger is not None:
        from clustergan.tune.ledger import archive

        expected = sweep.num_trials + (len(BASELINES) if sweep.baselines else 0)
        n = archive(storage, ledger, expected)
        print(f"ledger {ledger}: {n} of {expected} trials finished (commit the folder; rerun with --ledger to "
              "continue)", flush=True)
    return storage

