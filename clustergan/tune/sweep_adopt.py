"""``clustergan sweep --adopt KIND=FOLDER``: a fixed trial's seeds (a baseline's, ``baseline:pix2pix``, or a
control's, ``control:<name>``) taken from runs trained elsewhere, such as a reproduction's method folder of
``seed<N>/`` runs, instead of trained again.

The driver checks every seed of the sweep that the folder has before any trial starts (:func:`check`, then
:func:`check_clusters` once the statistics are computed): each must be the same training as the trial would
run (:mod:`clustergan.train.adopt`) and have a checkpoint at the budget's last epoch. The trial then copies
that seed's training into its own run folder (:func:`take`) and resumes from it, so it trains nothing and
evaluates the run under the sweep's protocol, as it would one it trained. A seed the folder lacks is trained
as usual. The trial reads the folder where it runs: on a cluster, give a path every node sees.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from clustergan.config import TrainConfig
from clustergan.errors import ClusterganError
from clustergan.jsonio import read_json, write_json
from clustergan.train.adopt import ADOPTED, copy_training, not_the_same, other_clusters, short_of_budget
from clustergan.train.builders import with_data_root
from clustergan.train.checkpoint import latest_checkpoint
from clustergan.tune.space import build_trial_config, fixed_kind, fixed_params, fixed_trials
from clustergan.tune.sweep_config import SweepConfig


def parse_adopt(items: list[str], sweep: SweepConfig) -> dict[str, str]:
    """``["KIND=FOLDER", ...]`` -> ``{fixed trial kind: absolute folder}``."""
    kinds = [fixed_kind(v) for v in fixed_trials(sweep)]
    out = {}
    for item in items:
        kind, sep, folder = item.partition("=")
        if not sep or not folder:
            raise ClusterganError(
                f"--adopt {item!r}: give KIND=FOLDER, e.g. baseline:pix2pix=runs/reproduce/cpu50/facades/pix2pix"
            )
        if kind not in kinds:
            raise ClusterganError(
                f"--adopt {item!r}: {kind!r} is not a fixed trial of sweep {sweep.name!r}; its fixed trials: "
                f"{kinds or 'none (baselines: false and no controls)'}"
            )
        if not Path(folder).is_dir():
            raise ClusterganError(f"--adopt {item!r}: {folder} is not a folder; give one holding seed<N>/ run folders")
        out[kind] = str(Path(folder).resolve())
    return out


def _why_not(source: Path, config: TrainConfig, clusters: bool) -> str | None:
    """Why ``source`` cannot stand for the run ``config`` trains, or None when it can; ``clusters``: compare
    the statistics too (``config.cluster.stats_dir``, once the sweep has computed them)."""
    config = with_data_root(config)  # the procedural dataset's root, as the run fills it in
    why = not_the_same(source, config.to_dict(), config.cluster.stats_dir if clusters and config.cluster.k else None)
    if why:
        return f"not the training the sweep runs ({why})"
    short = short_of_budget(source, config.train.epochs + config.train.epochs_decay)
    return f"not finished: {short}" if short else None


def _seeds(adopt: dict[str, str], sweep: SweepConfig, base: dict[str, Any]):
    """``(kind, folder, seed, source, config)`` for each adopted kind and each seed of the sweep; ``source``
    is None where the folder lacks that seed."""
    for kind, folder in adopt.items():
        params = fixed_params(kind, sweep.controls, base)
        for seed in sweep.seeds:
            source = Path(folder) / f"seed{seed}"
            yield (
                kind,
                folder,
                seed,
                source if source.is_dir() else None,
                build_trial_config(base, params, seed, source),
            )


def check(adopt: dict[str, str], sweep: SweepConfig, base: dict[str, Any]) -> list[str]:
    """The driver's check before anything is written (``base``: the sweep's base config, overrides
    applied): a line per kind and seed saying what will happen; a seed in a folder that is not the same
    training, or not finished, is an error naming why. The cluster statistics are compared once computed
    (:func:`check_clusters`)."""
    lines = []
    for kind, folder, seed, source, config in _seeds(adopt, sweep, base):
        if source is None:
            lines.append(f"{kind} seed {seed}: not in {folder}, trained")
            continue
        why = _why_not(source, config, clusters=False)  # the base config's stats_dir is not the trials'
        if why:
            raise ClusterganError(f"--adopt {kind}={folder}: {source.name} is {why}; leave it out to train it")
        lines.append(f"{kind} seed {seed}: adopted from {source}, evaluated under protocol {sweep.protocol!r}")
    return lines


def check_clusters(adopt: dict[str, str], sweep: SweepConfig, base: dict[str, Any], cluster_dirs: dict[int, str]):
    """After the sweep's statistics are computed (``cluster_dirs``, by k): each adopted seed of a clustered
    fixed trial must have trained with the same statistics, or it is an error naming both folders."""
    for kind, folder, _, source, config in _seeds(adopt, sweep, base):
        why = other_clusters(source, cluster_dirs[config.cluster.k]) if source and config.cluster.k else None
        if why:
            raise ClusterganError(
                f"--adopt {kind}={folder}: {source.name} is not the training the sweep runs ({why}); "
                "leave it out to train it"
            )


def take(adopt: dict[str, str], kind: str, config: TrainConfig) -> str | None:
    """In the trial, before training ``config``'s run: copy the adopted seed's training into the run folder
    (unless the run already has checkpoints of its own); returns the source folder, None when the run's
    training is its own. A retried trial whose copy came over before finds it by its ``adopted.json``."""
    came = read_json(config.run_dir / ADOPTED, {}).get("adopted_from")
    if came:
        return came
    folder = adopt.get(kind)
    source = Path(folder) / f"seed{config.seed}" if folder else None
    if source is None or not source.is_dir() or latest_checkpoint(config.run_dir / "checkpoints") is not None:
        return None
    why = _why_not(source, config, clusters=True)
    if why:  # checked by the driver; changed since
        raise ClusterganError(f"--adopt {kind}={folder}: {source.name} is {why}")
    copy_training(source, config.run_dir)
    write_json(config.run_dir / ADOPTED, {"adopted_from": str(source), "came_over": "checkpoints"})
    return str(source)
