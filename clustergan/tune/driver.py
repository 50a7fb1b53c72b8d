"""The Ray Tune side of one sweep run (:class:`Driver`): the trainable with its resources, the two Tune
experiments (the baselines as a grid, then the Optuna search), their restore on ``--resume``, and the search's
Optuna study seeded from a ledger (:mod:`clustergan.tune.feedback`). :func:`clustergan.tune.sweep.run_sweep`
decides what runs; this module only runs it."""

from __future__ import annotations

import time
from pathlib import Path

from clustergan.errors import ClusterganError
from clustergan.tune.feedback import known_points, known_points_search
from clustergan.tune.ledger import seed_study
from clustergan.tune.progress import progress_callback
from clustergan.tune.records import TrialRecord, TrialSpec
from clustergan.tune.space import SpaceSampler, fixed_trials
from clustergan.tune.storage import Storage
from clustergan.tune.study_db import LocalCopyStorage, db_url, use_local_copy
from clustergan.tune.sweep_config import MODES, OBJECTIVES, SweepConfig
from clustergan.tune.trial import run_trial


def planned_trials(sweep: SweepConfig) -> int:
    """Every trial the sweep runs: the searched ones, the baselines and the controls."""
    return sweep.num_trials + len(fixed_trials(sweep))


class Driver:
    """The two Tune experiments of one sweep run (baselines, then search), sharing trainable and limits."""

    def __init__(self, sweep: SweepConfig, spec: TrialSpec, store: Storage, resume: bool, started: float):
        from ray import tune

        self.sweep, self.spec, self.store, self.resume, self.started = sweep, spec, store, resume, started
        if sweep.workers == 0:  # the trial process trains: give it a worker's resources
            resources = {"cpu": sweep.cpus_per_worker, "gpu": sweep.gpus_per_worker}
        else:  # the trial only drives a TorchTrainer; its workers ask for their own resources
            resources = {"cpu": 0.01}
        self.trainable = tune.with_resources(tune.with_parameters(run_trial, spec=spec), resources)
        self.stop = {"time_total_s": sweep.trial_time_limit_s} if sweep.trial_time_limit_s else None
        from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

        planned = planned_trials(sweep)
        self.callbacks = [
            CSVLoggerCallback(),
            JsonLoggerCallback(),
            progress_callback(store.local, spec.name, planned, started),
            *(store.driver_callbacks() or []),
        ]

    def remaining(self) -> float | None:
        if self.sweep.time_limit_s is None:
            return None
        return max(1.0, self.sweep.time_limit_s - (time.time() - self.started))

    def out_of_time(self) -> bool:
        return self.sweep.time_limit_s is not None and time.time() - self.started >= self.sweep.time_limit_s

    def fit(self, exp_name: str, param_space: dict | None, **tune_config) -> None:
        """A new Tune experiment ``<storage>/<exp_name>``, or the interrupted one restored; run to its end.

        ``reuse_actors``: the next trial runs in the process the last one finished in (same resources), which
        skips a process start and the imports (~10 s per trial on 2 cores: most of a smoke trial); a trial
        that failed or was stopped mid-epoch gets a fresh process."""
        from ray import tune

        path = f"{self.store.tune_root.rstrip('/')}/{exp_name}"
        if (self.store.uri is not None or Path(path).exists()) and tune.Tuner.can_restore(path):
            if not self.resume:
                raise ClusterganError(
                    f"{path}: this sweep already ran here; pass --resume to continue it "
                    "(finished trials are kept) or choose another --storage"
                )
            tuner = tune.Tuner.restore(path, trainable=self.trainable, resume_errored=False, restart_errored=False)
        else:
            tuner = tune.Tuner(
                self.trainable,
                param_space=param_space,
                tune_config=tune.TuneConfig(time_budget_s=self.remaining(), reuse_actors=True, **tune_config),
                run_config=tune.RunConfig(
                    name=exp_name,
                    storage_path=self.store.tune_root,
                    stop=self.stop,
                    callbacks=self.callbacks,
                    verbose=0,
                    failure_config=tune.FailureConfig(max_failures=0),
                ),
            )
        tuner.fit()

    def baselines(self, names: list[str]) -> None:
        from ray import tune

        self.fit("baselines", {"baseline": tune.grid_search(names)}, max_concurrent_trials=self.sweep.max_concurrent)

    def search(self, num_samples: int, restored: list[TrialRecord], raced: dict[str, dict[str, float]]) -> None:
        """``num_samples`` Optuna trials; the ledger's search trials (``restored``) seed the study first, with
        their race means where the ledger was raced (``raced``; :mod:`clustergan.tune.feedback`)."""
        import optuna
        from ray.tune.search import ConcurrencyLimiter

        sweep, name = self.sweep, self.spec.name
        use_local_copy(self.store.local)  # where a searcher that Tune restores (unpickles) opens the study
        db = db_url(self.store.local)
        sampler_seed = sweep.optuna_seed
        if any(r.is_search for r in restored):  # the ledger's trials, as completed trials of the study
            study = optuna.create_study(
                study_name=name, directions=[f"{m}imize" for m in MODES], storage=db, load_if_exists=True
            )
            if not study.trials:
                seed_study(study, sweep.space, restored, raced)
            # A new sampler seeded as the first slice's would replay that slice's draws (TPE's startup phase
            # draws at random from its seed): the facades sweep's third slice re-drew two finished trials.
            # Offset the seed by the trials the study holds, so each slice draws new points, reproducibly.
            sampler_seed += len(study.trials)
            print(f"Optuna: {len(study.trials)} trials already in the study, sampler seed {sampler_seed}", flush=True)
        searcher = known_points_search(
            sweep.space,
            known_points(sweep.space, restored, raced),
            space=SpaceSampler(sweep.space),
            metric=list(OBJECTIVES),
            mode=list(MODES),
            study_name=name,
            storage=LocalCopyStorage(self.store.local),
            sampler=optuna.samplers.TPESampler(seed=sampler_seed, n_startup_trials=max(4, sweep.num_trials // 4)),
        )
        scheduler = None
        if sweep.scheduler is not None:
            from ray.tune.schedulers import ASHAScheduler

            s = sweep.scheduler
            scheduler = ASHAScheduler(
                metric=s.metric,
                mode=s.mode,
                grace_period=s.grace_period,
                reduction_factor=s.reduction_factor,
                max_t=10_000,
            )
        self.fit(
            "search",
            None,
            search_alg=ConcurrencyLimiter(searcher, sweep.max_concurrent),
            scheduler=scheduler,
            num_samples=num_samples,
        )
