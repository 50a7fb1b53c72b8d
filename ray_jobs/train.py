"""Ray job entrypoint for one distributed training run: ``clustergan train`` with 2 Ray Train workers unless
``--workers`` says otherwise (the job connects to the cluster it runs on, ``RAY_ADDRESS``).

    ray job submit --working-dir . -- python ray_jobs/train.py --config sweeps/debug.yaml --workers 2 train.epochs=3

Every argument is ``clustergan train``'s (``clustergan train --help``).
"""

from __future__ import annotations

import sys

from clustergan.cli import main

DEFAULT_WORKERS = "2"

if __name__ == "__main__":
    args = sys.argv[1:]
    if not any(a == "--workers" or a.startswith("--workers=") for a in args):
        args = ["--workers", DEFAULT_WORKERS, *args]
    sys.exit(main(["train", *args]))
