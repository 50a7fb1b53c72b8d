"""A sweep's committed ledger: its finished trials, kept in the repo, so a long sweep grows across sessions.

A facades sweep at the cpu scale takes 3.5-6 h on a 2-core CPU, longer than a working session, and a fresh
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

import json
import os
from pathlib import Path
from typing import Any

from clustergan.cache import atomic_write_bytes
from clustergan.errors import ClusterganError
from clustergan.tune.sweep_config import OBJECTIVES, ParamSpace



def _copy(src: Path, dst: Path) -> None:
    atomic_write_bytes(dst, Path(src).read_bytes())  # small result files; never a half-written copy


def _finished(path: Path) -> dict[str, Any] | None:
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if record.get("status") == "finished" and all(m in record.get("metrics", {}) for m in OBJECTIVES):
        return record
    return None


def archive(exp: Path, ledger: Path, expected: int) -> int:
    """Copy the finished trials of experiment ``exp`` into ``ledger`` and write the ledger's own ranking
    (``ranking.md``/``.csv``, ``pareto.png``, ``best_config.yaml``: the ledger is an experiment folder that
    ``clustergan report`` reads). ``expected`` is the number of trials of the complete sweep (baselines
    included); the ranking says "finished" only when the ledger has them all. Returns the trials there."""
    from clustergan.tune.report import write_report

    exp, ledger = Path(exp), Path(ledger)
    for path in sorted((exp / "trials").glob("*/trial.json")):
        record = _finished(path)
        if record is None:
            continue
        dst = ledger / "trials" / path.parent.name
        grid = record.get("sample_grid")
        if grid and Path(grid).is_file():
            if Path(grid).resolve() != (dst / "grid.png").resolve():
                _copy(Path(grid), dst / "grid.png")
            record["sample_grid"] = os.path.relpath(dst / "grid.png")  # from where the sweep ran (the repo)
        record.pop("traceback", None)
        atomic_write_bytes(dst / "trial.json", (json.dumps(record, indent=2, default=str) + "\n").encode())
    done = len(ledger_trials(ledger))
    state = json.loads((exp / "sweep_state.json").read_text())
    state.update(status="finished" if done >= expected else f"partial: {done} of {expected} trials",
                 ledger=True)
    atomic_write_bytes(ledger / "sweep_state.json", (json.dumps(state, indent=2, default=str) + "\n").encode())
    write_report(ledger)
    return done


def ledger_trials(ledger: Path) -> list[dict[str, Any]]:
    """The finished trials of a ledger (an absent ledger has none)."""
    return [r for p in sorted(Path(ledger).glob("trials/*/trial.json")) if (r := _finished(p)) is not None]


def flat_config(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested config dict as ``{dotted key: value}``."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(flat_config(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def config_differences(record: dict[str, Any], base: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """``{dotted key: (the trial's value, this sweep's value)}`` where a ledger trial's training config is not
    the one this sweep would build for the same parameters and seed (its base config or overrides changed).

    Not compared: the run folder (``out``, ``name``), ``cluster.stats_dir`` (set per machine), the folder of
    ``data.root`` (only its last part: the same dataset lives at other paths on other machines), and keys one
    side does not have (a key added to the schema after the trial ran takes its default)."""
    from clustergan.tune.sweep import build_trial_config

    trained = flat_config(record["train_config"])
    rebuilt = flat_config(build_trial_config(base, record["params"], record["seeds"][0], Path(trained["out"])).to_dict())
    for flat in (trained, rebuilt):
        if flat.get("data.root"):
            flat["data.root"] = Path(str(flat["data.root"])).name
    skip = {"out", "name", "cluster.stats_dir"}
    return {k: (trained[k], rebuilt[k]) for k in sorted(trained.keys() & rebuilt.keys())
            if k not in skip and trained[k] != rebuilt[k]}


def restore(ledger: Path, exp: Path, base: dict[str, Any] | None = None) -> list[dict[str, Any]]:
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
                f"--ledger {ledger}: trial {record['trial_id']} ({record.get('kind')}) was trained under another "
                f"configuration than this sweep's ({shown}). The ledger belongs to an earlier version of the "
                f"sweep: give a new --ledger folder, or delete this one to start over")
    for record in records:
        src = ledger / "trials" / record["trial_id"]
        dst = exp / "trials" / record["trial_id"]
        if not (dst / "trial.json").is_file():
            if (src / "grid.png").is_file():
                _copy(src / "grid.png", dst / "grid.png")
                record["sample_grid"] = str(dst / "grid.png")
            record["restored_from"] = str(ledger)
            atomic_write_bytes(dst / "trial.json", (json.dumps(record, indent=2, default=str) + "\n").encode())
    return records


def distributions(space: dict[str, ParamSpace], sampled: dict[str, Any]) -> dict[str, Any]:
    """Optuna distributions of the parameters a search trial sampled (the same define-by-run space as
    :class:`clustergan.tune.sweep.SpaceSampler`, ``<key>:off`` draws included)."""
    import optuna

    out = {}
    for key, s in space.items():
        if f"{key}:off" in sampled:
            out[f"{key}:off"] = optuna.distributions.FloatDistribution(0.0, 1.0)
        if key in sampled:
            if s.type == "int":
                out[key] = optuna.distributions.IntDistribution(int(s.low), int(s.high))
            else:
                out[key] = optuna.distributions.FloatDistribution(s.low, s.high, log=s.type == "loguniform")
    return out


def seed_study(study, space: dict[str, ParamSpace], records: list[dict[str, Any]]) -> int:
    """Add the ledger's finished search trials to an Optuna study as completed trials; returns how many.

    A trial needs its raw Optuna draws (``sampled``, written since the ledger exists); the objective values
    are the trial's seed means, in the study's order (NDB, JSD, LPIPS)."""
    import optuna

    added = 0
    for record in records:
        if record.get("kind") != "search":
            continue
        sampled = record.get("sampled")
        if not isinstance(sampled, dict):
            raise ClusterganError(f"ledger trial {record.get('trial_id')}: no 'sampled' parameters (written by an "
                                  "older clustergan); delete its folder from the ledger to run it again")
        unknown = [k for k in sampled if k.removesuffix(":off") not in space]
        if unknown:
            raise ClusterganError(f"ledger trial {record['trial_id']}: parameter(s) {unknown} are not in this "
                                  f"sweep's space {sorted(space)}; the ledger belongs to another sweep")
        study.add_trial(optuna.trial.create_trial(
            params=sampled, distributions=distributions(space, sampled),
            values=[float(record["metrics"][m]) for m in OBJECTIVES]))
        added += 1
    return added
