"""The racing decision rule (clustergan.tune.race_rule): Holm's procedure against hand-computed values, one
round's drops on hand-made values, the alpha the rounds spend, and simulated races (benchmarks/race_power.py):
with every candidate equal, the false-drop rate stays under the 99% binomial bound of alpha; with one
candidate better by 2 noise-sd on one objective, it survives and its rivals are dropped by 8 seeds with power
>= 0.8 where the seed carries enough of the variance (the model and the full table: docs/RESULTS.md)."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.race_power import binomial_bound, simulate
from clustergan.tune.race_rule import Drop, holm, round_alpha, round_drops

OBJ, MODES, MARGINS = ("ndb", "jsd", "lpips"), ("min", "min", "max"), (1.0, 0.01, 0.01)


def test_holm_matches_hand_computed_adjusted_p_values():
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04 -> running max 0.02 0.03 0.06 0.06
    reject, adjusted = holm(np.array([0.01, 0.04, 0.03, 0.005]), 0.05)
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert reject.tolist() == [True, False, False, True]


def test_round_alpha_spends_the_race_alpha_by_squared_information():
    shares = [round_alpha(0.05, [2, 4, 8], r) for r in range(3)]
    assert shares == pytest.approx([0.05 / 16, 0.05 * 3 / 16, 0.05 * 12 / 16])
    assert sum(shares) == pytest.approx(0.05)


def _runs(ndb, jsd, lpips, n=8, jitter=0.0, seed=0):
    rng = np.random.default_rng(seed)
    return np.column_stack(
        [np.full(n, ndb, float), jsd + jitter * rng.standard_normal(n), lpips + jitter * rng.standard_normal(n)]
    )


def test_a_clearly_better_candidate_drops_the_other_on_its_objective():
    good, bad = _runs(5, 0.05, 0.3, jitter=0.005), _runs(5, 0.20, 0.3, jitter=0.005, seed=1)
    drops = round_drops({"good": good, "bad": bad}, OBJ, MODES, MARGINS, alpha=0.05, round_index=2)
    assert len(drops) == 1 and (drops[0].dropped, drops[0].by, drops[0].objective, drops[0].round) == (
        "bad",
        "good",
        "jsd",
        2,
    )
    assert isinstance(drops[0], Drop) and drops[0].p < 0.05


def test_no_drop_when_the_leader_is_worse_beyond_a_margin_elsewhere():
    # better on JSD by far, but 2 NDB bins worse (margin 1): a trade-off, not a dominance, so nobody drops
    good, other = _runs(7, 0.05, 0.3, jitter=0.005), _runs(5, 0.20, 0.3, jitter=0.005, seed=1)
    assert round_drops({"good": good, "other": other}, OBJ, MODES, MARGINS, alpha=0.05, round_index=2) == []


def test_the_same_lead_in_every_seed_is_judged_by_the_sign_test():
    # NDB lower by 3 bins in every seed: no spread for a t-test; the sign test gives 0.5**8 = 0.0039
    a, b = _runs(2, 0.1, 0.3, jitter=0.005), _runs(5, 0.1, 0.3, jitter=0.005, seed=1)
    drops = round_drops({"a": a, "b": b}, OBJ, MODES, MARGINS, alpha=0.05, round_index=2)
    assert [(d.dropped, d.by, d.objective) for d in drops] == [("b", "a", "ndb")]
    assert drops[0].p == pytest.approx(2 * (0.5**8))  # two-sided, one test in the round


def test_a_lead_within_the_margin_is_no_difference():
    # NDB lower by exactly one bin in every seed: within the margin, so not "better" however consistent
    a, b = _runs(4, 0.1, 0.3, jitter=0.005), _runs(5, 0.1, 0.3, jitter=0.005, seed=1)
    assert round_drops({"a": a, "b": b}, OBJ, MODES, MARGINS, alpha=0.05, round_index=2) == []


def test_a_cycle_of_drops_never_empties_the_race():
    # with margins "drops" is not transitive: a drops b (objective 1), b drops c (2), c drops a (3), each
    # ahead by 1.5 against a margin of 1 and behind by at most 0.8 elsewhere; d is worse than a everywhere
    maxed, margins = ("max", "max", "max"), (1.0, 1.0, 1.0)
    rng = np.random.default_rng(0)

    def runs(*means):
        return np.array(means) + 0.05 * rng.standard_normal((8, 3))

    values = {"a": runs(1.5, 0.8, 0), "b": runs(0, 1.5, 0.8), "c": runs(0.8, 0, 1.5), "d": runs(-2, -2, -2)}
    drops = round_drops(values, OBJ, maxed, margins, alpha=0.05, round_index=2)
    # the cycle's three survive, not told apart; d, dropped by members of the cycle it cannot reach, goes
    assert [d.dropped for d in drops] == ["d"]


def test_a_non_finite_value_is_refused():
    a, b = _runs(5, 0.1, 0.3, jitter=0.005), _runs(5, 0.1, 0.3, jitter=0.005, seed=1)
    b[3, 1] = np.nan
    with pytest.raises(ValueError, match="candidate b: non-finite values"):
        round_drops({"a": a, "b": b}, OBJ, MODES, MARGINS, alpha=0.05, round_index=2)


def test_a_race_left_with_one_candidate_draws_no_further_round():
    from clustergan.tune.race_rule import race

    means = {"good": (2, 0.05, 0.4), "bad": (9, 0.30, 0.1)}
    drawn = []

    def draw(name, seeds):
        drawn.append((name, tuple(seeds)))
        return np.array([means[name]] * len(seeds)) + 0.001 * np.arange(len(seeds))[:, None] * (name == "bad")

    alive, drops = race(draw, ["good", "bad"], [8, 16], OBJ, MODES, MARGINS, alpha=0.05)
    assert alive == ["good"] and [d.dropped for d in drops] == ["bad"]
    assert drawn == [("good", tuple(range(8))), ("bad", tuple(range(8)))]  # round 2's 8 more seeds never drawn


RACES = 2000


@pytest.mark.parametrize(("candidates", "rho"), [(2, 0.0), (4, 0.0), (3, 0.5), (6, 0.5)])
def test_equal_candidates_are_rarely_dropped(candidates, rho):
    false, _ = simulate(RACES, candidates, rho, effect=0.0, alpha=0.05)
    assert false <= binomial_bound(RACES, 0.05), false
    # the rule measures well below alpha (0.002-0.009 in docs/RESULTS.md): guard that, as a doubled or
    # uncorrected alpha would still pass the bound above
    assert false <= 0.02, false


@pytest.mark.parametrize(("candidates", "rho"), [(2, 0.5), (4, 0.75)])
def test_a_truly_better_candidate_wins_its_race_by_8_seeds(candidates, rho):
    _, power = simulate(RACES, candidates, rho, effect=2.0, alpha=0.05, seed=1)
    assert power >= 0.8, power


def test_the_cond_gain_floor_drops_a_model_that_ignores_its_input_and_only_it():
    from clustergan.tune.race_rule import FLOOR

    # "blind": the most diverse (LPIPS) but worst on JSD beyond the margin, so no rival drops it on the objectives
    values = {
        "blind": _runs(5, 0.30, 0.50, jitter=0.005),
        "a": _runs(5, 0.10, 0.20, jitter=0.005, seed=1),
        "b": _runs(5, 0.10, 0.20, jitter=0.005, seed=2),
    }
    rng = np.random.default_rng(3)
    gains = {"blind": 0.001 + 0.002 * rng.standard_normal(8), "a": 0.03 + 0.005 * rng.standard_normal(8)}
    gains["b"] = 0.03 + 0.005 * rng.standard_normal(8)
    assert round_drops(values, OBJ, MODES, MARGINS, alpha=0.05, round_index=2) == []
    drops = round_drops(values, OBJ, MODES, MARGINS, 0.05, 2, gains=gains, gain_floor=0.01)
    assert [(d.dropped, d.by, d.objective) for d in drops] == [("blind", FLOOR, "cond_gain")]
    assert drops[0].p < 1e-4
    # below the floor it drops nobody, however much better it is on every objective
    values["blind"] = _runs(1, 0.02, 0.50, jitter=0.005)
    assert [d.dropped for d in round_drops(values, OBJ, MODES, MARGINS, alpha=0.05, round_index=2)] == ["a", "b"]
    drops = round_drops(values, OBJ, MODES, MARGINS, 0.05, 2, gains=gains, gain_floor=0.01)
    assert [(d.dropped, d.by) for d in drops] == [("blind", FLOOR)]
    # everyone below it: the floor keeps them all rather than empty the race
    low = {name: 0.001 + 0.002 * rng.standard_normal(8) for name in values}
    assert [d.by for d in round_drops(values, OBJ, MODES, MARGINS, 0.05, 2, gains=low, gain_floor=0.01)] == [
        "blind",
        "blind",
    ]
    with pytest.raises(ValueError, match="a cond_gain floor needs every candidate's cond_gain values"):
        round_drops(values, OBJ, MODES, MARGINS, 0.05, 2, gains={"a": gains["a"]}, gain_floor=0.01)


@pytest.mark.parametrize(("candidates", "rho"), [(2, 0.0), (4, 0.5)])
def test_the_floor_rarely_drops_a_candidate_at_it_and_drops_one_2_sd_below(candidates, rho):
    from benchmarks.race_power import simulate_floor

    false, _ = simulate_floor(RACES, candidates, rho, below=0.0, alpha=0.05)
    assert false <= binomial_bound(RACES, 0.05), false  # measured 0.041 and 0.024
    _, power = simulate_floor(RACES, candidates, rho, below=2.0, alpha=0.05, seed=1)
    assert power >= 0.8, power  # measured 0.97 and 0.96


def test_one_round_of_floor_tests_alone_keeps_alpha_with_every_candidate_at_the_floor():
    """Objectives tied, so only the floor is tested: a floor test for every candidate (not only those whose
    mean falls below) keeps Holm's count fixed; leaving the others out dropped 0.10 of 4 candidates at the
    floor at alpha 0.05."""
    from clustergan.tune.race_rule import FLOOR

    rng, tied = np.random.default_rng(0), np.tile([10.0, 0.2, 0.2], (8, 1))
    dropped = 0
    for _ in range(RACES):
        gains = {f"c{i}": 0.02 + 0.005 * rng.standard_normal(8) for i in range(4)}
        drops = round_drops(dict.fromkeys(gains, tied), OBJ, MODES, MARGINS, 0.05, 0, gains=gains, gain_floor=0.02)
        dropped += any(d.by == FLOOR for d in drops)
    assert dropped / RACES <= binomial_bound(RACES, 0.05), dropped / RACES  # measured 0.054


def test_the_race_section_is_strict(tmp_path):
    from pathlib import Path

    from clustergan.errors import ConfigError
    from clustergan.tune.sweep_config import load_sweep

    repo = Path(__file__).resolve().parents[1]
    text = (
        (repo / "sweeps" / "debug_sweep.yaml")
        .read_text()
        .replace("base: debug.yaml", f"base: {repo}/sweeps/debug.yaml")
    )
    path = tmp_path / "s.yaml"
    path.write_text(text + "race:\n  schedule: [2, 4]\n  margin: {ndb: 1}\n")
    with pytest.raises(ConfigError, match=r"unknown key `race\.margin` \(check the spelling"):
        load_sweep(path)
    path.write_text(text + "race:\n  schedule: [2, 4]\n  margins: {ndb: 1}\n")
    with pytest.raises(ConfigError, match=r"`race`: margins \{'ndb': 1\.0\}: give a margin >= 0 for each of "):
        load_sweep(path)
    path.write_text(text + "race:\n  schedule: [2, 4]\n  seeds: [5, 6, 7, 8]\n")
    race = load_sweep(path)[0].race
    assert race.seed_list() == [5, 6, 7, 8] and race.margins == {"ndb": 1.0, "jsd": 0.01, "lpips": 0.01}
