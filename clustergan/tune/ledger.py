"""A sweep's committed ledger: its finished trials, kept in the repo, so a long sweep grows across machines and runs.

A facades sweep at the cpu scale takes 3.5-6 h on a 2-core CPU, longer than one sitting on a laptop, and a fresh
machine starts without ``runs/``. ``clustergan sweep --ledger DIR`` therefore

- before the sweep, restores the ledger's finished trials into a *new* experiment folder: their
  ``trial.json`` records (and sample grids) for the ranking, and their parameters and objective values
  into the Optuna study as completed trials, so the sampler continues from what is known; baselines
  already in the ledger are not rerun, and only ``num_trials`` minus the search trials already there
  are launched;
- after the sweep (also when ``--time-limit`` or the sweep's own limit stopped it), copies every finished
  trial, the ranking, the Pareto plot and the best configuration into ``DIR``.

Only finished trials enter the ledger; a trial cut off by the time limit is trained again next time. The
ledger holds JSON, Markdown, CSV, YAML and PNG files; no checkpoints or weights.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from clustergan.cache import atomic_copy
from clustergan.config import training_differences
from clustergan.errors import ClusterganError
from clustergan.jsonio import read_json, write_json
from clustergan.tune.feedback import study_values
from clustergan.tune.records import TrialRecord, experiment_records, finished_records, record_path, write_record
from clustergan.tune.report import write_report
from clustergan.tune.space import build_trial_config, distributions
from clustergan.tune.sweep_config import ParamSpace

GRID = "grid.png"


def archive(exp: Path, ledger: Path, expected: int) -> int:
    """Copy the finished trials of experiment ``exp`` into ``ledger`` and write the ledger's own ranking
    (``ranking.md``/``.csv``, ``pareto.png``, ``best_config.yaml``: the ledger is an experiment folder that
    ``clustergan report`` reads). ``expected`` is the number of trials of the complete sweep (baselines
    included); the ranking says "finished" only when the ledger has them all. Returns the trials there."""
    exp, ledger = Path(exp), Path(ledger)
    for record in finished_records(exp):
        dst = record_path(ledger, record.trial_id).parent
        grid = record.sample_grid
        record = record.model_copy(update={"traceback": None})
        if grid and Path(grid).is_file():
            if Path(grid).resolve() != (dst / GRID).resolve():
                atomic_copy(Path(grid), dst / GRID)
            record.sample_grid = os.path.relpath(dst / GRID)  # from where the sweep ran (the repo)
        write_record(dst / "trial.json", record)
    done = len(ledger_trials(ledger))
    state = read_json(exp / "sweep_state.json")
    state.update(status="finished" if done >= expected else f"partial: {done} of {expected} trials", ledger=True)
    write_json(ledger / "sweep_state.json", state)
    write_report(ledger)
    return done


def ledger_trials(ledger: Path) -> list[TrialRecord]:
    """The finished trials of a ledger (an absent ledger has none)."""
    return finished_records(ledger)


def config_differences(record: TrialRecord, base: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """``{dotted key: (the trial's value, this sweep's value)}`` where a ledger trial's training config is not
    the one this sweep would build for the same parameters and seed (its base config or overrides changed).

    Not compared: the run folder (``out``, ``name``), ``cluster.stats_dir`` (set per machine), the folder of
    ``data.root`` (only its last part: the same dataset lives at other paths on other machines). The trained
    config is validated first, so a key added to the schema after the trial ran takes its default: a trial
    from before a key existed matches a sweep that leaves the key at its default, and is flagged otherwise."""
    rebuilt = build_trial_config(base, record.params, record.seeds[0], "unused").to_dict()
    return training_differences(record.train_config or {}, rebuilt, f"trial {record.trial_id}'s train_config")


def restore(ledger: Path, exp: Path, base: dict[str, Any] | None = None) -> list[TrialRecord]:
    """Copy the ledger's finished trials into experiment ``exp`` (a trial already there is left alone);
    returns their records. With ``base`` (the sweep's base config, overrides applied), a trial trained under
    another configuration is an error: its numbers would be ranked against trials they do not compare with."""
    ledger, exp = Path(ledger), Path(exp)
    records = ledger_trials(ledger)
    for record in records if base is not None else ():
        diff = config_differences(record, base)
        if diff:
            shown = ", ".join(f"{k}: {a!r} in the ledger, {b!r} now" for k, (a, b) in list(diff.items())[:5])
            raise ClusterganError(
                f"--ledger {ledger}: trial {record.trial_id} ({record.kind}) was trained under another "
                f"configuration than this sweep's ({shown}). The ledger belongs to an earlier version of the "
                f"sweep: give a new --ledger folder, or delete this one to start over"
            )
    for record in records:
        src, dst = record_path(ledger, record.trial_id).parent, record_path(exp, record.trial_id)
        if not dst.is_file():
            if (src / GRID).is_file():
                atomic_copy(src / GRID, dst.parent / GRID)
                record.sample_grid = str(dst.parent / GRID)
            record.restored_from = str(ledger)
            write_record(dst, record)
    return records


def restored_trials(exp: Path) -> list[TrialRecord]:
    """The trials a ledger restored into experiment ``exp`` when it began."""
    return [r for r in experiment_records(exp) if r.restored_from is not None]


def seed_study(
    study, space: dict[str, ParamSpace], records: list[TrialRecord], raced: dict[str, dict[str, float]] | None = None
) -> int:
    """Add the ledger's finished search trials to an Optuna study as completed trials; returns how many.

    A trial needs its raw Optuna draws (``sampled``, written since the ledger exists); the objective values
    are, in the study's order (NDB, JSD, LPIPS), its race means where the ledger was raced (``raced``:
    :func:`clustergan.tune.feedback.race_means`), else its seed means; the user attribute ``seeds`` says
    over how many seeds."""
    import optuna

    added = 0
    for record in records:
        if not record.is_search:
            continue
        sampled = record.sampled
        if sampled is None:
            raise ClusterganError(
                f"ledger trial {record.trial_id}: no 'sampled' parameters (written by an "
                "older clustergan); delete its folder from the ledger to run it again"
            )
        unknown = [k for k in sampled if k.removesuffix(":off") not in space]
        if unknown:
            raise ClusterganError(
                f"ledger trial {record.trial_id}: parameter(s) {unknown} are not in this "
                f"sweep's space {sorted(space)}; the ledger belongs to another sweep"
            )
        values, seeds = study_values(record, raced or {})
        study.add_trial(
            optuna.trial.create_trial(
                params=sampled,
                distributions=distributions(space, sampled),
                values=values,
                user_attrs={"trial_id": record.trial_id, "seeds": seeds},
            )
        )
        added += 1
    return added
