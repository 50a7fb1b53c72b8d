"""Ray job entrypoint for one distributed training run.

    ray job submit --working-dir . -- python ray_jobs/train.py --config sweeps/debug.yaml --workers 2 train.epochs=3

Same as ``clustergan train --workers N``; connects to the cluster the job runs on (``RAY_ADDRESS``).
"""

from __future__ import annotations

import argparse
import sys

from clustergan.errors import ClusterganError


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="training config YAML")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. train.epochs=2")
    p.add_argument("--workers", type=int, default=2, help="Ray Train workers (>= 1)")
    p.add_argument("--cpus-per-worker", type=float, default=1.0)
    p.add_argument("--gpu", action="store_true")
    p.add_argument("--resume", action="store_true", help="continue from the run's last checkpoint")
    p.add_argument("--storage", default=None, help="Ray storage folder or URI (default: <run dir>/ray)")
    args = p.parse_args(argv)
    try:
        from clustergan.config import load_config
        from clustergan.train.builders import prepare_run
        from clustergan.train.loop import write_run_config
        from clustergan.tune.train_ray import train_with_ray

        config = prepare_run(load_config(args.config, args.overrides))
        write_run_config(config)
        result = train_with_ray(config, workers=args.workers, use_gpu=args.gpu, resume=args.resume,
                                storage_path=args.storage, cpus_per_worker=args.cpus_per_worker)
    except ClusterganError as e:
        print(f"ray_jobs/train.py: error: {e}", file=sys.stderr)
        return 2
    print(f"run folder: {config.run_dir}; Ray checkpoint: {result.checkpoint}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
