"""Overhead of the sweep machinery: N trials through ``run_sweep`` vs the same N runs called directly.

Both sides train the same configuration (``--config``, ``train.max_steps=--steps``) and evaluate it with the
sweep protocol, with the same number of torch threads (``--threads``; the sweep trial gets that many CPUs).
Cluster statistics are computed once before either side is timed. Ray's start-up is timed separately.

The two sides alternate, one trial at a time (direct, sweep, direct, sweep, ...): on a shared 2-core machine
the speed drifts by tens of percent within minutes (two identical direct trials in a row once took 14.5 and
10.8 s per epoch), and all-direct-then-all-sweep measured that drift as overhead. Each sweep side is a whole
``run_sweep`` of one trial, so its fixed cost (Tune and Optuna set-up, the ranking) is paid per trial rather
than shared by N: the ratio is an upper bound of a real N-trial sweep's.

    python benchmarks/sweep_overhead.py --trials 2 --steps 300 --threads 2 \
        cluster.k=0 loss.lambda_kl1=0 loss.lambda_km=0

Prints both wall times and their ratio (target: under 1.15) and writes --out (JSON).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(REPO / "sweeps" / "debug.yaml"))
    p.add_argument("--trials", type=int, default=3)
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("overrides", nargs="*", help="key=value overrides of the config, e.g. cluster.k=0")
    p.add_argument("--workdir", default=None, help="default: a temporary folder, removed afterwards")
    p.add_argument("--out", default=None, help="JSON result file")
    args = p.parse_args()

    import torch

    from clustergan.config import load_config
    from clustergan.train.evaluate import evaluate_run
    from clustergan.train.launch import run_training

    work = Path(args.workdir or tempfile.mkdtemp(prefix="sweep-overhead-"))
    overrides = [
        f"train.max_steps={args.steps}",
        "train.epochs=1000",
        "train.epochs_decay=0",
        f"train.threads={args.threads}",
        "train.checkpoint_every=1000",
        "train.sample_every=1000",
        *args.overrides,
    ]
    base = load_config(args.config, overrides)
    storage = work / "sweep"
    stats = None
    if base.cluster.k:  # once, for both sides, outside the timings
        from clustergan.train.builders import compute_clusters, with_data_root

        base = with_data_root(base)
        stats = storage / "clusters" / f"k{base.cluster.k}"
        compute_clusters(base, stats)

    torch.set_num_threads(args.threads)
    import ray

    from clustergan.tune.sweep import run_sweep

    t0 = time.perf_counter()
    ray.init(num_cpus=args.threads, configure_logging=False)
    ray_start = time.perf_counter() - t0
    sweep_yaml = work / "overhead_sweep.yaml"
    sweep_yaml.write_text(
        json.dumps(
            {
                "name": "overhead",
                "base": str(Path(args.config).resolve()),
                "overrides": {o.split("=", 1)[0]: yaml.safe_load(o.split("=", 1)[1]) for o in overrides},
                "num_trials": 1,
                "seeds": [0],
                "workers": 0,
                "cpus_per_worker": args.threads,
                "max_concurrent": 1,
                "protocol": "sweep",
                "baselines": False,
            }
        )
    )
    direct_s, sweep_s = [], []
    for i in range(args.trials):
        cfg = base.model_copy(deep=True)
        cfg.out = str(work / "direct" / f"run{i}")
        if stats is not None:
            cfg.cluster.stats_dir = str(stats)
        start = time.perf_counter()
        cfg = run_training(cfg, gpu=False)
        evaluate_run(cfg.run_dir, protocol="sweep", seed=0, out=cfg.run_dir / "metrics.json")
        direct_s.append(time.perf_counter() - start)
        trial_storage = work / f"sweep{i}"
        if stats is not None:  # computed once above, outside the timings, as for the direct side
            shutil.copytree(stats, trial_storage / "clusters" / stats.name)
        start = time.perf_counter()
        run_sweep(sweep_yaml, storage=trial_storage)
        sweep_s.append(time.perf_counter() - start)
        print(
            f"trial {i}: direct {direct_s[-1]:.1f} s, sweep {sweep_s[-1]:.1f} s, ratio "
            f"{sweep_s[-1] / direct_s[-1]:.3f}",
            flush=True,
        )
    ray.shutdown()
    direct, swept = sum(direct_s), sum(sweep_s)

    result = {
        "trials": args.trials,
        "steps": args.steps,
        "threads": args.threads,
        "direct_s": round(direct, 2),
        "sweep_s": round(swept, 2),
        "per_trial": [[round(d, 2), round(w, 2)] for d, w in zip(direct_s, sweep_s, strict=False)],
        "ray_init_s": round(ray_start, 2),
        "ratio": round(swept / direct, 3),
        "config": args.config,
    }
    print(json.dumps(result, indent=2))
    print(f"sweep / direct = {swept:.1f} s / {direct:.1f} s = {swept / direct:.3f} (target < 1.15)")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
