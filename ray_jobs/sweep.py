"""Ray job entrypoint for a sweep.

    ray job submit --working-dir . -- python ray_jobs/sweep.py --config sweeps/debug_sweep.yaml --smoke-test

Same as ``clustergan sweep``; connects to the cluster the job runs on (``RAY_ADDRESS``).
"""

from __future__ import annotations

import argparse
import sys

from clustergan.errors import ClusterganError


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="sweep YAML, e.g. sweeps/debug_sweep.yaml")
    p.add_argument("--storage", default=None, help="experiment folder or URI (default runs/sweeps/<name>)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted sweep")
    p.add_argument("--smoke-test", action="store_true", help="shrink the sweep to seconds")
    p.add_argument("--ledger", default=None, help="folder of finished trials kept across machines")
    p.add_argument("--time-limit", type=float, default=None, help="whole-sweep limit in seconds")
    p.add_argument("--max-trials", type=int, default=None, help="start at most this many trials in this run")
    p.add_argument("--local", default=None, help="with a URI --storage: the driver's local copy")
    args = p.parse_args(argv)
    try:
        from clustergan.tune.sweep import run_sweep

        exp = run_sweep(args.config, storage=args.storage, resume=args.resume, smoke_test=args.smoke_test,
                        ledger=args.ledger, time_limit_s=args.time_limit, local=args.local,
                        max_trials=args.max_trials)
    except ClusterganError as e:
        print(f"ray_jobs/sweep.py: error: {e}", file=sys.stderr)
        return 2
    print(f"experiment folder: {exp}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
