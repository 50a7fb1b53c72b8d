"""What a reproduction will cost, said before it starts (:func:`estimate`): the runs left to train and to
evaluate, priced at the median wall time of the same method's finished runs in the output folder (those
trained here, or restored from the committed ledger, whose records keep their train and evaluation seconds
and the CPU they ran on). A method with no finished run of its own (a new preset) is priced from another
preset's runs of the same study and method at the same image size, batch and protocol, their training time
scaled by the ratio of epochs, and the estimate says so."""

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


def _times(method_dir: Path) -> tuple[list[float], list[float], set[str]]:
    """Train and evaluation seconds of the finished runs under ``method_dir`` (``seed*/``), and their CPUs."""
    train, evaluate, machines = [], [], set()
    for run in sorted(method_dir.glob("seed*")):
        record = read_json(run / "reproduce.json", {})
        if record.get("train_done") and isinstance(record.get("train_seconds"), (int, float)):
            if not record.get("adopted_from"):  # an adopted run's time is its source's files, not a run here
                train.append(float(record["train_seconds"]))
                machines.add(str((record.get("machine") or {}).get("cpu", "unknown CPU")))
        if isinstance(record.get("eval_seconds"), (int, float)):
            evaluate.append(float(record["eval_seconds"]))
    return train, evaluate, machines


def _budget(overrides) -> dict[str, str]:
    keys = ("data.size", "train.batch_size", "train.epochs", "train.epochs_decay")
    pairs = (item.split("=", 1) for item in overrides if "=" in item)
    return {k: v for k, v in pairs if k in keys}


def _scaled(spec, elsewhere: dict[str, Path]) -> tuple[float, float, str, set[str]] | None:
    """Train and evaluation seconds of ``spec``'s method from another preset's runs folder: same size, batch
    and protocol, training scaled by epochs. None when no preset has such runs."""
    want = _budget(spec.study.overrides)
    for name, runs in elsewhere.items():
        method_dir = runs / spec.study.name / spec.method.key
        train, evaluate, machines = _times(method_dir)
        config = next(iter(sorted(method_dir.glob("seed*/config.json"))), None)
        metrics = next(iter(sorted(method_dir.glob("seed*/metrics.json"))), None)
        if not (train and evaluate and config and metrics):
            continue
        cfg = read_json(config, {}).get("config", {})
        t = cfg.get("train", {})
        same = (
            str(cfg.get("data", {}).get("size")) == want.get("data.size")
            and str(t.get("batch_size")) == want.get("train.batch_size")
            and read_json(metrics, {}).get("protocol", {}).get("name") == spec.study.protocol
        )
        theirs = (t.get("epochs") or 0) + (t.get("epochs_decay") or 0)
        if not same or not theirs or "train.epochs" not in want:
            continue
        ratio = (int(want["train.epochs"]) + int(want.get("train.epochs_decay", 0))) / theirs
        label = f"{spec.study.name}/{spec.method.key} from preset {name} x{ratio:g} epochs"
        return statistics.median(train) * ratio, statistics.median(evaluate), label, machines
    return None


def estimate(specs: list, out: Path, elsewhere: dict[str, Path] | None = None) -> str:
    """One paragraph: how many of ``specs`` (``clustergan.reproduce.run.RunSpec``) are left, and what they
    cost at the measured pace. ``elsewhere``: other presets' runs folders (name -> folder, e.g. their
    committed ledgers) to price a method that has no finished run in ``out``."""
    train, evaluate, machines = defaultdict(list), defaultdict(list), set()
    for key in {(s.study.name, s.method.key) for s in specs}:
        train[key], evaluate[key], found = _times(out / key[0] / key[1])
        machines |= found
    left = {"train": 0, "evaluate": 0}
    seconds, priced, unpriced, scaled = 0.0, 0, set(), set()
    priced_elsewhere: dict[tuple[str, str], tuple | None] = {}  # per method: its files are read once
    for spec in specs:
        key = (spec.study.name, spec.method.key)
        state = _state(out / spec.name, spec.study.protocol)
        if state == "done":
            continue
        left[state] += 1
        parts = ([train[key]] if state == "train" else []) + [evaluate[key]]
        if all(parts):
            seconds += sum(statistics.median(p) for p in parts)
            priced += 1
            continue
        if key not in priced_elsewhere:
            priced_elsewhere[key] = _scaled(spec, elsewhere or {})
        if found := priced_elsewhere[key]:
            train_s, eval_s, label, where = found
            seconds += (train_s if state == "train" else 0.0) + eval_s
            priced += 1
            scaled.add(label)
            machines |= where
        else:
            unpriced.add(f"{spec.study.name}/{spec.method.key}")
    if not left["train"] and not left["evaluate"]:
        return f"estimated cost: nothing left, all {len(specs)} runs are done"
    text = (
        f"estimated cost: {left['train']} of {len(specs)} runs to train and evaluate, "
        f"{left['evaluate']} to evaluate only; "
    )
    if priced:
        text += (
            f"~{seconds / 3600:.1f} h ({seconds / 60:.0f} min) for the {priced} priced"
            " at the median wall time of each method's finished runs"
            f" (measured on {', '.join(sorted(machines)) or 'no machine yet'}; another machine scales it)"
        )
    else:
        text += "none can be priced yet"
    if scaled:
        text += "; priced from another preset's runs, training time scaled by epochs: " + ", ".join(sorted(scaled))
    if unpriced:
        text += f"; not counted, no finished run to price them by: {', '.join(sorted(unpriced))}"
    return text
