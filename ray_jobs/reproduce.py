"""Ray job entrypoint for the reproduction of the paper's Table 1: ``clustergan reproduce``.

    python ray_jobs/reproduce.py --preset cpu50                  # = make reproduce
    ray job submit --working-dir . -- python ray_jobs/reproduce.py --preset gpu --facades /data/facades

Every argument is ``clustergan reproduce``'s (``clustergan reproduce --help``).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # a job's working dir need not be installed

from clustergan.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["reproduce", *sys.argv[1:]]))
