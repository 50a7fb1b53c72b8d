"""MSGAN at lambda_MS 1: its authors' pix2pix code beside our ``msgan`` configuration, under one set of
conditions, to tell whether our collapse at the paper's setting is the method's or our code's.

Both sides train on facades (label map -> photo) at 128 px, batch 1, for ``--steps`` steps at a constant
learning rate (2,000 steps = 5 epochs of the 400 training pairs; the reference keeps its learning rate
constant for its first 100 epochs), seeds 0 and 1, 2 threads. Both read the same data through the same
pipeline: clustergan's ``PairedImageDataset`` at ``load_size`` 128 (a bicubic resize, no crop, one random
flip shared by the pair: what the reference's aligned dataset does at its default ``loadSize = fineSize``),
shuffled by the same seeded sampler, so step t of seed s shows both sides the same pair, flipped alike.
The reference's own networks, losses, optimisers and update order train on it; only its data loader and
its visualiser are left out. Our side is ``sweeps/msgan.yaml`` with the reference's 128 px discriminator
depth (``model.d_layers=2``, its ``basic_128_multi``), trained by ``clustergan``'s own training function.

Each run is evaluated under the ``curve`` protocol (10 samples per input: FID, KID, NDB, JSD, LPIPS,
cond_gain) on the 106 test inputs, with the same noise draws on both sides, and the LPIPS between the
outputs of neighbouring inputs (one sample each) is measured beside it. The collapse rule
(:func:`collapsed`): cond_gain < 0.005 (the outputs fit another input's target as well as their own) and an
LPIPS between different inputs' outputs below 0.05 (every input gives nearly the same image; the real test
photos are ~0.5 apart).

The reference is assembled outside the repository from its public sources, never committed:
``--source`` is a checkout of github.com/HelenMao/MSGAN or its ``.git`` folder; its
``Pix2Pix-Mode-Seeking`` folder is copied into ``--work`` (default: the clustergan cache). Runs are
resumable (a checkpoint per epoch on both sides); results go to the committed folder
``docs/results/msgan_reference/`` (metrics, loss traces per epoch; never weights) and the figure with every run's
sample grid and traces, ``docs/figures/msgan_reference.jpg`` (the grids themselves stay in the run folders).

    python benchmarks/msgan_reference.py --source /path/to/MSGAN            # train + evaluate all four
    python benchmarks/msgan_reference.py --source /path/to/MSGAN --only reference_s0
    python benchmarks/msgan_reference.py --only ours-halved_s0 ours-halved_s1  # an ablation: no --source
    python benchmarks/msgan_reference.py --report-only                      # the table from what exists
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SIZE, NZ = 128, 8
SEEDS = (0, 1)
RUNS = [f"{side}_s{seed}" for seed in SEEDS for side in ("reference", "ours")]
# one-at-a-time changes of ours towards the reference, trained only when named with --only (each seed paired
# with ours at that seed: the same data order and noise draws)
VARIANTS = {"halved": ["model.d_scale_width=halved"], "gfirst": ["train.update_order=g_first"]}
ABLATIONS = [f"ours-{v}_s{seed}" for seed in SEEDS for v in VARIANTS]
COLLAPSE_GAIN, COLLAPSE_BETWEEN = 0.005, 0.05
SHOWN = ("fid", "kid", "ndb", "jsd", "lpips", "cond_gain", "output_lpips_between_inputs")
# per-epoch traces, in our loss definitions: the reference's G_L1 is already x lambda_L1 (10) and its D loss
# counts the real pair once per fake (2 x ours, which averages the two fakes)
TRACE_KEYS = ("G_gan", "G_l1", "G_ms", "D")


def side_and_seed(name: str) -> tuple[str, int]:
    """``ours-halved_s1`` -> (``ours-halved``, 1)."""
    side, seed = name.rsplit("_s", 1)
    return side, int(seed)


def ours_overrides(args, name: str) -> list[str]:
    side, seed = side_and_seed(name)
    variant = VARIANTS[side.split("-", 1)[1]] if "-" in side else []
    return [
        f"data.root={args.facades}",
        f"data.size={SIZE}",
        f"data.load_size={SIZE}",
        "model.d_layers=2",
        "train.batch_size=1",
        f"train.epochs={args.epochs}",
        "train.epochs_decay=0",
        "train.checkpoint_every=1",
        f"train.sample_every={args.epochs}",
        "train.ema.half_life_images=0",
        "train.threads=2",
        f"seed={seed}",
        f"out={args.out / name}",
        *variant,
    ]


# ------------------------------------------------------------------------------------------- reference
def assemble(source: Path, work: Path) -> tuple[Path, str]:
    """Copy the reference's Pix2Pix-Mode-Seeking folder out of ``source`` into ``work``; (folder, commit)."""
    from clustergan.errors import ClusterganError

    source = source.expanduser().resolve()
    git_dir = source if (source / "HEAD").is_file() and (source / "objects").is_dir() else source / ".git"
    if not (git_dir / "HEAD").is_file():
        raise ClusterganError(f"--source {source}: not a checkout of github.com/HelenMao/MSGAN nor its .git folder")
    commit = subprocess.run(
        ["git", "--git-dir", str(git_dir), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    folder = work / f"msgan-{commit[:12]}" / "Pix2Pix-Mode-Seeking"
    if not (folder / "models" / "pix2pix_model.py").is_file():
        staging = work / f"msgan-{commit[:12]}.part"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        archive = subprocess.run(
            ["git", "--git-dir", str(git_dir), "archive", commit, "Pix2Pix-Mode-Seeking"],
            capture_output=True,
            check=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(staging)], input=archive, check=True)
        shutil.rmtree(folder.parent, ignore_errors=True)
        staging.rename(folder.parent)
    return folder, commit


def reference_model(folder: Path, seed: int):
    """The reference's Pix2PixModel at 128 px with its README's training options (its defaults)."""
    import torch

    sys.path.insert(0, str(folder))
    from models.pix2pix_model import Pix2PixModel  # the reference's own module
    from options.train_options import TrainOptions

    parser = TrainOptions().initialize(argparse.ArgumentParser())
    opt = parser.parse_args(
        ["--dataroot", "unused", "--gpu_ids", "-1", "--netG", "unet_128", "--netD", "basic_128_multi"]
        + ["--loadSize", str(SIZE), "--fineSize", str(SIZE), "--direction", "AtoB", "--name", f"s{seed}"]
    )
    opt.isTrain, opt.gpu_ids, opt.checkpoints_dir = True, [], str(folder / "unused_checkpoints")
    torch.manual_seed(seed)
    model = Pix2PixModel()
    model.initialize(opt)
    return model, opt


def train_reference(args, seed: int, folder: Path, commit: str) -> None:
    import torch
    from torch.utils.data import DataLoader, DistributedSampler

    from clustergan.data import PairedImageDataset
    from clustergan.jsonio import read_json, write_json
    from clustergan.train.checkpoint import load_checkpoint, save_checkpoint

    run = args.out / f"reference_s{seed}"
    ckpt = run / "checkpoint.pt"
    torch.set_num_threads(2)
    model, _ = reference_model(folder, seed)
    dataset = PairedImageDataset(args.facades, "train", "BtoA", SIZE, train=True, load_size=SIZE, seed=seed)
    sampler = DistributedSampler(dataset, num_replicas=1, rank=0, shuffle=True, seed=seed, drop_last=False)
    loader = DataLoader(dataset, batch_size=1, sampler=sampler)
    epochs = args.epochs
    trace_path = args.ledger / f"reference_s{seed}" / "traces.json"
    start, traces = 0, read_json(trace_path, {}).get("epochs", [])
    if ckpt.is_file():
        state = load_checkpoint(ckpt)
        for name in ("netG", "netD", "optimizer_G", "optimizer_D"):
            getattr(model, name).load_state_dict(state[name])
        torch.set_rng_state(state["rng"])
        start, traces = state["epoch"], traces[: state["epoch"]]
    for epoch in range(start, epochs):
        sampler.set_epoch(epoch)
        dataset.set_epoch(epoch)
        sums, began = dict.fromkeys(TRACE_KEYS, 0.0), time.perf_counter()
        for i, batch in enumerate(loader):
            model.set_input({"A": batch["source"], "B": batch["target"], "A_paths": "", "B_paths": ""})
            model.optimize_parameters()
            got = model.get_current_losses()
            for key, value in (("G_gan", got["G_GAN"]), ("G_l1", got["G_L1"] / 10.0), ("G_ms", got["lz"])):
                sums[key] += value
            sums["D"] += got["D"] / 2.0
            if (i + 1) % 100 == 0:
                print(f"reference_s{seed} epoch {epoch + 1}/{epochs} step {i + 1}/{len(loader)} {got}", flush=True)
        traces.append(
            {
                "epoch": epoch + 1,
                "seconds": time.perf_counter() - began,
                **{k: v / len(loader) for k, v in sums.items()},
            }
        )
        state = {name: getattr(model, name).state_dict() for name in ("netG", "netD", "optimizer_G", "optimizer_D")}
        save_checkpoint(ckpt, {**state, "epoch": epoch + 1, "rng": torch.get_rng_state()})
        write_json(trace_path, {"epochs": traces, "reference_commit": commit, "seed": seed})
        print(f"reference_s{seed}: epoch {epoch + 1}/{epochs} {traces[-1]}", flush=True)


# ------------------------------------------------------------------------------------------- evaluation
def reference_generator(args, seed: int, folder: Path):
    from clustergan.train.checkpoint import load_checkpoint

    model, _ = reference_model(folder, seed)
    state = load_checkpoint(args.out / f"reference_s{seed}" / "checkpoint.pt")
    model.netG.load_state_dict(state["netG"])
    return model.netG.eval()


def generate_fn_of(netG):
    """Our sampler's contract and noise order (one [B, nz] draw per sample), for the reference's G(x, z)."""
    import torch

    @torch.no_grad()
    def fn(sources, n, generator):
        rows = [netG(sources, torch.randn(sources.shape[0], NZ, generator=generator)).clamp(-1, 1) for _ in range(n)]
        return torch.stack(rows, dim=1)

    return fn


def evaluate(args, name: str, folder: Path | None, commit: str | None) -> None:
    import torch
    from torchvision.utils import save_image

    from clustergan.data import load_sources, load_targets
    from clustergan.metrics import evaluate as run_metrics
    from clustergan.metrics import get_protocol, lpips_between_outputs, write_metrics_json
    from clustergan.provenance import provenance
    from clustergan.train.grids import sample_grid
    from clustergan.train.sampling import load_generator

    side, seed = side_and_seed(name)
    torch.set_num_threads(2)
    sources, _ = load_sources(args.facades, "test", "BtoA", SIZE)
    test_targets, _ = load_targets(args.facades, "test", "BtoA", SIZE)
    train_targets, _ = load_targets(args.facades, "train", "BtoA", SIZE)
    if side == "reference":
        netG = reference_generator(args, seed, folder)
        fn, G = generate_fn_of(netG), (lambda x, z, ids: netG(x, z))
        about = {"generator": f"MSGAN reference (github.com/HelenMao/MSGAN {commit}), Pix2Pix-Mode-Seeking"}
    else:
        model = load_generator(args.out / name, "cpu", "raw")
        fn, G = model.generate_fn(), model.G
        about = {"generator": f"clustergan msgan, {model.checkpoint}"}
    protocol = get_protocol("curve")
    if args.ndb_bins:  # tiny data cannot fill the protocol's 20 bins; recorded in metrics.json's protocol
        protocol = dataclasses.replace(protocol, ndb_bins=args.ndb_bins)
    result = run_metrics(fn, sources, train_targets, protocol, seed=0, test_targets=test_targets)
    result["output_lpips_between_inputs"] = lpips_between_outputs(fn, sources)
    info = {**provenance(), **about, "steps": args.steps, "seed": seed}
    write_metrics_json(args.ledger / name / "metrics.json", result, info)
    # the grid stays in the run folder: the committed figure (figure()) carries every run's grid
    save_image(sample_grid(G, sources[:6], NZ, 0, seed=0, num_z=3), args.out / name / "samples.jpg")
    print(f"{name}: " + ", ".join(f"{k} {result[k]:.4g}" for k in SHOWN), flush=True)


def ours_traces(args, name: str) -> list[dict]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(args.out / name / "tensorboard"))
    acc.Reload()
    tags = set(acc.Tags().get("scalars", []))
    by_epoch: dict[int, dict] = {}
    for key in TRACE_KEYS:
        for event in acc.Scalars(f"train/{key}") if f"train/{key}" in tags else []:
            by_epoch.setdefault(event.step, {"epoch": event.step})[key] = event.value
    return [by_epoch[e] for e in sorted(by_epoch)]


