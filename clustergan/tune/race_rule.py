"""The racing decision rule: which candidates a round of paired seeds drops, and by whom.

Every candidate of a race runs on the same seeds, so a comparison is paired: for candidates A and B and each
objective, the per-seed differences ``d_s = A_s - B_s`` (signed so that positive means A is better). After a
round, **A drops B** when both hold:

- A is significantly better than B by more than the objective's equivalence margin on at least one
  objective: a paired test of ``mean(d) > margin`` (``t``: Student's paired t-test; ``wilcoxon``: the exact
  signed-rank test, which needs enough seeds for its smallest p-value, ``0.5**n``, to pass);
- A is not worse than B on any objective by more than its margin (a point estimate: ``mean(-d) <= margin``).

The margin says what is not a difference. It is what makes NDB usable: an integer with many ties, where one
bin is not a difference.

A round tests each pair and objective at most once, in the direction its means lean, and only where the
lead is beyond the margin and the leader is nowhere behind beyond a margin; since the direction was read off
the data, each p-value is two-sided. Holm's step-down procedure (:func:`holm`) runs over the round's tests at
the round's alpha, and the rounds share the race's alpha (:func:`round_alpha`, Bonferroni over the rounds).
A drop is applied only where the dropped candidate does not itself drop its dropper, directly or through
others, so a cycle of drops (possible with several objectives) never empties the race.
With a ``cond_gain`` floor (``race.cond_gain_floor``), a round also tests each candidate's mean cond_gain
against it (one-sided, "below the floor", the same test and the same Holm family as the pairs): a candidate
significantly below drops, by ``cond_gain floor``, whatever its objectives. It is what removes a model that
ignores its input (high LPIPS from noise alone) which no candidate beats on every objective; such a candidate
drops nobody in that round. The floor never
empties a round: where every candidate is below it, none drops by it (the objectives decide).
Because the tests are chosen after seeing the means, the race's false-drop rate is measured, not only argued:
``benchmarks/race_power.py`` prints it with the rule's power, and ``tests/test_race_rule.py`` asserts both.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats

Test = Literal["t", "wilcoxon"]
FLOOR = "cond_gain floor"  # who drops a candidate the floor removes (Drop.by)


@dataclass(frozen=True)
class Drop:
    """``dropped`` lost to ``by``: significantly worse on ``objective`` (Holm-adjusted ``p``) in round ``round``."""

    dropped: str
    by: str
    round: int
    objective: str
    p: float


def round_alpha(alpha: float, schedule: list[int], round_index: int) -> float:
    """The alpha round ``round_index`` (0-based) may spend. The race spends ``alpha * t**2`` by information
    fraction ``t = n_r / n_last`` (O'Brien-Fleming-like): little on the first rounds, whose few seeds can only
    show gross differences, most on the last. The rounds' shares sum to ``alpha``."""

    def spent(i: int) -> float:
        return alpha * (schedule[i] / schedule[-1]) ** 2 if i >= 0 else 0.0

    return spent(round_index) - spent(round_index - 1)


def smallest_p(test: Test, n: int) -> float:
    """The smallest one-sided p-value ``test`` can give with ``n`` paired seeds (the t-test: 0)."""
    return 0.5**n if test == "wilcoxon" else 0.0


def holm(p: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Holm's step-down procedure: ``(reject, adjusted p)``, as ``statsmodels``' ``multipletests(p, alpha,
    "holm")`` gives them (the tests compare with it). Written here because that function runs a full garbage
    collection on every call (~20 ms), which turns the decision rule's simulation of thousands of races into
    minutes."""
    p = np.asarray(p, dtype=float)
    order = np.argsort(p, kind="stable")
    m = len(p)
    adjusted_sorted = np.minimum(1.0, np.maximum.accumulate(p[order] * np.arange(m, 0, -1)))
    adjusted = np.empty(m)
    adjusted[order] = adjusted_sorted
    return adjusted <= alpha, adjusted


def _one_sided_p(d: np.ndarray, test: Test) -> np.ndarray:
    """One-sided p-values that the mean of each column of ``d`` [n, m] is above 0.

    A column without spread (the same difference in every seed, common for an integer like NDB) has no
    variance for a t-test; it gets the sign test's p-value instead: ``0.5**n`` when every difference is
    positive, 1 otherwise."""
    n = d.shape[0]
    constant = np.ptp(d, axis=0) <= 1e-9 * (1.0 + np.abs(d).max(axis=0))
    p = np.where(d[0] > 0, 0.5**n, 1.0)
    if test == "t":
        cols = ~constant
        if cols.any():
            p[cols] = stats.ttest_rel(d[:, cols], np.zeros_like(d[:, cols]), axis=0, alternative="greater").pvalue
    else:
        cols = ~constant | (d[0] != 0)
        if cols.any():
            p[cols] = stats.wilcoxon(
                d[:, cols], axis=0, alternative="greater", zero_method="zsplit", method="exact"
            ).pvalue
    return np.nan_to_num(p, nan=1.0)


def round_drops(
    values: dict[str, np.ndarray],
    objectives: tuple[str, ...],
    modes: tuple[str, ...],
    margins: tuple[float, ...],
    alpha: float,
    round_index: int,
    test: Test = "t",
    gains: dict[str, np.ndarray] | None = None,
    gain_floor: float | None = None,
) -> list[Drop]:
    """The candidates this round drops. ``values[name]`` is a [seeds, objectives] array, the rows on the same
    seeds in the same order for every candidate; ``modes`` "min" or "max" per objective; ``margins`` in each
    objective's own units; ``gains[name]`` the [seeds] cond_gain, tested against ``gain_floor`` when it is
    given. At most one :class:`Drop` per dropped candidate: the strongest."""
    names = list(values)
    for name, v in {**values, **(gains or {})}.items():
        if not np.all(np.isfinite(v)):
            raise ValueError(f"candidate {name}: non-finite values {v.tolist()}; a race compares finite metrics")
    if gain_floor is not None and (gains is None or set(gains) != set(names)):
        raise ValueError("a cond_gain floor needs every candidate's cond_gain values")
    sign = np.array([1.0 if m == "max" else -1.0 for m in modes])
    margin = np.asarray(margins, dtype=float)
    # The tests: every (A, B, objective) where A is nowhere worse than B beyond a margin and ahead on this
    # objective by more than its margin, of "A is better by more than the margin". Each pair and objective is
    # tested at most once, in the direction its means lean; that direction was read off the data, so the
    # p-value is two-sided. Holm over these tests; the family is chosen after seeing the means, so its error
    # is measured by simulation (benchmarks/race_power.py, tests/test_race_rule.py), not only argued.
    tests: list[tuple[str, str, int]] = []
    diffs: list[np.ndarray] = []
    for a in names:
        for b in names:
            if a == b:
                continue
            d = (values[a] - values[b]) * sign  # [n, O], positive: a is better
            mean = d.mean(axis=0)
            if np.any(mean < -margin - 1e-12):  # a is worse than b beyond a margin: a cannot drop b
                continue
            for o in np.flatnonzero(mean > margin):  # ahead by less than the margin is no difference
                tests.append((a, b, int(o)))
                diffs.append(d[:, o] - margin[o])
    n_pairs = len(tests)
    # the floor's tests: "mean cond_gain below the floor", one-sided as its direction is fixed beforehand, one
    # per candidate whatever its mean (leaving out those above would let the data choose Holm's count: at the
    # floor that drops above alpha); in the same Holm family as the pairs
    for name in names if gain_floor is not None else ():
        tests.append((FLOOR, name, -1))
        diffs.append(gain_floor - gains[name])
    if not tests:
        return []
    p = _one_sided_p(np.stack(diffs, axis=1), test)
    p[:n_pairs] = np.minimum(1.0, 2.0 * p[:n_pairs])
    reject, adjusted = holm(p, alpha)
    best: dict[str, Drop] = {}
    floored = [
        (b, q) for (a, b, _), rejected, q in zip(tests, reject, adjusted, strict=True) if a == FLOOR and rejected
    ]
    if len(floored) == len(names):  # the floor never empties the race
        floored = []
    for b, q in floored:
        best[b] = Drop(dropped=b, by=FLOOR, round=round_index, objective="cond_gain", p=float(q))
    # a candidate below the floor drops nobody: a model that ignores its input removes no rival (keeping a
    # rejection out only lowers the family's error)
    below = {b for b, _ in floored}
    reject = np.array([r and a not in below for (a, _, _), r in zip(tests, reject, strict=True)], dtype=bool)
    tests, reject, adjusted = tests[:n_pairs], reject[:n_pairs], adjusted[:n_pairs]
    # With margins, "drops" need not be transitive: A may drop B, B drop C and C drop A. A candidate is only
    # dropped by one it does not also (through others) drop, so a cycle never empties the race: the
    # candidates of a cycle nobody outside it drops all survive, as not told apart.
    index = {name: i for i, name in enumerate(names)}
    reach = np.eye(len(names), dtype=bool)
    for (a, b, _), rejected in zip(tests, reject, strict=True):
        reach[index[a], index[b]] |= bool(rejected)
    for _ in range(len(names)):
        reach = reach | (reach.astype(int) @ reach.astype(int) > 0)
    for (a, b, o), rejected, q in zip(tests, reject, adjusted, strict=True):
        if rejected and not reach[index[b], index[a]] and (b not in best or q < best[b].p):
            best[b] = Drop(dropped=b, by=a, round=round_index, objective=objectives[o], p=float(q))
    return sorted(best.values(), key=lambda drop: names.index(drop.dropped))


def rounds(
    draw,
    candidates: list[str],
    schedule: list[int],
    objectives: tuple[str, ...],
    modes: tuple[str, ...],
    margins: tuple[float, ...],
    alpha: float,
    test: Test = "t",
    prepare=None,
    gain_floor: float | None = None,
) -> Iterator[tuple[int, list[str], list[Drop]]]:
    """The rounds of a race on values from ``draw(name, seeds) -> [len(seeds), objectives]`` (seeds are
    indices; with ``gain_floor``, one more column: cond_gain), as they complete: ``(round index, survivors
    after it, its drops)``. Each round runs the survivors to ``schedule[r]`` seeds and drops what
    :func:`round_drops` says; the race ends after the last size, or once one candidate is left. A ``draw``
    that raises ends it there, after the rounds yielded. ``prepare({name: seeds})``, if given, hears each
    round's draws before they are asked for (so that they can be run side by side)."""
    alive = list(candidates)
    width = len(objectives) + (gain_floor is not None)
    runs: dict[str, np.ndarray] = {name: np.empty((0, width)) for name in candidates}
    for r, n in enumerate(schedule):
        if len(alive) < 2:
            return
        wanted = {name: list(range(len(runs[name]), n)) for name in alive if len(runs[name]) < n}
        if prepare is not None and wanted:
            prepare(wanted)
        for name, indices in wanted.items():
            runs[name] = np.vstack([runs[name], draw(name, indices)])
        now = round_drops(
            {a: runs[a][:n, : len(objectives)] for a in alive},
            objectives,
            modes,
            margins,
            round_alpha(alpha, schedule, r),
            r,
            test,
            gains={a: runs[a][:n, -1] for a in alive} if gain_floor is not None else None,
            gain_floor=gain_floor,
        )
        gone = {d.dropped for d in now}
        alive = [a for a in alive if a not in gone]
        yield r, alive, now


def race(
    draw,
    candidates: list[str],
    schedule: list[int],
    objectives: tuple[str, ...],
    modes: tuple[str, ...],
    margins: tuple[float, ...],
    alpha: float,
    test: Test = "t",
    gain_floor: float | None = None,
) -> tuple[list[str], list[Drop]]:
    """A whole race (:func:`rounds`): the survivors and every drop."""
    alive, drops = list(candidates), []
    for _, after, now in rounds(
        draw, candidates, schedule, objectives, modes, margins, alpha, test, gain_floor=gain_floor
    ):
        alive, drops = after, drops + now
    return alive, drops
