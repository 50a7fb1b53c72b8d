"""The race's feedback to Optuna (clustergan.tune.feedback): a raced ledger's trials enter the next study with
their race means, and the next explore stage never trains a raced point again."""

from __future__ import annotations

import pickle

import optuna
import pytest

from clustergan.jsonio import write_json
from clustergan.tune.feedback import known_points, known_points_search, race_means
from clustergan.tune.ledger import seed_study
from clustergan.tune.records import TrialRecord
from clustergan.tune.space import SpaceSampler
from clustergan.tune.sweep_config import MODES, OBJECTIVES, ParamSpace

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")

SPACE = {"cluster.k": ParamSpace(type="int", low=2, high=3)}
EXPLORED = {"ndb": 10.0, "jsd": 0.2, "lpips": 0.1}  # the trial's one explored seed


def _record(k: int, trial_id: str) -> TrialRecord:
    return TrialRecord(
        trial_id=trial_id,
        kind="search",
        params={"cluster.k": k},
        sampled={"cluster.k": k},
        status="finished",
        seeds=[0],
        started=0.0,
        finished=1.0,
        metrics=EXPLORED,
    )


def _raced_ledger(tmp_path):
    """A ledger whose trial t_k2 (k = 2) was raced on 3 seeds: seed 0 is its explored run."""
    runs = {"0": EXPLORED, "1": {"ndb": 4.0, "jsd": 0.05, "lpips": 0.3}, "2": {"ndb": 7.0, "jsd": 0.08, "lpips": 0.2}}
    write_json(tmp_path / "race" / "race.json", {"runs": {"t_k2": runs}, "status": "finished"})
    return tmp_path


def test_race_means_are_the_mean_over_every_raced_seed(tmp_path):
    means = race_means(_raced_ledger(tmp_path))
    assert means == {"t_k2": {"ndb": 7.0, "jsd": pytest.approx(0.11), "lpips": pytest.approx(0.2), "seeds": 3}}
    assert race_means(tmp_path / "not_raced") == {}


def test_a_raced_trial_enters_the_study_with_its_race_means(tmp_path):
    study = optuna.create_study(directions=[f"{m}imize" for m in MODES])
    records = [_record(2, "t_k2"), _record(3, "t_k3")]
    assert seed_study(study, SPACE, records, race_means(_raced_ledger(tmp_path))) == 2
    by_id = {t.user_attrs["trial_id"]: t for t in study.trials}
    assert by_id["t_k2"].values == pytest.approx([7.0, 0.11, 0.2])
    assert by_id["t_k2"].user_attrs["seeds"] == 3
    assert by_id["t_k3"].values == pytest.approx([EXPLORED[m] for m in OBJECTIVES])  # not raced: its own seed
    assert by_id["t_k3"].user_attrs["seeds"] == 1


def test_the_next_explore_stage_never_draws_a_raced_point_again(tmp_path):
    """A 2-point space (k 2 or 3) whose k = 2 was raced: TPE draws k = 2 about half the time, and each such
    draw is told the race means instead of being trained; every suggestion Tune receives is k = 3."""
    raced = race_means(_raced_ledger(tmp_path))
    records = [_record(2, "t_k2")]
    searcher = known_points_search(
        SPACE,
        known_points(SPACE, records, raced),
        space=SpaceSampler(SPACE),
        metric=list(OBJECTIVES),
        mode=list(MODES),
        sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=4),
    )
    seed_study(searcher._ot_study, SPACE, records, raced)
    suggested = []
    for i in range(8):
        config = searcher.suggest(f"trial_{i}")
        suggested.append(config["cluster.k"])
        searcher.on_trial_complete(f"trial_{i}", {"ndb": 9.0, "jsd": 0.3, "lpips": 0.1})
    assert suggested == [3] * 8
    assert searcher.redrawn >= 1  # the sampler did draw the raced point
    told = [t for t in searcher._ot_study.trials if t.params["cluster.k"] == 2]
    assert len(told) == 1 + searcher.redrawn
    assert all(t.values == pytest.approx([7.0, 0.11, 0.2]) for t in told)  # each answered by the race means
    restored = pickle.loads(pickle.dumps(searcher))  # Tune checkpoints the searcher
    assert restored._known == searcher._known and type(restored).__name__ == "KnownPointsSearch"


def test_a_space_of_known_points_only_ends_the_search(tmp_path):
    space = {"cluster.k": ParamSpace(type="int", low=2, high=2)}
    searcher = known_points_search(
        space,
        known_points(space, [_record(2, "t_k2")], {}),
        space=SpaceSampler(space),
        metric=list(OBJECTIVES),
        mode=list(MODES),
        sampler=optuna.samplers.TPESampler(seed=0),
    )
    assert searcher.suggest("trial_0") == searcher.FINISHED
