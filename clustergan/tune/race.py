"""Racing an explored experiment (``clustergan race EXPERIMENT``): its Pareto candidates and controls get more
seeds, round by round, until the decision rule (:mod:`clustergan.tune.race_rule`) can tell them apart.

Who enters: the finished feasible trials of the Pareto front, plus those within the equivalence margins of
it (a trial no front member would drop on the point estimates), at most ``max_candidates`` of them, best
Pareto rank first; trials above the sweep's FID ceiling or below its cond_gain floor never enter. The
experiment's baselines and controls always enter, as controls. Every entrant runs on the same seeds
(``seeds``, default ``0 .. schedule[-1] - 1``), so that differences are paired; a seed the explore stage
already trained under the same protocol is reused, never retrained.

Layout, under ``--out`` (default ``<experiment>/race``)::

    race.json                      the plan, the rounds run, the drops (written after every run)
    <candidate>/seed<S>/           a run folder (checkpoints/, samples/, metrics.json) per seed raced
    pareto.png                     the objectives' means with their 95% intervals (error bars)
    ranking.md, ranking.csv        per candidate: seeds, mean and 95% t-interval of every metric, the effect
                                   size against the best control (signed: positive is better), the round it
                                   was dropped in and by whom
    best_config.yaml               the first survivor that is not a control (by Pareto rank of the means,
                                   then NDB, JSD, LPIPS), with the survivors it cannot be told from

Runs train one at a time in this process (``train.threads`` of the trial's config), or with ``concurrent``
> 1 a round's runs side by side as Ray tasks (:mod:`clustergan.tune.race_runs`). A rerun resumes: every
finished candidate x seed is read back, an interrupted one continues from its last checkpoint.
"""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from clustergan.config import validate
from clustergan.errors import ClusterganError
from clustergan.jsonio import read_json, write_json
from clustergan.metrics.protocols import get_protocol
from clustergan.train.builders import ensure_clusters, with_data_root
from clustergan.tune.race_adopt import ADOPTED, adopt, parse_adopt
from clustergan.tune.race_report import write_ranking
from clustergan.tune.race_rule import round_alpha, rounds, smallest_p
from clustergan.tune.race_runs import (
    Candidate,
    metrics_of,
    run_concurrently,
    run_config,
    train_and_evaluate,
    usable,
)
from clustergan.tune.ranking import rank_trials
from clustergan.tune.records import TrialRecord, experiment_records
from clustergan.tune.space import build_trial_config, control_params
from clustergan.tune.sweep_config import MODES, OBJECTIVES, RaceConfig

STATE_FILE = "race.json"


class _BudgetSpent(Exception):
    pass


def _near_front(row: dict[str, Any], front: list[dict[str, Any]], margins: dict[str, float]) -> bool:
    """True when no front member leads ``row`` beyond a margin somewhere while trailing nowhere beyond one."""
    for f in front:
        lead = trail = False
        for key, mode in zip(OBJECTIVES, MODES, strict=True):
            d = (f["metrics"][key] - row["metrics"][key]) * (1 if mode == "max" else -1)
            lead = lead or d > margins[key]
            trail = trail or d < -margins[key]
        if lead and not trail:
            return False
    return True


def entrants(
    exp: Path, config: RaceConfig, trials: list[TrialRecord], base: dict[str, Any] | None = None
) -> list[Candidate]:
    """The race's candidates and controls, from the experiment's records (``trials``) and state, plus the
    race's own ``controls`` built on the sweep's ``base`` config (trained at the race's seeds)."""
    state = read_json(exp / "sweep_state.json", {})
    records = {r.trial_id: r for r in trials}
    rows = rank_trials(list(records.values()), state.get("fid_ceiling"), state.get("cond_gain_floor"), True)
    trained = [r for r in rows if r["group"] in ("finished", "infeasible") and records[r["trial"]].train_config]
    controls = [r for r in trained if r["kind"] != "search"]  # a control enters even when infeasible
    searched = [r for r in trained if r["kind"] == "search" and r["group"] == "finished"]
    front = [r for r in searched if r["pareto_rank"] == min((s["pareto_rank"] for s in searched), default=0)]
    near = [r for r in searched if r in front or (config.near_front and _near_front(r, front, config.margins))]
    chosen = near[: config.max_candidates]
    if not chosen:
        raise ClusterganError(f"{exp}: no finished, feasible searched trial to race (see its ranking.md)")

    def candidate(r: dict[str, Any]) -> Candidate:
        rec: TrialRecord = records[r["trial"]]
        explored = {s: res.metrics() for s, res in rec.per_seed.items()}
        return Candidate(
            name=rec.trial_id,
            kind=rec.kind,
            train_config=rec.train_config,
            explored=explored,
        )

    own = [candidate(r) for r in chosen] + [candidate(r) for r in controls]
    if config.controls and base is None:
        raise ClusterganError(
            f"race controls {sorted(config.controls)}: no base config to build them on; give the sweep with "
            f"--config (its base and overrides), or race an experiment that has its sweep.yaml"
        )
    taken = {c.kind for c in own}
    for name in config.controls:
        if f"control:{name}" in taken:
            raise ClusterganError(f"race controls: {name!r} is already a control of {exp}; give it another name")
        params = control_params(name, config.controls, base)
        train_config = build_trial_config(base, params, 0, "unused").to_dict()
        own.append(Candidate(name=f"race_{name}", kind=f"control:{name}", train_config=train_config))
    return own


