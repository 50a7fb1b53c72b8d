"""What one evaluation costs, and how noisy its numbers are: the evidence behind the ``sweep`` protocol.

Trains (or reuses, from ``--runs-dir``) a short pix2pix and a short MSGAN facades checkpoint from the presets
``sweeps/{pix2pix,msgan}.yaml`` (64 px, batch 8), then on the facades test split (106 inputs):

- times one evaluation of each checkpoint with each protocol (``--protocols``), through the same
  :func:`clustergan.train.evaluate.evaluate_run` as ``clustergan eval``;
- evaluates each checkpoint with ``--seeds`` evaluation seeds under each ``--spread-protocols`` protocol and
  prints the spread (sample std, ddof=1) of NDB, JSD and LPIPS;
- prints the LPIPS gap between the two checkpoints and checks the issue's two targets: the sweep evaluation
  costs under 10% of a trial's training time (measured epoch seconds x the preset's epochs + decay epochs),
  and the sweep LPIPS spread is smaller than the pix2pix-MSGAN LPIPS gap.

    python benchmarks/eval_cost.py --runs-dir runs/eval_cost                 # train 1 epoch each, then measure
    python benchmarks/eval_cost.py --runs-dir runs/eval_cost --seeds 5 --protocols paper sweep \\
        --spread-protocols sweep --epochs 1 --json runs/eval_cost/results.json

A run folder that already holds a checkpoint is reused; its epoch seconds come from the run's TensorBoard
scalar ``train/epoch_seconds``. The FID real statistics are computed once up front (timed on their own) and
the first evaluation, which also loads LPIPS and fits the NDB bins, is marked cold and left out of the timing
medians: both are cached under CLUSTERGAN_CACHE and every later trial reuses them. Evaluations run
protocol by protocol (spread protocols first) and ``--json`` is rewritten after each one, so an interrupted
run keeps its rows; ``--report-only FILE`` prints the tables from such a file. Run from the repository root
so the presets' ``../shared/datasets/facades`` resolves, or pass ``--data-root``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import struct
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
METHODS = ("pix2pix", "msgan")
SPREAD_KEYS = ("ndb", "jsd", "lpips")


# ------------------------------------------------------------------------------------------------ training
def _checkpoint(run_dir: Path) -> Path | None:
    found = sorted((run_dir / "checkpoints").glob("*.pt")) if (run_dir / "checkpoints").is_dir() else []
    return found[-1] if found else None


def train_if_missing(method: str, run_dir: Path, epochs: int, data_root: str | None) -> None:
    """Train ``epochs`` epochs (no decay) of the preset into ``run_dir`` unless a checkpoint is there."""
    if _checkpoint(run_dir) is not None:
        print(f"[{method}] reusing {_checkpoint(run_dir)}", flush=True)
        return
    from clustergan.cli import main as cli_main

    argv = [
        "train",
        "--config",
        str(REPO / "sweeps" / f"{method}.yaml"),
        f"train.epochs={epochs}",
        "train.epochs_decay=0",
        f"train.checkpoint_every={epochs}",
        f"train.sample_every={epochs}",
        f"out={run_dir}",
    ]
    if data_root:
        argv.append(f"data.root={data_root}")
    print(f"[{method}] training: clustergan {' '.join(argv)}", flush=True)
    if cli_main(argv) != 0:
        raise SystemExit(f"training {method} failed")


def _tfrecords(path: Path):
    """Records of a TensorBoard event file (TFRecord framing: u64 length, u32 crc, data, u32 crc)."""
    data = path.read_bytes()
    pos = 0
    while pos + 12 <= len(data):
        (length,) = struct.unpack("<Q", data[pos : pos + 8])
        yield data[pos + 12 : pos + 12 + length]
        pos += 12 + length + 4


def epoch_seconds(run_dir: Path) -> list[float]:
    """The run's logged ``train/epoch_seconds``, one per epoch, read from its TensorBoard events."""
    from tensorboardX.proto import event_pb2

    values = []
    for path in sorted((run_dir / "tensorboard").glob("events.out.tfevents.*")):
        for record in _tfrecords(path):
            event = event_pb2.Event.FromString(record)
            for value in event.summary.value:
                if value.tag == "train/epoch_seconds":
                    values.append(float(value.simple_value))
    return values


def preset_epochs(method: str) -> int:
    """Epochs + decay epochs of the preset as shipped: what one sweep trial trains."""
    from clustergan.config import load_config

    train = load_config(REPO / "sweeps" / f"{method}.yaml", []).train
    return train.epochs + train.epochs_decay


