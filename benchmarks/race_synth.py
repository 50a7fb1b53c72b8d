"""Does the race separate what differs and keep together what does not? A race on the procedural dataset
(4 known modes, 32 px), at the demo's budget (``sweeps/demo_sweep.yaml``: 192 training pairs, 360 steps,
the ``synth`` protocol), through ``clustergan.tune.race`` with its default rule (schedule 2 -> 4 -> 8, paired
t-test, Holm, alpha 0.05, margins NDB 1, JSD 0.01, LPIPS 0.01). The entrants:

- ``clustergan``: the demo's hand-set clustergan (k 4, lambda_MS 0.1, lambda_kL1 1, lambda_km 0.05), seeds
  0-7; it covers the 4 modes in every seed (docs/results/demo.md);
- ``clustergan_copy``: the same configuration on the disjoint seeds 100-107 (paired with the first by index);
- ``pix2pix``: the pix2pix baseline (no noise: one mode per input), seeds 0-7.

The race must drop pix2pix and must not separate the two copies; the script exits 1 when it does either.

    python benchmarks/race_synth.py --out runs/race_synth --concurrent 2

Resumable: a rerun reads back every finished run under ``--out`` and trains only the others.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SWEEP = REPO / "sweeps" / "demo_sweep.yaml"
COPY_OFFSET = 100


def candidates(sweep_yaml: Path, threads: int):
    """The three entrants and the base config, built as the demo sweep builds its fixed trials."""
    from clustergan.tune.race_runs import Candidate
    from clustergan.tune.space import baseline_params, build_trial_config, control_params
    from clustergan.tune.sweep_config import load_sweep

    sweep, base = load_sweep(sweep_yaml)
    base = {**base, "train": {**base["train"], "threads": threads}}

    def config(params: dict) -> dict:
        return build_trial_config(base, params, 0, "unused").to_dict()

    clustergan = config(control_params("clustergan", sweep.controls, base))
    entrants = [
        Candidate(name="clustergan", kind="search", train_config=clustergan),
        Candidate(name="clustergan_copy", kind="search", train_config=clustergan, seed_offset=COPY_OFFSET),
        Candidate(name="pix2pix", kind="baseline:pix2pix", train_config=config(baseline_params("pix2pix", base))),
    ]
    return sweep, base, entrants


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=REPO / "runs" / "race_synth")
    p.add_argument("--concurrent", type=int, default=2, help="runs side by side as Ray tasks (1: in this process)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per run")
    p.add_argument("--dry-run", action="store_true", help="print the planned rounds and runs, train nothing")
    args = p.parse_args()

    from clustergan.config import validate
    from clustergan.jsonio import read_json
    from clustergan.train.builders import ensure_clusters, with_data_root
    from clustergan.tune.race import STATE_FILE, race_entrants
    from clustergan.tune.sweep_config import RaceConfig

    sweep, base, entrants = candidates(SWEEP, args.threads)
    stats = with_data_root(validate(entrants[0].train_config, source="race_synth clustergan"))
    ensure_clusters(stats, args.out / "clusters" / f"k{stats.cluster.k}")
    config = RaceConfig(concurrent=args.concurrent)
    race_entrants(
        entrants,
        config,
        args.out,
        sweep.protocol,
        clusters=args.out,
        about={"experiment": f"benchmarks/race_synth.py ({SWEEP.name} fixed trials)"},
        dry_run=args.dry_run,
    )
    if args.dry_run:
        return 0
    state = read_json(args.out / STATE_FILE)
    drops = state["drops"]
    print(f"\nstatus: {state['status']}; survivors {state['survivors']}")
    for d in drops:
        print(f"  round {d['round'] + 1}: {d['by']} dropped {d['dropped']} on {d['objective']} (Holm p {d['p']:.3g})")
    failures = []
    if "pix2pix" in state["survivors"]:
        failures.append("pix2pix was not dropped")
    if {"clustergan", "clustergan_copy"} - set(state["survivors"]):
        failures.append("the two copies of clustergan were separated")
    if failures:
        print("the race's check fails: " + "; ".join(failures))
        return 1
    print("the race's check holds: pix2pix dropped, the two copies of clustergan not separated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