def plan(
    candidates: list[Candidate],
    config: RaceConfig,
    seconds_per_run: float | None,
    raced: dict[str, set[int]] | None = None,
    adopted: dict[str, set[int]] | None = None,
) -> str:
    """The rounds, the runs each needs at most (no drops), and what they cost at ``seconds_per_run``; seeds
    the explore stage or an earlier call of the race (``raced``: name -> seeds) already ran are not counted,
    and adopted seeds not yet evaluated (``adopted``: name -> race seeds, adopted or, in a dry run, found
    adoptable) are counted apart, as not trained. A round where even a lead in every seed (the sign test's
    ``0.5**n``, which also judges t-test columns without spread) cannot pass its alpha is said to drop only
    on t-tests, or nothing."""
    seeds = config.seed_list()
    raced = raced or {}
    floor = "none" if config.cond_gain_floor is None else f"{config.cond_gain_floor:g}"
    lines = [
        f"race: {len(candidates)} entrants ({sum(c.control for c in candidates)} controls), seeds {seeds}, "
        f"{config.test} test, alpha {config.alpha:g}, cond_gain floor {floor}"
    ]
    adopted = adopted or {}
    total = taken = 0
    have = dict.fromkeys((c.name for c in candidates), 0)
    for r, n in enumerate(config.schedule):
        new = [
            (c.name, s)
            for c in candidates
            for s in seeds[have[c.name] : n]
            if str(c.seed(s)) not in c.explored and s not in raced.get(c.name, set())
        ]
        came = sum(s in adopted.get(name, set()) for name, s in new)
        runs = len(new) - came
        have = dict.fromkeys(have, n)
        total, taken = total + runs, taken + came
        alpha = round_alpha(config.alpha, config.schedule, r)
        note = ""
        if 2 * smallest_p("wilcoxon", n) > alpha:
            what = "nothing" if config.test == "wilcoxon" else "only where the differences vary (a t-test)"
            note = f" (a lead in all {n} seeds gives p >= {2 * 0.5**n:.3g} > alpha: this round drops {what})"
        more = f" (and {came} adopted, not trained)" if came else ""
        lines.append(f"  round {r + 1}: {n} seeds each, at most {runs} new runs{more}; alpha {alpha:.4g}{note}")
    cost = f", ~{total * seconds_per_run / 3600:.1f} h at {seconds_per_run:.0f} s per run" if seconds_per_run else ""
    more = f", and {taken} adopted, not trained" if taken else ""
    lines.append(f"  at most {total} runs in all{cost} (fewer once candidates drop){more}")
    for c in candidates:
        reused = sorted(int(s) for s in c.explored if int(s) in {c.seed(x) for x in seeds})
        shifted = f", seeds {[c.seed(x) for x in seeds]}" if c.seed_offset else ""
        came = f", adopted {sorted(c.seed(x) for x in adopted[c.name])}" if adopted.get(c.name) else ""
        lines.append(
            f"  {'control ' if c.control else ''}{c.name} ({c.kind}{shifted}): explored seeds reused {reused}{came}"
        )
    return "\n".join(lines)


def _seconds_per_run(trials: list[TrialRecord]) -> float | None:
    """The explore stage's pace per trained seed; a trial with an adopted seed (evaluated, not trained:
    ``sweep --adopt``) says nothing about what training costs and is left out."""
    done = [
        r
        for r in trials
        if r.finished and r.status == "finished" and not any(x.adopted_from for x in r.per_seed.values())
    ]
    return sum(r.finished - r.started for r in done) / max(1, sum(len(r.per_seed) for r in done)) if done else None


