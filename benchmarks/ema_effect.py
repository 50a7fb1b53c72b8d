"""What the EMA generator does to the means and to the seed spread, raw and EMA evaluated from the same
checkpoints.

Each (method, seed) trains once with ``train.ema`` on, on the procedural dataset at the reproduction's synth
budget (192 pairs, batch 8, lr 8e-4, 10 + 5 epochs = 360 steps, 32 px; the encoder at the images' own
size), and its last checkpoint is evaluated twice under the ``paper`` protocol with 10 NDB bins (as the
synth study): ``--generator raw`` and ``--generator ema``. Printed: per method and metric the mean and
sample std over seeds of each, and the paired EMA - raw difference (mean and its per-seed values).

    python benchmarks/ema_effect.py --seeds 0 1 2 --out runs/ema_effect

Finished runs and evaluations in ``--out`` (``<method>/seed<N>/metrics_{raw,ema}.json``) are kept and not
redone, so an interrupted run resumes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

BUDGET = (
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
METHODS = {
    "msgan_ms0.1": ("cluster.k=0", "loss.lambda_kl1=0.0", "loss.lambda_km=0.0", "loss.lambda_ms=0.1"),
    "clustergan_ms0.1": ("cluster.k=4", "loss.lambda_ms=0.1"),
}
SHOWN = ("fid", "kid", "ndb", "jsd", "lpips", "mode_coverage", "cond_gain")


def run_one(method: str, seed: int, out: Path, half_life: int, threads: int) -> dict[str, dict]:
    from clustergan.config import load_config
    from clustergan.jsonio import read_json
    from clustergan.train.checkpoint import latest_checkpoint
    from clustergan.train.evaluate import evaluate_run
    from clustergan.train.launch import run_training

    total_epochs = 15
    last = latest_checkpoint(out / "checkpoints")
    if last is None or not last.name.endswith(f"{total_epochs:04d}.pt"):
        run_training(
            load_config(
                REPO / "sweeps" / "debug.yaml",
                [
                    *BUDGET,
                    *METHODS[method],
                    f"train.ema.half_life_images={half_life}",
                    f"seed={seed}",
                    f"out={out}",
                    f"train.threads={threads}",
                ],
            )
        )
    result = {}
    for generator in ("raw", "ema"):
        path = out / f"metrics_{generator}.json"
        if not path.is_file():
            evaluate_run(out, protocol="paper", seed=0, ndb_bins=10, out=path, generator=generator)
        result[generator] = read_json(path)
        if result[generator]["generator"] != generator:
            raise SystemExit(f"{path}: evaluated {result[generator]['generator']}, asked for {generator}")
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--half-life", type=int, default=2500, help="train.ema.half_life_images (ramp-up 0.05)")
    p.add_argument("--out", type=Path, default=REPO / "runs" / "ema_effect")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    runs = {
        (m, s): run_one(m, s, args.out / m / f"seed{s}", args.half_life, args.threads)
        for s in args.seeds
        for m in args.methods
    }
    print(f"\nEMA half-life {args.half_life} images (ramp-up 0.05), seeds {args.seeds}, paper protocol, 10 NDB bins")
    print("| method | metric | raw mean ± std | EMA mean ± std | EMA - raw, mean (per seed) |")
    print("|---|---|---|---|---|")

    def ms(values):
        return f"{statistics.mean(values):.4g} ± {statistics.stdev(values) if len(values) > 1 else 0:.2g}"

    for m in args.methods:
        for k in SHOWN:
            raw = [runs[(m, s)]["raw"].get(k) for s in args.seeds]
            ema = [runs[(m, s)]["ema"].get(k) for s in args.seeds]
            if None in raw or None in ema:
                continue
            diff = [e - r for e, r in zip(ema, raw, strict=False)]
            per_seed = ", ".join(f"{d:+.3g}" for d in diff)
            print(f"| {m} | {k} | {ms(raw)} | {ms(ema)} | {statistics.mean(diff):+.4g} ({per_seed}) |")


if __name__ == "__main__":
    main()
