"""The racing decision rule (clustergan.tune.race_rule) on synthetic races: its false-drop rate when every
candidate is equal, and its power when one candidate is truly better.

The model of one run (a candidate at a seed) has three objectives shaped like a sweep's: an NDB-like integer
(minimised, noise sd 1.5 bins, rounded), a JSD-like one (minimised, sd 0.03) and an LPIPS-like one (maximised,
sd 0.02), correlated 0.5 with each other. A share ``rho`` of each objective's variance belongs to the seed and
is common to every candidate run at that seed (the same initial weights, data order, noise draws and
evaluation draws); the rest is the run's own. The equivalence margins are 1 bin, 0.01 and 0.01. "Better by 2
noise-std" moves the better candidate's JSD mean down by 2 x 0.03.

Printed per (candidates, rho): the share of races with any drop when all candidates are equal (a false drop;
its 99% binomial bound for the rule's alpha beside it), and the share of races in which the better candidate
survives and every rival is dropped by the last round.

Then the cond_gain floor (``race.cond_gain_floor``): every candidate equal on the objectives, with a cond_gain
(sd 0.005, the races' seed spread, a share ``rho`` of it the seed's) whose mean sits exactly at the floor (the
floor test's null: a false floor drop is a candidate at the floor dropped by it), and with one candidate's mean
2 sd below it (power: that candidate dropped by the floor by the last round).

    python benchmarks/race_power.py --races 2000
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from clustergan.tune.race_rule import race  # noqa: E402

OBJECTIVES = ("ndb", "jsd", "lpips")
MODES = ("min", "min", "max")
MEANS = np.array([10.0, 0.2, 0.2])
NOISE = np.array([1.5, 0.03, 0.02])
MARGINS = (1.0, 0.01, 0.01)
CORRELATION = 0.5
SCHEDULE = [2, 4, 8]


def simulate(
    races: int,
    candidates: int,
    rho: float,
    effect: float,
    alpha: float = 0.05,
    seed: int = 0,
    schedule: list[int] = SCHEDULE,
) -> tuple[float, float]:
    """``(false-drop rate, power)`` over ``races`` races; ``effect`` (in noise sd) makes candidate 0 better on
    the JSD-like objective (0: all equal; the power is then 0)."""
    rng = np.random.default_rng(seed)
    chol = np.linalg.cholesky(np.full((3, 3), CORRELATION) + np.eye(3) * (1 - CORRELATION))
    names = [f"c{i}" for i in range(candidates)]
    means = {name: MEANS.copy() for name in names}
    means["c0"] = MEANS - np.array([0.0, effect * NOISE[1], 0.0])
    n = schedule[-1]
    dropped_any = won = 0
    for _ in range(races):
        shared = rng.standard_normal((n, 3)) @ chol.T
        own = {name: rng.standard_normal((n, 3)) @ chol.T for name in names}

        def draw(name, seeds, shared=shared, own=own):
            z = np.sqrt(rho) * shared[seeds] + np.sqrt(1 - rho) * own[name][seeds]
            values = means[name] + NOISE * z
            values[:, 0] = np.round(values[:, 0])
            return values

        alive, drops = race(draw, names, schedule, OBJECTIVES, MODES, MARGINS, alpha)
        dropped_any += bool(drops)
        won += alive == ["c0"]
    return dropped_any / races, (won / races if effect else 0.0)


GAIN_FLOOR, GAIN_NOISE = 0.02, 0.005


def simulate_floor(
    races: int,
    candidates: int,
    rho: float,
    below: float,
    alpha: float = 0.05,
    seed: int = 0,
    schedule: list[int] = SCHEDULE,
) -> tuple[float, float]:
    """``(false floor-drop rate, power)`` over ``races`` races of equal candidates whose cond_gain mean is at
    the floor; ``below`` (in noise sd) moves candidate 0's under it (0: none is; the power is then 0)."""
    from clustergan.tune.race_rule import FLOOR

    rng = np.random.default_rng(seed)
    chol = np.linalg.cholesky(np.full((3, 3), CORRELATION) + np.eye(3) * (1 - CORRELATION))
    names = [f"c{i}" for i in range(candidates)]
    gain = {name: GAIN_FLOOR - (below * GAIN_NOISE if name == "c0" else 0.0) for name in names}
    n = schedule[-1]
    false = caught = 0
    for _ in range(races):
        shared, shared_gain = rng.standard_normal((n, 3)) @ chol.T, rng.standard_normal(n)
        own = {name: (rng.standard_normal((n, 3)) @ chol.T, rng.standard_normal(n)) for name in names}

        def draw(name, seeds, shared=shared, shared_gain=shared_gain, own=own):
            z = np.sqrt(rho) * shared[seeds] + np.sqrt(1 - rho) * own[name][0][seeds]
            values = MEANS + NOISE * z
            values[:, 0] = np.round(values[:, 0])
            g = gain[name] + GAIN_NOISE * (np.sqrt(rho) * shared_gain[seeds] + np.sqrt(1 - rho) * own[name][1][seeds])
            return np.column_stack([values, g])

        _, drops = race(draw, names, schedule, OBJECTIVES, MODES, MARGINS, alpha, gain_floor=GAIN_FLOOR)
        floored = {d.dropped for d in drops if d.by == FLOOR}
        false += bool(floored - {"c0"} if below else floored)
        caught += "c0" in floored
    return false / races, (caught / races if below else 0.0)


def binomial_bound(races: int, alpha: float) -> float:
    """The share of races a rule whose false-drop rate is exactly ``alpha`` stays below with 99% probability."""
    from scipy.stats import binom

    return float(binom.ppf(0.99, races, alpha)) / races


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--races", type=int, default=2000)
    p.add_argument("--alpha", type=float, default=0.05)
    p.add_argument("--candidates", type=int, nargs="+", default=[2, 3, 4, 6])
    p.add_argument("--rho", type=float, nargs="+", default=[0.0, 0.5, 0.75])
    args = p.parse_args()
    print(f"{args.races} races per cell, seeds {SCHEDULE}, alpha {args.alpha}, paired t-test, Holm per round")
    print(f"false drops may reach {binomial_bound(args.races, args.alpha):.4f} (99% binomial bound at alpha)\n")
    print("| candidates | rho (seed share) | false-drop rate (all equal) | power (one better by 2 sd) |")
    print("|---:|---:|---:|---:|")
    for k in args.candidates:
        for rho in args.rho:
            false, _ = simulate(args.races, k, rho, 0.0, args.alpha)
            _, power = simulate(args.races, k, rho, 2.0, args.alpha, seed=1)
            print(f"| {k} | {rho:g} | {false:.4f} | {power:.3f} |", flush=True)
    print(f"\ncond_gain floor {GAIN_FLOOR}, cond_gain noise sd {GAIN_NOISE}, the same rounds and alpha\n")
    print("| candidates | rho (seed share) | false floor drops (all at the floor) | power (one 2 sd below) |")
    print("|---:|---:|---:|---:|")
    for k in args.candidates:
        for rho in args.rho:
            false, _ = simulate_floor(args.races, k, rho, 0.0, args.alpha)
            _, power = simulate_floor(args.races, k, rho, 2.0, args.alpha, seed=1)
            print(f"| {k} | {rho:g} | {false:.4f} | {power:.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
