"""What a reproduction will cost, said before it starts (:func:`estimate`): the runs left to train and to
evaluate, priced at the median wall time of the same method's finished runs in the output folder (those
trained here, or restored from the committed ledger, whose records keep their train and evaluation seconds
and the CPU they ran on)."""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path

from clustergan.jsonio import read_json


def _state(run_dir: Path, protocol: str) -> str:
    """``done``, ``evaluate`` (trained, not evaluated under ``protocol``) or ``train``."""
    if read_json(run_dir / "metrics.json", {}).get("protocol", {}).get("name") == protocol:
        return "done"
    return "evaluate" if read_json(run_dir / "reproduce.json", {}).get("train_done") else "train"


def estimate(specs: list, out: Path) -> str:
    """One paragraph: how many of ``specs`` (``clustergan.reproduce.run.RunSpec``) are left, and what they
    cost at the measured pace."""
    train, evaluate, machines = defaultdict(list), defaultdict(list), set()
    for method_dir in {out / s.study.name / s.method.key for s in specs}:
        for run in sorted(method_dir.glob("seed*")):
            record = read_json(run / "reproduce.json", {})
            key = (method_dir.parent.name, method_dir.name)
            if record.get("train_done") and isinstance(record.get("train_seconds"), (int, float)):
                if not record.get("adopted_from"):  # an adopted run's time is its source's files, not a run here
                    train[key].append(float(record["train_seconds"]))
                    machines.add(str((record.get("machine") or {}).get("cpu", "unknown CPU")))
            if isinstance(record.get("eval_seconds"), (int, float)):
                evaluate[key].append(float(record["eval_seconds"]))
    left = {"train": 0, "evaluate": 0}
    seconds, unpriced = 0.0, set()
    for spec in specs:
        key = (spec.study.name, spec.method.key)
        state = _state(out / spec.name, spec.study.protocol)
        if state == "done":
            continue
        left[state] += 1
        parts = ([train[key]] if state == "train" else []) + [evaluate[key]]
        if all(parts):
            seconds += sum(statistics.median(p) for p in parts)
        else:
            unpriced.add(f"{spec.study.name}/{spec.method.key}")
    if not left["train"] and not left["evaluate"]:
        return f"estimated cost: nothing left, all {len(specs)} runs are done"
    text = (
        f"estimated cost: {left['train']} of {len(specs)} runs to train and evaluate, {left['evaluate']} to evaluate"
        f" only; ~{seconds / 3600:.1f} h ({seconds / 60:.0f} min)"
        " at the median wall time of each method's finished runs here"
        f" (measured on {', '.join(sorted(machines)) or 'no machine yet'}; another machine scales it)"
    )
    if unpriced:
        text += f"; not counted, no finished run to price them by: {', '.join(sorted(unpriced))}"
    return text