# ------------------------------------------------------------------------------------------- report
def collapsed(m: dict) -> bool:
    return m["cond_gain"] < COLLAPSE_GAIN and m["output_lpips_between_inputs"] < COLLAPSE_BETWEEN


def report(args) -> None:
    from clustergan.jsonio import read_json

    rows = [(n, read_json(args.ledger / n / "metrics.json", None)) for n in RUNS + ABLATIONS]
    print(f"| run | {' | '.join(SHOWN)} | collapsed |\n|---|{'---|' * (len(SHOWN) + 1)}")
    for name, m in rows:
        if m:
            cells = " | ".join(f"{m[k]:.4g}" for k in SHOWN)
            print(f"| {name} | {cells} | {'yes' if collapsed(m) else 'no'} |")
    print("\nloss traces per epoch (our definitions: G_l1 unweighted, D = real + mean of the two fakes):")
    for name in RUNS + ABLATIONS:
        traces = read_json(args.ledger / name / "traces.json", {}).get("epochs", [])
        for t in traces:
            print(f"  {name} epoch {t['epoch']}: " + ", ".join(f"{k} {t[k]:.4g}" for k in TRACE_KEYS if k in t))


def figure(args) -> Path | None:
    """Loss traces per epoch (G_ms, G_gan, D) and every run's sample grid, in one image for the docs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from clustergan.jsonio import read_json

    names = [n for n in RUNS + ABLATIONS if (args.ledger / n / "metrics.json").is_file()]
    missing = [n for n in names if not (args.out / n / "samples.jpg").is_file()]
    if not names or missing:  # a figure without some evaluated runs' grids would replace a complete one
        print(f"figure: {args.figure} left as it is; no sample grid in {args.out} for: {', '.join(missing) or '-'}")
        return None
    rows = (len(names) + 1) // 2  # the grids two to a row, reference beside ours for each seed
    fig = plt.figure(figsize=(12, 3.4 + 5.4 * rows))
    grid = fig.add_gridspec(1 + rows, 6, height_ratios=[1.3] + [2.1] * rows)
    for col, key in enumerate(("G_ms", "G_gan", "D")):
        ax = fig.add_subplot(grid[0, 2 * col : 2 * col + 2])
        for name in names:
            traces = read_json(args.ledger / name / "traces.json", {}).get("epochs", [])
            ax.plot(
                [t["epoch"] for t in traces], [t[key] for t in traces], "o-" if "ours" in name else "s--", label=name
            )
        ax.set_xlabel("epoch (400 steps)")
        ax.set_title(key + (" (1 / (mean|dG| / mean|dz|))" if key == "G_ms" else ""), fontsize=9)
        ax.set_yscale("log" if key == "G_ms" else "linear")
        if col == 0:
            ax.legend(fontsize=7)
    for i, name in enumerate(names):
        ax = fig.add_subplot(grid[1 + i // 2, 3 * (i % 2) : 3 * (i % 2) + 3])
        ax.imshow(plt.imread(args.out / name / "samples.jpg"))
        ax.set_title(f"{name}: input, then 6 noise draws", fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    path = args.figure
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90, pil_kwargs={"quality": 85})
    plt.close(fig)
    return path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--source", type=Path, help="a checkout of github.com/HelenMao/MSGAN, or its .git folder")
    p.add_argument("--facades", type=Path, default=REPO.parent / "shared" / "datasets" / "facades")
    p.add_argument("--steps", type=int, default=2000, help="a whole number of epochs (400 steps on facades)")
    p.add_argument("--out", type=Path, default=REPO / "runs" / "msgan_reference", help="run folders (weights)")
    p.add_argument("--ledger", type=Path, default=REPO / "docs" / "results" / "msgan_reference")
    p.add_argument("--figure", type=Path, default=REPO / "docs" / "figures" / "msgan_reference.jpg")
    p.add_argument("--work", type=Path, default=None, help="where the reference is assembled (cache)")
    p.add_argument("--only", nargs="*", choices=RUNS + ABLATIONS, default=None, help="default: the four RUNS")
    p.add_argument("--ndb-bins", type=int, default=None, help="fewer NDB bins than the protocol's (tiny data)")
    p.add_argument("--report-only", action="store_true")
    args = p.parse_args()
    from clustergan.cache import cache_dir
    from clustergan.config import load_config
    from clustergan.data import list_images
    from clustergan.errors import ClusterganError
    from clustergan.jsonio import write_json
    from clustergan.train.checkpoint import latest_checkpoint
    from clustergan.train.launch import run_training

    try:
        if not args.report_only:
            names = args.only or RUNS
            if not args.source and any(n.startswith("reference") for n in names):
                raise ClusterganError("--source: give a checkout of github.com/HelenMao/MSGAN (or its .git)")
            if not (args.facades / "train").is_dir():
                raise ClusterganError(f"--facades {args.facades}: no train/ folder; pass the pix2pix facades folder")
            pairs = len(list_images(args.facades, "train"))
            if args.steps <= 0 or args.steps % pairs:
                raise ClusterganError(f"--steps {args.steps}: use a whole number of epochs ({pairs} steps each)")
            args.epochs = args.steps // pairs
            folder = commit = None  # the reference is assembled only when one of its runs is named
            if args.source:
                folder, commit = assemble(args.source, args.work or cache_dir("msgan_reference"))
            for name in names:
                seed = side_and_seed(name)[1]
                if (args.ledger / name / "metrics.json").is_file():
                    print(f"{name}: evaluated already ({args.ledger / name / 'metrics.json'})", flush=True)
                    continue
                (args.out / name).mkdir(parents=True, exist_ok=True)
                if name.startswith("reference"):
                    train_reference(args, seed, folder, commit)
                else:
                    config = load_config(REPO / "sweeps" / "msgan.yaml", ours_overrides(args, name))
                    resume = latest_checkpoint(config.run_dir / "checkpoints")
                    run_training(config, gpu=False, resume=resume is not None)
                    write_json(args.ledger / name / "traces.json", {"epochs": ours_traces(args, name), "seed": seed})
                evaluate(args, name, folder, commit)
        report(args)
        if path := figure(args):
            print(f"figure: {path}")
    except ClusterganError as e:
        raise SystemExit(f"msgan_reference: {e}") from None
    print(json.dumps({"ledger": str(args.ledger)}))


if __name__ == "__main__":
    main()
