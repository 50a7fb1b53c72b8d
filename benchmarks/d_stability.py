"""Why does clustergan's discriminator blow up in its first epoch? Training dynamics of one-lever variants.

On the cpu preset's facades budget (64 px, batch 8, seed 0), clustergan's first epoch ends with a mean D loss
of ~10 and G_gan ~16, against MSGAN's 0.36 and ~3.4 (docs/RESULTS.md). This script trains MSGAN, clustergan,
and clustergan or MSGAN with one thing changed, all on the same budget and seed (``--seed``). For each, it
records every step's D loss, G_gan and the norm of D's cluster embeddings (the projection). With ``--eval``
it evaluates the result under the ``sweep`` protocol (NDB, JSD, LPIPS, cond_gain; no FID) or ``curve``
(adds FID and KID), measures the LPIPS between different inputs' outputs (with cond_gain, the collapse rule
of benchmarks/msgan_reference.py) and the cluster diagnostics (cluster effect, hit rate), and writes each
run's test grid to its folder.

    python benchmarks/d_stability.py --device cuda --epochs 10 --eval --json d_stability.json
    python benchmarks/d_stability.py --variants clustergan d_none --epochs 1        # CPU: ~3 min per variant
    python benchmarks/d_stability.py --variants msgan msgan_halved --eval --protocol curve --json out.json

It prints one row per variant:
- epoch 1's mean and max D loss, and the step of the max;
- the last epoch's mean D loss and G_gan;
- the embedding norm at the end;
- with ``--eval``, the metrics.

These are one-seed measurements meant to find a lever. They are not table rows.
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

SWEEPS = REPO / "sweeps"
METRIC_KEYS = ("fid", "kid", "ndb", "jsd", "lpips", "cond_gain")
VARIANTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "msgan": ("msgan.yaml", ()),
    # the authors' discriminator: its second scale at ndf / 2 (benchmarks/msgan_reference.py's ablation)
    "msgan_halved": ("msgan.yaml", ("model.d_scale_width=halved",)),
    # what else separates the cpu preset (64 px, batch 8, D of 3 layers: a 70 px field on a 64 px image) from
    # the 128 px, batch-1 runs of msgan_reference.py, where MSGAN does not ignore its input
    "msgan_b1": ("msgan.yaml", ("train.batch_size=1",)),  # the same images seen, 8x the steps
    "msgan_d2": ("msgan.yaml", ("model.d_layers=2",)),  # a 34 px field, as the reference's 128 px D
    "clustergan": ("clustergan.yaml", ()),
    "d_none": ("clustergan.yaml", ("model.d_condition=none",)),  # D unconditional, G still conditioned
    "no_cluster_losses": ("clustergan.yaml", ("loss.lambda_kl1=0", "loss.lambda_km=0")),
    "ms0": ("clustergan.yaml", ("loss.lambda_ms=0",)),
    "ms0.1": ("clustergan.yaml", ("loss.lambda_ms=0.1",)),
    "ms0.3": ("clustergan.yaml", ("loss.lambda_ms=0.3",)),
}


def run_variant(name: str, args: argparse.Namespace) -> dict:
    import torch

    from clustergan.reproduce import Method, get_preset
    from clustergan.reproduce.run import RunSpec, build_config
    from clustergan.train.builders import prepare_run
    from clustergan.train.dist import LocalContext
    from clustergan.train.launch import write_run_config
    from clustergan.train.loop import Trainer

    config_file, extra = VARIANTS[name]
    study = next(s for s in get_preset("cpu").studies if s.name == "facades")
    overrides = list(extra)  # the study's budget, data root, seed and run folder come from build_config
    if args.num_workers:  # data-loading processes; augmentation is drawn per (seed, epoch, index): same batches
        overrides.append(f"data.num_workers={args.num_workers}")
    if args.max_steps:
        overrides.append(f"train.max_steps={args.max_steps}")
    spec = RunSpec(study, Method(name, name, SWEEPS / config_file, tuple(overrides)), args.seed)
    config = prepare_run(build_config(spec, args.out, args.facades, smoke=False, smoke_epochs=args.epochs))
    write_run_config(config)
    trainer = Trainer(config, LocalContext(device=args.device))
    D = getattr(trainer.D, "module", trainer.D)
    embeddings = [s.embedding for s in D.scales if s.embedding is not None]
    trace: list[dict] = []
    step = trainer.step

    def traced(batch):
        losses = step(batch)
        row = {
            "step": len(trace) + 1,
            "epoch": trainer.epoch + 1,
            "D": float(losses["D"]),
            "G_gan": float(losses["G_gan"]),
        }
        if embeddings:
            row["embedding_norm"] = float(sum(e.weight.detach().norm() for e in embeddings))
        trace.append(row)
        return losses

    trainer.step = traced  # fit() calls self.step
    start = time.perf_counter()
    trainer.fit()
    seconds = time.perf_counter() - start
    first = [r for r in trace if r["epoch"] == 1]
    last_epoch = trace[-1]["epoch"]
    last = [r for r in trace if r["epoch"] == last_epoch]
    worst = max(first, key=lambda r: r["D"])
    result = {
        "variant": name,
        "seed": args.seed,
        "config": config_file,
        "overrides": list(extra),
        "device": args.device,
        "epochs": last_epoch,
        "train_seconds": seconds,
        "epoch1_D_mean": statistics.fmean(r["D"] for r in first),
        "epoch1_D_max": worst["D"],
        "epoch1_D_max_step": worst["step"],
        "epoch1_G_gan_mean": statistics.fmean(r["G_gan"] for r in first),
        "last_D_mean": statistics.fmean(r["D"] for r in last),
        "last_G_gan_mean": statistics.fmean(r["G_gan"] for r in last),
        "embedding_norm_start": trace[0].get("embedding_norm"),
        "embedding_norm_end": trace[-1].get("embedding_norm"),
        "trace": trace,
    }
    if args.eval:
        from torchvision.utils import save_image

        from clustergan.data import load_sources
        from clustergan.metrics import lpips_between_outputs
        from clustergan.train.evaluate import evaluate_run
        from clustergan.train.grids import sample_grid
        from clustergan.train.sampling import load_generator

        metrics = evaluate_run(config.run_dir, protocol=args.protocol, device=args.device)
        result.update({k: metrics[k] for k in METRIC_KEYS if k in metrics})
        model = load_generator(config.run_dir, args.device, "ema")
        sources, _ = load_sources(config.data.root, "test", config.data.direction, config.data.size)
        result["output_lpips_between_inputs"] = lpips_between_outputs(model.generate_fn(), sources.to(args.device))
        grid = sample_grid(model.G, sources[:6].to(args.device), config.model.nz, model.k, seed=0, num_z=3)
        save_image(grid, config.run_dir / "samples_test.jpg")  # the run folder: not committed
        if config.cluster.k:
            from clustergan.reproduce.diagnose import diagnose_run

            diag = diagnose_run(config.run_dir)
            result.update(
                {
                    k: diag[k]
                    for k in (
                        "cluster_effect_lpips",
                        "noise_effect_lpips",
                        "cluster_hit_rate",
                        "generated_cluster_histogram",
                    )
                    if k in diag
                }
            )
    trainer = None  # drop the models before emptying the CUDA cache (traced() still names it)
    torch.cuda.empty_cache() if args.device == "cuda" else None
    return result


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--facades", type=Path, default=REPO.parent / "shared" / "datasets" / "facades")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="epochs at the full learning rate, no decay (default: the cpu preset's 5 + 5)",
    )
    p.add_argument("--seed", type=int, default=0, help="the run's seed (paired across variants: same batches)")
    p.add_argument("--num-workers", type=int, default=0, help="data-loading processes (same batches)")
    p.add_argument("--max-steps", type=int, default=0, help="stop each run after this many steps (a smoke)")
    p.add_argument("--eval", action="store_true", help="evaluate (--protocol) and diagnose clusters")
    p.add_argument("--protocol", default="sweep", choices=["sweep", "curve"], help="curve adds FID and KID")
    p.add_argument("--out", type=Path, default=REPO / "runs" / "d_stability")
    p.add_argument("--json", type=Path, help="also write every variant's result and per-step trace here")
    args = p.parse_args(argv)
    results = []
    print(
        f"{'variant':<19}{'ep1 D mean':>11}{'ep1 D max':>10}{'@step':>6}{'ep1 Ggan':>9}{'last D':>8}"
        f"{'last Ggan':>10}{'emb norm':>9}{'s':>6}  metrics",
        flush=True,
    )
    for name in args.variants:
        r = run_variant(name, args)
        results.append(r)
        metrics = " ".join(
            f"{k} {r[k]:.3g}"
            for k in (*METRIC_KEYS, "output_lpips_between_inputs", "cluster_effect_lpips", "cluster_hit_rate")
            if k in r
        )
        emb = f"{r['embedding_norm_end']:.2f}" if r["embedding_norm_end"] is not None else "-"
        print(
            f"{name:<19}{r['epoch1_D_mean']:>11.3f}{r['epoch1_D_max']:>10.2f}{r['epoch1_D_max_step']:>6}"
            f"{r['epoch1_G_gan_mean']:>9.2f}{r['last_D_mean']:>8.3f}{r['last_G_gan_mean']:>10.2f}{emb:>9}"
            f"{r['train_seconds']:>6.0f}  {metrics}",
            flush=True,
        )
        if args.json:
            args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
