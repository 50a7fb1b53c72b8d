"""What a later explore stage learns from the work before it: the race's seed means, and the points already
answered.

A sweep started with ``--ledger L`` seeds its Optuna study with L's finished search trials
(:func:`clustergan.tune.ledger.seed_study`). Where L was raced (``clustergan race L``, which writes
``L/race/race.json``), a raced trial enters the study with its **race means**, the mean of each objective over
every seed the race ran it on, rather than its one explored seed; its Optuna trial carries the seed count as
the user attribute ``seeds``. TPE then models the front from values that are worth trusting.

The search then runs through :class:`KnownPointsSearch`: when the sampler draws a point the study already
holds (the same effective parameters, "off" draws mapped to 0), that draw is told its known values at once
and the sampler draws again, so a raced (or trained) point is never trained a second time.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np

from clustergan.jsonio import read_json
from clustergan.tune.records import TrialRecord
from clustergan.tune.space import trial_params
from clustergan.tune.sweep_config import OBJECTIVES, ParamSpace

RACE_STATE = Path("race") / "race.json"
MAX_REDRAWS = 50  # consecutive draws of known points before the search calls the space exhausted


def race_means(experiment: Path) -> dict[str, dict[str, float]]:
    """``{trial id: {objective: mean over its raced seeds, "seeds": n}}`` from ``<experiment>/race/race.json``,
    or ``{}`` when the experiment was not raced."""
    state = read_json(Path(experiment) / RACE_STATE, {})
    means = {}
    for name, runs in state.get("runs", {}).items():
        rows = [r for r in runs.values() if all(m in r for m in OBJECTIVES)]
        if rows:
            means[name] = {m: float(np.mean([r[m] for r in rows])) for m in OBJECTIVES} | {"seeds": len(rows)}
    return means


def study_values(record: TrialRecord, raced: dict[str, dict[str, float]]) -> tuple[list[float], int]:
    """The objective values (NDB, JSD, LPIPS) a restored search trial enters the study with, and over how
    many seeds: its race means where it was raced, else its own seed means."""
    got = raced.get(record.trial_id)
    if got is not None:
        return [got[m] for m in OBJECTIVES], int(got["seeds"])
    return [float((record.metrics or {})[m]) for m in OBJECTIVES], max(1, len(record.per_seed))


def point_key(space: dict[str, ParamSpace], sampled: dict[str, Any]) -> tuple:
    """A point's identity: its effective parameters (``trial_params``), rounded to 10 significant digits."""
    return tuple(sorted((k, float(f"{float(v):.10g}")) for k, v in trial_params(space, sampled).items()))


def known_points(
    space: dict[str, ParamSpace], records: list[TrialRecord], raced: dict[str, dict[str, float]]
) -> dict[tuple, list[float]]:
    """``{point key: objective values}`` of the restored search trials (race means where raced)."""
    return {
        point_key(space, r.sampled): study_values(r, raced)[0] for r in records if r.is_search and r.sampled is not None
    }


def known_points_search(sweep_space: dict[str, ParamSpace], known: dict[tuple, list[float]], **optuna_search):
    """A ``KnownPointsSearch`` over the sweep's space (``optuna_search``: ``OptunaSearch``'s arguments) that
    answers the ``known`` points itself."""
    searcher = _known_points_class()(**optuna_search)
    searcher._known, searcher._cg_space, searcher.redrawn = dict(known), sweep_space, 0
    return searcher


@functools.cache
def _known_points_class():
    """``KnownPointsSearch``, built on first use so that importing this module does not import Ray; the
    module's ``__getattr__`` gives pickle (Tune checkpoints the searcher) the same class."""
    from ray.tune.search.optuna import OptunaSearch

    class KnownPointsSearch(OptunaSearch):
        """``OptunaSearch`` whose re-drawn known points are told their values and drawn again."""

        def suggest(self, trial_id: str):
            for _ in range(MAX_REDRAWS):
                params = super().suggest(trial_id)
                values = self._known.get(point_key(self._cg_space, self._ot_trials[trial_id].params))
                if values is None:
                    return params
                self._ot_study.tell(self._ot_trials.pop(trial_id), values)  # answered, not trained again
                self.redrawn += 1
            print(f"Optuna drew only known points {MAX_REDRAWS} times running: the search stops", flush=True)
            return OptunaSearch.FINISHED

    KnownPointsSearch.__module__, KnownPointsSearch.__qualname__ = __name__, "KnownPointsSearch"
    return KnownPointsSearch


def __getattr__(name: str):
    if name == "KnownPointsSearch":
        return _known_points_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
