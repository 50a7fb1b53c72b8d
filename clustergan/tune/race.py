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
    ranking.md, ranking.csv        per candidate: seeds, mean and 95% t-interval of every metric, the effect
                                   size against the best control (signed: positive is better), the round it
                                   was dropped in and by whom
    best_config.yaml               the first survivor that is not a control (by Pareto rank of the means,
                                   then NDB, JSD, LPIPS), with the survivors it cannot be told from

Runs train one at a time in this process (``train.threads`` of the trial's config); a rerun resumes: every
finished candidate x seed is read back, an interrupted one continues from its last checkpoint.
"""

from __future__ import annotations

import copy
import csv
import io
import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from clustergan.cache import atomic_write_bytes
from clustergan.config import validate
from clustergan.errors import ClusterganError
from clustergan.jsonio import read_json, write_json
from clustergan.tune.best_config import write_trainable_config
from clustergan.tune.race_rule import Drop, round_alpha, rounds, smallest_p
from clustergan.tune.ranking import pareto_ranks, rank_trials
from clustergan.tune.records import METRICS, TrialRecord, experiment_records
from clustergan.tune.sweep_config import MODES, OBJECTIVES, RaceConfig

STATE_FILE = "race.json"


class Candidate(BaseModel):
    """One entrant: a trial of the experiment (its training config as trained, seed and folder replaced)."""

    model_config = ConfigDict(extra="forbid")
    name: str  # the trial id
    kind: str  # "search", "baseline:<name>" or "control:<name>"
    train_config: dict[str, Any]
    explored: dict[str, dict[str, float]] = {}  # {str(seed): metrics} the explore stage already has

    @property
    def control(self) -> bool:
        """A baseline or hand-set control: it enters every race and is never the race's answer."""
        return self.kind != "search"


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


def entrants(exp: Path, config: RaceConfig, trials: list[TrialRecord]) -> list[Candidate]:
    """The race's candidates and controls, from the experiment's records (``trials``) and state."""
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

    return [candidate(r) for r in chosen] + [candidate(r) for r in controls]


def _run_config(c: Candidate, seed: int, out: Path, exp: Path):
    data = copy.deepcopy(c.train_config)
    data["seed"], data["out"] = seed, str(out)
    k = int(data.get("cluster", {}).get("k") or 0)
    if k:
        data["cluster"]["stats_dir"] = str((exp / "clusters" / f"k{k}").resolve())
    return validate(data, source=f"race candidate {c.name} ({c.kind}) seed {seed}")


def _metrics(path: Path, protocol: str) -> dict[str, float] | None:
    """The run's metrics under ``protocol``, or None when it has none yet (or another protocol's)."""
    done = read_json(path, {})
    if done.get("protocol", {}).get("name") != protocol:
        return None
    return {m: float(done[m]) for m in METRICS if isinstance(done.get(m), (int, float))}


def _usable(got: dict[str, float] | None) -> bool:
    """Every objective there and finite: what a race can compare."""
    return got is not None and all(math.isfinite(got.get(m, math.nan)) for m in OBJECTIVES)


def plan(
    candidates: list[Candidate],
    config: RaceConfig,
    seconds_per_run: float | None,
    raced: dict[str, set[int]] | None = None,
) -> str:
    """The rounds, the runs each needs at most (no drops), and what they cost at ``seconds_per_run``; seeds
    the explore stage or an earlier call of the race (``raced``: name -> seeds) already ran are not counted.
    A round where even a lead in every seed (the sign test's ``0.5**n``, which also judges t-test columns
    without spread) cannot pass its alpha is said to drop only on t-tests, or nothing."""
    seeds = config.seed_list()
    raced = raced or {}
    lines = [f"race: {len(candidates)} entrants ({sum(c.control for c in candidates)} controls), seeds {seeds}"]
    total = 0
    have = dict.fromkeys((c.name for c in candidates), 0)
    for r, n in enumerate(config.schedule):
        runs = sum(
            1
            for c in candidates
            for s in seeds[have[c.name] : n]
            if str(s) not in c.explored and s not in raced.get(c.name, set())
        )
        have = dict.fromkeys(have, n)
        total += runs
        alpha = round_alpha(config.alpha, config.schedule, r)
        note = ""
        if 2 * smallest_p("wilcoxon", n) > alpha:
            what = "nothing" if config.test == "wilcoxon" else "only where the differences vary (a t-test)"
            note = f" (a lead in all {n} seeds gives p >= {2 * 0.5**n:.3g} > alpha: this round drops {what})"
        lines.append(f"  round {r + 1}: {n} seeds each, at most {runs} new runs; alpha {alpha:.4g}{note}")
    cost = f", ~{total * seconds_per_run / 3600:.1f} h at {seconds_per_run:.0f} s per run" if seconds_per_run else ""
    lines.append(f"  at most {total} runs in all{cost} (fewer once candidates drop)")
    for c in candidates:
        reused = sorted(int(s) for s in c.explored if int(s) in seeds)
        lines.append(f"  {'control ' if c.control else ''}{c.name} ({c.kind}): explored seeds reused {reused}")
    return "\n".join(lines)


def _seconds_per_run(trials: list[TrialRecord]) -> float | None:
    done = [r for r in trials if r.finished and r.status == "finished"]
    return sum(r.finished - r.started for r in done) / max(1, sum(len(r.per_seed) for r in done)) if done else None


def run_race(
    experiment: str | Path, config: RaceConfig, out: str | Path | None = None, dry_run: bool = False, log=print
) -> Path:
    """Race the experiment's entrants (see the module's docstring); returns the race folder."""
    from clustergan.train.evaluate import evaluate_run
    from clustergan.train.launch import run_training

    exp = Path(experiment)
    if not (exp / "sweep_state.json").is_file():
        raise ClusterganError(f"{exp}: not a sweep experiment or ledger (no sweep_state.json); give its folder")
    out = Path(out) if out is not None else exp / "race"
    protocol = read_json(exp / "sweep_state.json").get("protocol", "sweep")
    trials = experiment_records(exp)
    candidates = entrants(exp, config, trials)

    def finished(c: Candidate, seed: int) -> bool:
        return _usable(_metrics(out / c.name / f"seed{seed}" / "metrics.json", protocol))

    raced = {c.name: {s for s in config.seed_list() if finished(c, s)} for c in candidates}
    log(plan(candidates, config, _seconds_per_run(trials), raced), flush=True)
    if dry_run:
        return out
    seeds = config.seed_list()
    by_name = {c.name: c for c in candidates}
    out.mkdir(parents=True, exist_ok=True)
    state = {"config": config.model_dump(), "protocol": protocol, "experiment": str(exp.resolve()), "runs": {}}
    started, trained = time.time(), [0]

    def draw(name: str, indices: list[int]) -> np.ndarray:
        c = by_name[name]
        rows = []
        for i in indices:
            seed = seeds[i]
            run_dir = out / name / f"seed{seed}"
            got = c.explored.get(str(seed))
            got = got if _usable(got) else _metrics(run_dir / "metrics.json", protocol)
            if not _usable(got):
                if config.max_runs is not None and trained[0] >= config.max_runs:
                    raise _BudgetSpent(f"--max-runs {config.max_runs}")
                if config.time_limit_s is not None and time.time() - started >= config.time_limit_s:
                    raise _BudgetSpent(f"time limit {config.time_limit_s:.0f} s")
                log(f"[race] {name} ({c.kind}) seed {seed}: train", flush=True)
                cfg = run_training(_run_config(c, seed, run_dir, exp), resume=True)
                evaluate_run(cfg.run_dir, protocol=protocol, seed=seed, out=run_dir / "metrics.json")
                got = _metrics(run_dir / "metrics.json", protocol)
                trained[0] += 1
                if not _usable(got):
                    raise ClusterganError(
                        f"{run_dir / 'metrics.json'}: the {protocol} evaluation gave "
                        f"{ {m: (got or {}).get(m) for m in OBJECTIVES} }; a race needs finite {', '.join(OBJECTIVES)}."
                        " Look at the run (its samples/ and log), fix or delete the folder, and rerun the race"
                    )
            state["runs"].setdefault(name, {})[str(seed)] = got
            write_json(out / STATE_FILE, state)
            rows.append([got[m] for m in OBJECTIVES])
        return np.array(rows, dtype=float)

    margins = tuple(config.margins[m] for m in OBJECTIVES)
    survivors, drops, status = list(by_name), [], "finished"
    try:  # a spent budget ends the race after the rounds it completed
        for _, after, now in rounds(
            draw, list(by_name), config.schedule, OBJECTIVES, MODES, margins, config.alpha, config.test
        ):
            survivors, drops = after, drops + now
    except _BudgetSpent as e:
        status = f"partial: {e} spent"
    state.update(status=status, survivors=survivors, drops=[asdict(d) for d in drops], finished=time.time())
    write_json(out / STATE_FILE, state)
    log(write_ranking(out, candidates, state, drops, survivors), flush=True)
    return out


def _interval(values: list[float]) -> tuple[float, float, float]:
    from scipy import stats

    mean = float(np.mean(values))
    if len(values) < 2 or np.std(values) == 0:
        return mean, mean, mean
    lo, hi = stats.t.interval(0.95, len(values) - 1, loc=mean, scale=stats.sem(values))
    return mean, float(lo), float(hi)


def write_ranking(out: Path, candidates: list[Candidate], state: dict, drops: list[Drop], survivors: list[str]) -> str:
    """``ranking.csv`` / ``ranking.md`` and ``best_config.yaml``; returns the markdown table."""
    dropped = {d.dropped: d for d in drops}
    rows = []
    for c in candidates:
        runs = state["runs"].get(c.name, {})
        row: dict[str, Any] = {"candidate": c.name, "kind": c.kind, "seeds": len(runs)}
        for m in METRICS:
            vals = [r[m] for r in runs.values() if m in r]
            if vals:
                row[f"{m}_mean"], row[f"{m}_lo"], row[f"{m}_hi"] = _interval(vals)
        d = dropped.get(c.name)
        row["dropped_round"] = d.round + 1 if d else None
        row["dropped_by"] = d.by if d else None
        rows.append(row)
    controls = [r for r, c in zip(rows, candidates, strict=True) if c.control]
    # a race stopped by its budget may leave a survivor without a single seed: it is listed, not ranked
    alive = [r for r in rows if r["candidate"] in survivors and all(f"{m}_mean" in r for m in OBJECTIVES)]
    ranks = pareto_ranks([{m: r[f"{m}_mean"] for m in OBJECTIVES} for r in alive]) if alive else []
    for r, pr in zip(alive, ranks, strict=True):
        r["pareto_rank"] = pr

    def tie_break(r):
        # a missing mean sorts last whatever the objective's direction
        means = [
            math.inf if f"{m}_mean" not in r else r[f"{m}_mean"] * (-1 if mode == "max" else 1)
            for m, mode in zip(OBJECTIVES, MODES, strict=True)
        ]
        return (r.get("pareto_rank", math.inf), *means, r["candidate"])

    best_control = min((r for r in controls if r["candidate"] in survivors), key=tie_break, default=None)
    best_control = best_control or (min(controls, key=tie_break) if controls else None)
    for r in rows:
        for m in OBJECTIVES:
            r[f"{m}_effect"] = _effect(state, r["candidate"], best_control["candidate"], m) if best_control else None
    rows.sort(key=lambda r: (r["candidate"] not in survivors, tie_break(r)))
    columns = ["candidate", "kind", "seeds", "pareto_rank", "dropped_round", "dropped_by"]
    columns += [f"{m}_{part}" for m in METRICS for part in ("mean", "lo", "hi") if any(f"{m}_mean" in r for r in rows)]
    columns += [f"{m}_effect" for m in OBJECTIVES]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(out / "ranking.csv", buffer.getvalue().encode())
    shown = ["candidate", "kind", "seeds", "dropped"] + [m for m in METRICS if f"{m}_mean" in columns]
    against = f"{best_control['candidate']} ({best_control['kind']})" if best_control else "no control"
    lines = [
        f"Race of {state['experiment']} ({state.get('status', 'running')}; protocol {state['protocol']}): "
        f"mean [95% t-interval] over the seeds each candidate got; effect sizes (paired mean / sd of the "
        f"differences, positive: better) against {against} in ranking.csv",
        "",
        "| " + " | ".join(shown) + " |",
        "|" + "---|" * len(shown),
    ]
    for r in rows:
        cells = [r["candidate"], r["kind"], str(r["seeds"])]
        cells.append(f"round {r['dropped_round']} by {r['dropped_by']}" if r["dropped_round"] else "survives")
        for m in shown[4:]:
            cells.append(f"{r[f'{m}_mean']:.4g} [{r[f'{m}_lo']:.4g}, {r[f'{m}_hi']:.4g}]" if f"{m}_mean" in r else "")
        lines.append("| " + " | ".join(cells) + " |")
    table = "\n".join(lines) + "\n"
    atomic_write_bytes(out / "ranking.md", table.encode())
    _best_config(out, candidates, rows, survivors, state.get("status", "running"))
    return table + f"\nRace folder: {out}"


def _effect(state: dict, a: str, b: str, metric: str) -> float | None:
    ra, rb = state["runs"].get(a, {}), state["runs"].get(b, {})
    shared = [s for s in ra if s in rb and metric in ra[s] and metric in rb[s]]
    if a == b or len(shared) < 2:
        return None
    better = 1.0 if dict(zip(OBJECTIVES, MODES, strict=True)).get(metric, "max") == "max" else -1.0
    d = better * np.array([ra[s][metric] - rb[s][metric] for s in shared])
    sd = float(np.std(d, ddof=1))
    return float(d.mean() / sd) if sd > 0 else (math.copysign(math.inf, d.mean()) if d.mean() else 0.0)


def _best_config(
    out: Path, candidates: list[Candidate], rows: list[dict], survivors: list[str], status: str
) -> Path | None:
    path = out / "best_config.yaml"
    control = {c.name: c.control for c in candidates}
    ours = [r for r in rows if r["candidate"] in survivors and not control[r["candidate"]] and "pareto_rank" in r]
    if not ours:
        path.unlink(missing_ok=True)
        return None
    best = ours[0]
    train_config = next(c for c in candidates if c.name == best["candidate"]).train_config
    others = [f"{r['candidate']} ({r['kind']})" for r in rows if r["candidate"] in survivors and r is not best]
    title = "Race winner" if status == "finished" else f"Provisional leader of an unfinished race ({status})"
    header = (
        f"# {title} {best['candidate']} over {best['seeds']} seeds: ndb {best['ndb_mean']:.4g}, "
        f"jsd {best['jsd_mean']:.4g}, lpips {best['lpips_mean']:.4g} (first survivor by Pareto rank of the means, "
        "then NDB, JSD, LPIPS)\n"
        + (f"# Not told apart from: {', '.join(others)}\n" if others else "")
        + f"# Train it: clustergan train --config {path}\n"
    )
    return write_trainable_config(path, train_config, f"race-best-{best['candidate']}", header)
