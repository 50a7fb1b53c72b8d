"""A sweep's progress on the driver's console: trials done of planned, time spent, the best trial so far.

One line each time a trial ends (finished or failed), e.g.::

    [sweep demo_sweep] 3/5 trials done (0 failed) in 1 min 12 s; best so far: control:clustergan e57cb_00002
    (NDB 5, JSD 0.0762, LPIPS 0.2805)

"Best" is the ranking's first row (:func:`clustergan.tune.ranking.rank_trials`) over the records in the
driver's folder; a trial that ran on another node counts as done at once and joins the ranking when its
record is pulled (at the end of the sweep).
"""

from __future__ import annotations

import time
from pathlib import Path

from clustergan.tune.ranking import rank_trials
from clustergan.tune.records import experiment_records


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def progress_line(local: Path, name: str, planned: int, done: int, failed: int, seconds: float) -> str:
    records = experiment_records(local)
    best = next((r for r in rank_trials(records, None) if r["rank"] == 1), None)
    line = f"[sweep {name}] {done}/{planned} trials done ({failed} failed) in {_duration(seconds)}"
    if best is not None:
        m = best["metrics"]
        line += (
            f"; best so far: {best['kind']} {best['trial']} "
            f"(NDB {m['ndb']:.4g}, JSD {m['jsd']:.4g}, LPIPS {m['lpips']:.4g})"
        )
    return line


def progress_callback(local: Path, name: str, planned: int, started: float):
    """A Ray Tune callback printing :func:`progress_line` whenever a trial ends."""
    from ray import tune

    records = experiment_records(local)
    counts = {
        "done": sum(r.status in ("finished", "failed") for r in records),
        "failed": sum(r.status == "failed" for r in records),
    }

    class SweepProgress(tune.Callback):
        def _ended(self, failed: bool) -> None:
            counts["done"] += 1
            counts["failed"] += failed
            line = progress_line(local, name, planned, counts["done"], counts["failed"], time.time() - started)
            print(line, flush=True)

        def on_trial_complete(self, iteration, trials, trial, **info):
            self._ended(False)

        def on_trial_error(self, iteration, trials, trial, **info):
            self._ended(True)

    return SweepProgress()
