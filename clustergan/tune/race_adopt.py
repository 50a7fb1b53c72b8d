"""``clustergan race --adopt CANDIDATE=FOLDER``: runs trained elsewhere (a reproduction's method folder, with
``seed<N>/`` run folders) taken as a race entrant's seeds instead of training them again.

The rules are the reproduction's ``--adopt`` rules: a seed is adopted only when it is the same training as
the race would run for that entrant and seed (:func:`clustergan.config.training_differences`: everything but
the run folder and the place of the data and clusters), and for a clustered run the same cluster statistics
as the race's. What comes over:

- the run's ``metrics.json`` when it was evaluated under the race's protocol (nothing to do then);
- otherwise its checkpoints, when the last one is at the budget's final epoch: the race evaluates it and
  trains nothing.

Each adopted seed's folder gets ``adopted.json`` (where it came from, what came over); a seed of the race
that the folder does not have, or that the race has already run, is left to the race.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from clustergan.clustering import ClusterStats
from clustergan.config import training_differences
from clustergan.errors import ClusterganError
from clustergan.jsonio import read_json, write_json
from clustergan.train.builders import with_data_root
from clustergan.train.checkpoint import list_checkpoints
from clustergan.tune.race_runs import METRICS_FILE, Candidate, metrics_of, run_config, usable

ADOPTED = "adopted.json"
COPIED = ("checkpoints", "samples", "tensorboard")


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


def _differences(source: Path, mine: dict, clusters_dir: str | None) -> str | None:
    """Why the run in ``source`` is not the training ``mine``, or None when it is."""
    theirs = read_json(source / "config.json", {}).get("config")
    if not theirs:
        return f"no config.json in {source}"
    differ = training_differences(theirs, mine, str(source / "config.json"))
    if differ:
        return "; ".join(f"{k}: {a!r} there, {b!r} here" for k, (a, b) in list(differ.items())[:6])
    if clusters_dir:
        src = (theirs.get("cluster") or {}).get("stats_dir")
        if not src or not Path(src).is_dir():
            return f"its cluster statistics ({src}) are not on this machine to compare with the race's"
        if not ClusterStats.load(src).same_as(ClusterStats.load(clusters_dir)):
            return f"its cluster statistics ({src}) are not the race's ({clusters_dir})"
    return None


def adopt(
    candidate: Candidate, folder: Path, seeds: list[int], out: Path, clusters: Path, protocol: str, log=print
) -> list[int]:
    """Adopt the race seeds ``seeds`` of ``candidate`` from ``folder``'s ``seed<N>/`` run folders into the
    race folder ``out``; returns the training seeds adopted. A seed there that is not the same training is
    an error naming the differences."""
    have = {int(m.group(1)): p for p in folder.iterdir() if (m := re.fullmatch(r"seed(\d+)", p.name))}
    adopted = []
    for race_seed in seeds:
        seed = candidate.seed(race_seed)
        source, target = have.get(seed), out / candidate.name / f"seed{seed}"
        if source is None or usable(metrics_of(target / METRICS_FILE, protocol)) or (target / ADOPTED).is_file():
            continue
        # the procedural dataset's root, as the run fills it in
        config = with_data_root(run_config(candidate.train_config, seed, target, clusters, candidate.name))
        why = _differences(source, config.to_dict(), config.cluster.stats_dir if config.cluster.k else None)
        if why:
            raise ClusterganError(
                f"--adopt {candidate.name}={folder}: {source.name} is not the training this race runs ({why}); "
                "leave it out and let the race train it"
            )
        total = config.train.epochs + config.train.epochs_decay
        found = list_checkpoints(source / "checkpoints")
        evaluated = usable(metrics_of(source / METRICS_FILE, protocol))
        if not evaluated and (not found or found[-1][0] < total):
            raise ClusterganError(
                f"--adopt {candidate.name}={folder}: {source.name} has neither a {METRICS_FILE} under the "
                f"race's protocol {protocol!r} nor a checkpoint at epoch {total} to evaluate; let the race train it"
            )
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / "config.json", target / "config.json")
        if evaluated:
            shutil.copy2(source / METRICS_FILE, target / METRICS_FILE)
        else:
            for name in COPIED:
                if (source / name).is_dir():
                    shutil.rmtree(target / name, ignore_errors=True)
                    shutil.copytree(source / name, target / name)
        what = METRICS_FILE if evaluated else f"checkpoints to epoch {found[-1][0]}, evaluated by the race"
        write_json(target / ADOPTED, {"adopted_from": str(source.resolve()), "came_over": what})
        log(f"[race] {candidate.name} seed {seed}: adopted from {source} ({what})", flush=True)
        adopted.append(seed)
    return adopted
