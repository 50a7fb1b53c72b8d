"""``clustergan race --adopt CANDIDATE=FOLDER``: runs trained elsewhere (a reproduction's method folder, with
``seed<N>/`` run folders) taken as a race entrant's seeds instead of training them again.

A seed is adopted only when it is the same training as the race would run for that entrant and seed
(:mod:`clustergan.train.adopt`, the rules of every ``--adopt``). What comes over:

- the run's ``metrics.json`` when it was evaluated under the race's protocol (nothing to do then);
- otherwise its checkpoints, when the last one is at the budget's final epoch: the race evaluates it and
  trains nothing.

Each adopted seed's folder gets ``adopted.json`` (where it came from, what came over); a seed of the race
that the folder does not have, or that the explore stage or the race has already run, is left to the race.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from clustergan.errors import ClusterganError
from clustergan.jsonio import write_json
from clustergan.train.adopt import ADOPTED, copy_training, last_epoch, not_the_same, short_of_budget
from clustergan.train.builders import with_data_root
from clustergan.tune.race_runs import METRICS_FILE, Candidate, metrics_of, run_config, usable


def parse_adopt(items: list[str], candidates: list[Candidate]) -> dict[str, Path]:
    """``["NAME=FOLDER", ...]`` -> ``{candidate name: folder}``; NAME is a trial id or a kind such as
    ``baseline:pix2pix`` or ``control:clustergan``."""
    by_kind = {c.kind: c.name for c in candidates if c.control}
    names = {c.name for c in candidates}
    out = {}
    for item in items:
        name, sep, folder = item.partition("=")
        if not sep or not folder:
            raise ClusterganError(
                f"--adopt {item!r}: give CANDIDATE=FOLDER, e.g. baseline:pix2pix=runs/cpu/facades/pix2pix"
            )
        name = by_kind.get(name, name)
        if name not in names:
            known = sorted(names | set(by_kind))
            raise ClusterganError(f"--adopt {item!r}: {name!r} is not an entrant of this race; entrants: {known}")
        if not Path(folder).is_dir():
            raise ClusterganError(f"--adopt {item!r}: {folder} is not a folder; give one holding seed<N>/ run folders")
        out[name] = Path(folder)
    return out


def adopt(
    candidate: Candidate,
    folder: Path,
    seeds: list[int],
    out: Path,
    clusters: Path,
    protocol: str,
    log=print,
    dry_run: bool = False,
) -> list[int]:
    """Adopt the race seeds ``seeds`` of ``candidate`` from ``folder``'s ``seed<N>/`` run folders into the
    race folder ``out``; returns the race seeds adopted. A seed there that is not the same training is an
    error naming the differences. ``dry_run``: the same checks, nothing copied (the cluster statistics are
    compared only where the race already has them: a dry run computes none)."""
    have = {int(m.group(1)): p for p in folder.iterdir() if (m := re.fullmatch(r"seed(\d+)", p.name))}
    adopted = []
    for race_seed in seeds:
        seed = candidate.seed(race_seed)
        source, target = have.get(seed), out / candidate.name / f"seed{seed}"
        if (
            source is None
            or usable(candidate.explored.get(str(seed)))  # the explore stage's own result stands
            or usable(metrics_of(target / METRICS_FILE, protocol))
            or (target / ADOPTED).is_file()
        ):
            continue
        # the procedural dataset's root, as the run fills it in
        config = with_data_root(run_config(candidate.train_config, seed, target, clusters, candidate.name))
        compared = config.cluster.stats_dir if config.cluster.k else None
        if dry_run and compared and not Path(compared).is_dir():
            compared = None
        why = not_the_same(source, config.to_dict(), compared)
        if why:
            raise ClusterganError(
                f"--adopt {candidate.name}={folder}: {source.name} is not the training this race runs ({why}); "
                "leave it out and let the race train it"
            )
        evaluated = usable(metrics_of(source / METRICS_FILE, protocol))
        short = None if evaluated else short_of_budget(source, config.train.epochs + config.train.epochs_decay)
        if short:
            raise ClusterganError(
                f"--adopt {candidate.name}={folder}: {source.name} has no {METRICS_FILE} under the race's "
                f"protocol {protocol!r}, and {short}; let the race train it"
            )
        what = METRICS_FILE if evaluated else f"checkpoints to epoch {last_epoch(source)}, evaluated by the race"
        adopted.append(race_seed)
        if dry_run:
            unchecked = " (its clusters are compared when the race runs)" if config.cluster.k and not compared else ""
            log(f"[race] {candidate.name} seed {seed}: would be adopted from {source} ({what}){unchecked}", flush=True)
            continue
        target.mkdir(parents=True, exist_ok=True)
        if evaluated:
            shutil.copy2(source / "config.json", target / "config.json")
            shutil.copy2(source / METRICS_FILE, target / METRICS_FILE)
        else:
            copy_training(source, target)
        write_json(target / ADOPTED, {"adopted_from": str(source.resolve()), "came_over": what})
        log(f"[race] {candidate.name} seed {seed}: adopted from {source} ({what})", flush=True)
    return adopted
