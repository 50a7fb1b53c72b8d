"""Ray job entrypoint for a sweep: ``clustergan sweep`` (the job connects to the cluster it runs on,
``RAY_ADDRESS``).

    ray job submit --working-dir . -- python ray_jobs/sweep.py --config sweeps/debug_sweep.yaml --smoke-test

Every argument is ``clustergan sweep``'s (``clustergan sweep --help``).
"""

from __future__ import annotations

import sys

from clustergan.cli import main

if __name__ == "__main__":
    sys.exit(main(["sweep", *sys.argv[1:]]))
