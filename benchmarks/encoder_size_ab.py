"""A short training A/B of ``encoder.input_size`` on the procedural dataset (4 known modes, 32 px).

The same clustergan configuration as the reproduction's synth study row "clustergan, lambda_MS 0.1" (its
budget: 192 training pairs, batch 8, lr 8e-4, 10 + 5 epochs = 360 steps), trained once per (input size, seed)
and evaluated under the ``sweep`` protocol (NDB with 10 bins, as that study): mode coverage, NDB, JSD, LPIPS,
cond_gain, and the training wall time. What it answers: does clustering and scoring at the image's own size
(32) lose what 224 gives, at the encoder's fraction of the cost?

    python benchmarks/encoder_size_ab.py --sizes 224 32 --seeds 0 1 --out runs/encoder_size_ab

Runs are kept in ``--out`` (``<size>/seed<N>``); a finished one (metrics.json present) is not retrained.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

STUDY = (
    "cluster.k=4",
    "loss.lambda_ms=0.1",
    "data.synth.n_train=192",
    "data.synth.n_test=24",
    "train.batch_size=8",
    "train.lr=0.0008",
    "train.epochs=10",
    "train.epochs_decay=5",
    "train.checkpoint_every=5",
    "train.sample_every=5",
    "train.eval_every=0",
)
SHOWN = ("mode_coverage", "ndb", "jsd", "lpips", "cond_gain")


def run_one(size: int, seed: int, out: Path, threads: int) -> dict:
    from clustergan.cache import atomic_write_bytes
    from clustergan.config import load_config
    from clustergan.train.builders import prepare_run
    from clustergan.train.evaluate import evaluate_run
    from clustergan.train.launch import run_training

    metrics_path = out / "metrics.json"
    if metrics_path.is_file():
        return json.loads(metrics_path.read_text())
    # the cluster statistics first, outside the timing (run_training then finds them and reuses them)
    config = prepare_run(
        load_config(
            REPO / "sweeps" / "debug.yaml",
            [*STUDY, f"encoder.input_size={size}", f"seed={seed}", f"out={out}", f"train.threads={threads}"],
        )
    )
    start = time.perf_counter()
    run_training(config)
    seconds = time.perf_counter() - start
    evaluate_run(out, protocol="sweep", seed=0, ndb_bins=10)
    payload = json.loads(metrics_path.read_text())
    payload["train_seconds"] = seconds
    atomic_write_bytes(metrics_path, json.dumps(payload, indent=2, sort_keys=True).encode())
    return payload


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[224, 32])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--out", type=Path, default=REPO / "runs" / "encoder_size_ab")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    rows = {}
    for seed in args.seeds:  # seeds outermost: a stopped run still has every size at its first seeds
        for size in args.sizes:
            rows[(size, seed)] = run_one(size, seed, args.out / str(size) / f"seed{seed}", args.threads)
    print("| input size | seed | " + " | ".join(SHOWN) + " | train s |")
    print("|---:|---:|" + "---:|" * (len(SHOWN) + 1))
    for (size, seed), m in sorted(rows.items()):
        values = " | ".join(f"{float(m[k]):.3f}" for k in SHOWN)
        print(f"| {size} | {seed} | {values} | {m.get('train_seconds', float('nan')):.0f} |")
    for size in args.sizes:
        got = [rows[(size, s)] for s in args.seeds]
        cov = [float(m["mode_coverage"]) for m in got]
        print(
            f"input {size}: mode coverage mean {statistics.mean(cov):.3f} over seeds {args.seeds}, "
            f"median train {statistics.median(m.get('train_seconds', float('nan')) for m in got):.0f} s"
        )


if __name__ == "__main__":
    main()