def _clusters_for(candidates: list[Candidate], exp: Path, out: Path, dry_run: bool, log) -> Path:
    """Where the entrants' cluster statistics are (``<folder>/clusters/k{K}``): the experiment's, as its
    explore stage trained with them; for a ledger, which keeps none, the race's own, computed from the same
    inputs (``ensure_clusters``: the dataset, encoder and k-means settings of the trials' configs)."""
    needed = {}
    for c in candidates:
        k = int((c.train_config.get("cluster") or {}).get("k") or 0)
        if k and not (exp / "clusters" / f"k{k}").is_dir():
            needed.setdefault(k, c)
    if not needed:
        return exp
    for k, c in sorted(needed.items()) if not dry_run else ():
        log(f"[race] {exp} keeps no clusters/k{k}: computing them into {out / 'clusters' / f'k{k}'}", flush=True)
        config = with_data_root(validate(c.train_config, source=f"race candidate {c.name}"))
        ensure_clusters(config, out / "clusters" / f"k{k}")
    for k in sorted({int((c.train_config.get("cluster") or {}).get("k") or 0) for c in candidates} - {0}):
        if k not in needed:  # the experiment's, copied so that every entrant reads from one folder
            if not (out / "clusters" / f"k{k}").exists() and not dry_run:
                shutil.copytree(exp / "clusters" / f"k{k}", out / "clusters" / f"k{k}")
    return out


def run_race(
    experiment: str | Path,
    config: RaceConfig,
    out: str | Path | None = None,
    dry_run: bool = False,
    adopt: list[str] | None = None,
    base: dict[str, Any] | None = None,
    log=print,
) -> Path:
    """Race the experiment's entrants (see the module's docstring); ``adopt``: ``--adopt NAME=FOLDER`` items
    (:mod:`clustergan.tune.race_adopt`); ``base``: the sweep's base config, overrides applied (what the
    race's own controls are built on). Returns the race folder."""
    exp = Path(experiment)
    if not (exp / "sweep_state.json").is_file():
        raise ClusterganError(f"{exp}: not a sweep experiment or ledger (no sweep_state.json); give its folder")
    protocol = read_json(exp / "sweep_state.json").get("protocol", "sweep")
    _check_floor(config, protocol)
    trials = experiment_records(exp)
    candidates = entrants(exp, config, trials, base)
    out = Path(out) if out is not None else exp / "race"
    return race_entrants(
        candidates,
        config,
        out,
        protocol,
        clusters=_clusters_for(candidates, exp, out, dry_run, log),
        seconds_per_run=_seconds_per_run(trials),
        about={"experiment": str(exp)},  # as given: a committed race.json names no machine path
        dry_run=dry_run,
        adopt_from=parse_adopt(adopt or [], candidates),
        log=log,
    )


def _check_floor(config: RaceConfig, protocol: str) -> None:
    """A cond_gain floor needs a protocol that computes cond_gain: said before any cluster or training work."""
    runs_metrics = get_protocol(protocol).metrics
    if config.cond_gain_floor is not None and "cond_gain" not in runs_metrics:
        raise ClusterganError(
            f"race.cond_gain_floor {config.cond_gain_floor:g} needs cond_gain, which the {protocol!r} protocol "
            f"does not compute (it runs {', '.join(runs_metrics)}); race under a protocol that computes it, or "
            "set race.cond_gain_floor: null"
        )