# ---------------------------------------------------------------------------------------------- evaluation
def prime_fid_statistics(run_dir: Path) -> float:
    """Compute (or load) the FID statistics of the run's training targets under the key ``clustergan eval``
    uses; returns the seconds it took."""
    from clustergan.data import load_targets
    from clustergan.metrics import real_statistics
    from clustergan.train.sampling import load_generator

    d = load_generator(run_dir).config.data
    tick = time.perf_counter()
    train_targets, _ = load_targets(d.root, "train", d.direction, d.size)
    real_statistics(train_targets)
    return time.perf_counter() - tick


def evaluate_once(run_dir: Path, protocol: str, seed: int) -> dict:
    """One ``clustergan eval`` worth of work; returns the numbers, the wall seconds and the breakdown."""
    from clustergan.train.evaluate import evaluate_run

    with tempfile.TemporaryDirectory() as tmp:
        tick = time.perf_counter()
        result = evaluate_run(run_dir, protocol, seed=seed, out=Path(tmp) / "metrics.json")
        wall = time.perf_counter() - tick
    details = result["details"]
    parts = {name: details[name]["seconds"] for name in ("fid", "ndb", "lpips") if name in details}
    parts["generation"] = details["generation_seconds"]
    row = {key: result.get(key) for key in ("fid", *SPREAD_KEYS)}
    row.update(protocol=protocol, seed=seed, wall_seconds=wall, runner_seconds=result["seconds"], parts=parts)
    return row


def _write_json(path: str, payload: dict) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(payload, indent=2, default=str) + "\n")