def race_entrants(
    candidates: list[Candidate],
    config: RaceConfig,
    out: Path,
    protocol: str,
    clusters: Path,
    seconds_per_run: float | None = None,
    about: dict[str, Any] | None = None,
    dry_run: bool = False,
    adopt_from: dict[str, Path] | None = None,
    log=print,
) -> Path:
    """Race ``candidates`` under ``protocol`` into ``out``, their cluster statistics read from
    ``clusters/clusters/k{K}``; ``about`` goes into ``race.json``. :func:`run_race` calls it with an
    experiment's entrants; a script may give its own (``benchmarks/race_synth.py``). ``adopt_from``:
    ``{name: folder}`` of runs trained elsewhere, adopted first (a dry run checks them and copies nothing)."""
    seeds = config.seed_list()
    by_name = {c.name: c for c in candidates}
    _check_floor(config, protocol)
    adopted = {
        name: set(adopt(by_name[name], folder, seeds, out, clusters, protocol, log, dry_run))
        for name, folder in (adopt_from or {}).items()
    }

    def path(name: str, seed: int) -> Path:
        return out / name / f"seed{by_name[name].seed(seed)}"

    def action(name: str, seed: int) -> str:
        return "evaluate (adopted checkpoints)" if (path(name, seed) / ADOPTED).is_file() else "train"

    def finished(c: Candidate, seed: int) -> bool:
        return usable(metrics_of(path(c.name, seed) / "metrics.json", protocol))

    raced = {c.name: {s for s in seeds if finished(c, s)} for c in candidates}
    for c in candidates:  # adopted by this call (or, in a dry run, found to be) or by an earlier one
        adopted[c.name] = adopted.get(c.name, set()) | {s for s in seeds if (path(c.name, s) / ADOPTED).is_file()}
    log(plan(candidates, config, seconds_per_run, raced, adopted), flush=True)
    if dry_run:
        return out
    out.mkdir(parents=True, exist_ok=True)
    state = {"config": config.model_dump(), "protocol": protocol, **(about or {}), "runs": {}}
    started, trained = time.time(), [0]

    def known(name: str, seed: int) -> dict[str, float] | None:
        got = by_name[name].explored.get(str(by_name[name].seed(seed)))
        return got if usable(got) else metrics_of(path(name, seed) / "metrics.json", protocol)

    def spent() -> str | None:
        if config.max_runs is not None and trained[0] >= config.max_runs:
            return f"--max-runs {config.max_runs}"
        if config.time_limit_s is not None and time.time() - started >= config.time_limit_s:
            return f"time limit {config.time_limit_s:.0f} s"
        return None

    def config_of(name: str, seed: int):
        c = by_name[name]
        return run_config(c.train_config, c.seed(seed), path(name, seed), clusters, f"{c.name} ({c.kind})")

    def prepare(requests: dict[str, list[int]]) -> None:
        """concurrent > 1: the round's missing runs side by side (as many as the budget allows)."""
        missing = [(n, seeds[i]) for n, indices in requests.items() for i in indices if not usable(known(n, seeds[i]))]
        if config.max_runs is not None:
            missing = missing[: max(config.max_runs - trained[0], 0)]
        if not missing or spent():
            return
        for name, seed in missing:
            log(
                f"[race] {name} ({by_name[name].kind}) seed {by_name[name].seed(seed)}: {action(name, seed)}",
                flush=True,
            )

        def done(label: str, where: dict[str, Any]) -> None:
            trained[0] += 1
            log(f"[race] {label}: done on {where['host']} (pid {where['pid']})", flush=True)

        runs = [(f"{n} seed {by_name[n].seed(s)}", config_of(n, s)) for n, s in missing]
        run_concurrently(runs, protocol, config.concurrent, config.cpus_per_run, done)

    def draw(name: str, indices: list[int]) -> np.ndarray:
        c = by_name[name]
        rows = []
        for i in indices:
            seed = seeds[i]
            run_dir = path(name, seed)
            got = known(name, seed)
            if not usable(got):
                if spent():
                    raise _BudgetSpent(spent())
                log(f"[race] {name} ({c.kind}) seed {c.seed(seed)}: {action(name, seed)}", flush=True)
                train_and_evaluate(config_of(name, seed), protocol, c.seed(seed))
                got = metrics_of(run_dir / "metrics.json", protocol)
                trained[0] += 1
                if not usable(got):
                    raise ClusterganError(
                        f"{run_dir / 'metrics.json'}: the {protocol} evaluation gave "
                        f"{ {m: (got or {}).get(m) for m in OBJECTIVES} }; a race needs finite {', '.join(OBJECTIVES)}."
                        " Look at the run (its samples/ and log), fix or delete the folder, and rerun the race"
                    )
            state["runs"].setdefault(name, {})[str(c.seed(seed))] = got
            write_json(out / STATE_FILE, state)
            if config.cond_gain_floor is not None and not math.isfinite(got.get("cond_gain", math.nan)):
                raise ClusterganError(
                    f"{run_dir / 'metrics.json'}: no cond_gain under the {protocol} protocol, which the race's "
                    f"cond_gain_floor {config.cond_gain_floor:g} needs; race under a protocol that computes it, "
                    "or set race.cond_gain_floor: null"
                )
            rows.append(
                [got[m] for m in OBJECTIVES] + ([got["cond_gain"]] if config.cond_gain_floor is not None else [])
            )
        return np.array(rows, dtype=float)

    margins = tuple(config.margins[m] for m in OBJECTIVES)
    survivors, drops, status = list(by_name), [], "finished"
    try:  # a spent budget ends the race after the rounds it completed
        for _, after, now in rounds(
            draw,
            list(by_name),
            config.schedule,
            OBJECTIVES,
            MODES,
            margins,
            config.alpha,
            config.test,
            prepare=prepare if config.concurrent > 1 else None,
            gain_floor=config.cond_gain_floor,
        ):
            survivors, drops = after, drops + now
    except _BudgetSpent as e:
        status = f"partial: {e} spent"
    state.update(status=status, survivors=survivors, drops=[asdict(d) for d in drops], finished=time.time())
    write_json(out / STATE_FILE, state)
    log(write_ranking(out, candidates, state, drops, survivors), flush=True)
    return out