def _std(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs-dir", default="runs/eval_cost", help="where the two runs live (reused if there)")
    parser.add_argument("--seeds", type=int, default=5, help="evaluation seeds for the spread (0..N-1)")
    parser.add_argument("--protocols", nargs="+", default=["paper", "sweep"], help="protocols to time")
    parser.add_argument(
        "--spread-protocols",
        nargs="*",
        default=["sweep"],
        help="protocols whose seed spread is measured (paper costs minutes per seed)",
    )
    parser.add_argument("--epochs", type=int, default=1, help="training epochs when a run has to be trained")
    parser.add_argument("--data-root", default=None, help="facades folder (default: the presets' data.root)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--json", default=None, help="also write every row to this file")
    parser.add_argument(
        "--report-only",
        default=None,
        metavar="JSON",
        help="print the tables from a --json file written earlier (partial runs too)",
    )
    args = parser.parse_args(argv)
    if args.seeds < 2:
        parser.error("--seeds must be at least 2 to measure a spread")

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    runs = {m: Path(args.runs_dir) / m for m in METHODS}
    for method, run_dir in runs.items():
        if not args.report_only:
            train_if_missing(method, run_dir, args.epochs, args.data_root)

    if args.report_only:
        saved = json.loads(Path(args.report_only).read_text())
        rows, cold = saved["rows"], saved.get("cold", {})
    else:
        rows, cold = run_evaluations(runs, args)
    summary = report(runs, rows, cold)
    if args.json and not args.report_only:
        _write_json(args.json, {"rows": rows, **summary})
    return 0


def run_evaluations(runs: dict[str, Path], args: argparse.Namespace) -> tuple[list[dict], dict]:
    """Every timed evaluation, in order; returns the rows and the one-off (cold) costs."""
    from clustergan.metrics import get_protocol

    rows: list[dict] = []
    protocols = list(dict.fromkeys(args.spread_protocols + args.protocols))  # cold first eval: a cheap one
    # The first evaluation of all loads LPIPS and fits + caches the NDB bins (shared by both protocols: same
    # K, resolution and training set); it is recorded as "cold" and left out of the timing medians. The FID
    # real statistics are computed and cached once up front, timed on their own: every later trial reuses them.
    cold: dict = {}
    if any(get_protocol(p).fid for p in protocols):
        cold["fid_real_statistics_seconds"] = prime_fid_statistics(runs["pix2pix"])
        print(f"[cold] FID real statistics: {cold['fid_real_statistics_seconds']:.1f} s", flush=True)
    first = True
    for protocol in protocols:  # protocol-major: the cheap spread study finishes before the paper timings
        seeds = range(args.seeds) if protocol in args.spread_protocols else range(1)
        for method, run_dir in runs.items():
            for seed in seeds:
                row = evaluate_once(run_dir, protocol, seed)
                row.update(method=method, cold=first)
                if first:
                    cold["first_evaluation"] = {
                        "method": method,
                        "protocol": protocol,
                        "wall_seconds": row["wall_seconds"],
                    }
                first = False
                rows.append(row)
                if args.json:  # partial results survive an interrupted run
                    _write_json(args.json, {"rows": rows, "cold": cold})
                print(
                    f"[{method}] {protocol} seed {seed}: {row['wall_seconds']:.1f} s  ndb={row['ndb']} "
                    f"jsd={row['jsd']:.4f} lpips={row['lpips']:.4f}" + (" (cold)" if row["cold"] else ""),
                    flush=True,
                )
    return rows, cold


def report(runs: dict[str, Path], rows: list[dict], cold: dict) -> dict:
    """Print the cost and spread tables and the two targets; returns the summary."""
    protocols = list(dict.fromkeys(r["protocol"] for r in rows))
    spread_protocols = [
        p for p in protocols if all(sum(r["protocol"] == p and r["method"] == m for r in rows) > 1 for m in METHODS)
    ]
    train = {}
    for method, run_dir in runs.items():
        secs = epoch_seconds(run_dir)
        epochs = preset_epochs(method)
        mean = statistics.mean(secs) if secs else float("nan")
        train[method] = {"epoch_seconds": secs, "preset_epochs": epochs, "trial_seconds": mean * epochs}
        print(
            f"[{method}] measured epoch seconds {[round(x, 1) for x in secs]}; the preset trains {epochs} epochs "
            f"-> one trial ~ {mean * epochs:.0f} s"
        )
    if cold:
        print(f"one-off costs (cached afterwards): {json.dumps(cold, default=str)}")

    print("\nEvaluation seconds (median over the timed evaluations; facades test, 106 inputs)")
    print(
        f"{'method':8s} {'protocol':8s} {'n':>2s} {'wall s':>8s} {'gen s':>7s} {'lpips s':>8s} {'ndb s':>6s} "
        f"{'fid s':>6s} {'trial s':>8s} {'eval/trial':>10s}"
    )
    summary: dict = {"train": train, "cold": cold, "cost": {}, "spread": {}}
    for method in METHODS:
        for protocol in protocols:
            sel = [r for r in rows if r["method"] == method and r["protocol"] == protocol and not r["cold"]]
            sel = sel or [r for r in rows if r["method"] == method and r["protocol"] == protocol]
            if not sel:
                continue
            wall = statistics.median(r["wall_seconds"] for r in sel)
            part = {
                k: statistics.median(r["parts"].get(k, 0.0) for r in sel) for k in ("generation", "lpips", "ndb", "fid")
            }
            trial = train[method]["trial_seconds"]
            summary["cost"][f"{method}/{protocol}"] = {"wall_seconds": wall, **part, "share_of_trial": wall / trial}
            print(
                f"{method:8s} {protocol:8s} {len(sel):2d} {wall:8.1f} {part['generation']:7.1f} "
                f"{part['lpips']:8.1f} {part['ndb']:6.1f} {part['fid']:6.1f} {trial:8.0f} {wall / trial:9.1%}"
            )
    print("(trial s = mean measured epoch seconds x the preset's epochs + epochs_decay)")

    print("\nSpread over evaluation seeds (mean +- sample std)")
    print(f"{'method':8s} {'protocol':8s} {'n':>2s} {'NDB':>16s} {'JSD':>18s} {'LPIPS':>18s}")
    for protocol in spread_protocols:
        for method in METHODS:
            sel = [r for r in rows if r["method"] == method and r["protocol"] == protocol]
            stats = {k: (statistics.mean(r[k] for r in sel), _std([r[k] for r in sel])) for k in SPREAD_KEYS}
            summary["spread"][f"{method}/{protocol}"] = {k: {"mean": m, "std": s} for k, (m, s) in stats.items()}
            print(
                f"{method:8s} {protocol:8s} {len(sel):2d} "
                f"{stats['ndb'][0]:8.2f} +- {stats['ndb'][1]:4.2f} "
                f"{stats['jsd'][0]:8.4f} +- {stats['jsd'][1]:.4f} "
                f"{stats['lpips'][0]:8.4f} +- {stats['lpips'][1]:.4f}"
            )
        p, m = (summary["spread"][f"{x}/{protocol}"]["lpips"] for x in METHODS)
        gap = m["mean"] - p["mean"]
        worst = max(p["std"], m["std"])
        summary["spread"][f"gap/{protocol}"] = {"lpips_gap": gap, "max_lpips_std": worst}
        ratio = abs(gap) / worst if worst > 0 else float("inf")
        print(
            f"{protocol}: LPIPS gap (msgan - pix2pix) {gap:+.4f}; largest LPIPS std {worst:.4f} -> |gap| / std = "
            f"{ratio:.1f}  [target std < |gap|: {'met' if worst < abs(gap) else 'NOT met'}]"
        )

    if all(f"{m}/sweep" in summary["cost"] for m in METHODS):
        shares = [summary["cost"][f"{m}/sweep"]["share_of_trial"] for m in METHODS]
        print(
            f"sweep evaluation / trial training time: {', '.join(f'{s:.1%}' for s in shares)} "
            f"[target < 10%: {'met' if max(shares) < 0.10 else 'NOT met'}]"
        )
    return summary


if __name__ == "__main__":
    sys.exit(main())
