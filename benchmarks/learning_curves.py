"""Learning curves on facades at 64 px: the evidence for choosing the cpu preset's budget.

Four runs, one seed each, at a constant learning rate (no decay, so a curve is one run that can be extended):
pix2pix, MSGAN at lambda_MS 1 (its paper's weight) and 0.1, and clustergan at lambda_MS 0.1, each from its
preset YAML at 64 px, batch 8, with the EMA generator on (``train.ema.half_life_images`` 2500). Every
``--eval-every`` epochs the run's EMA generator is evaluated in training under the ``curve`` protocol (the
sweep's counts plus FID and KID on 10 samples per input): FID, KID, NDB, JSD, LPIPS, cond_gain.

    python benchmarks/learning_curves.py --epochs 60                     # train / resume all four
    python benchmarks/learning_curves.py --only pix2pix --epochs 80      # extend one run
    python benchmarks/learning_curves.py --report-only                   # table + plot from what exists

Resumable: a run continues from its last checkpoint (``--epochs`` may grow between calls), and every
evaluation already written is kept. Evaluations are archived into the committed ledger
``docs/results/curves/<run>/metrics_epoch_NNNN.json`` after each run and by every call (``--report-only``
too, so stopping mid-run loses nothing evaluated); the ledger keeps the curves (not the weights), and the
report is drawn from it. The report prints one row per evaluation and, per
run, whether FID has plateaued: it changed by less than 5% over the last 20% of the epochs evaluated.
The plot goes to ``docs/figures/cpu_facades_curves.png``. The report ends with the confirmation: the chosen
budget trained with its own schedule (the ``cpu50`` reproduction preset, every finished seed), read from
that preset's committed ledger, under the same rule.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

RUNS = {
    "pix2pix": ("pix2pix.yaml", ()),
    "msgan": ("msgan.yaml", ()),
    "msgan_ms0.1": ("msgan.yaml", ("loss.lambda_ms=0.1",)),
    "clustergan_ms0.1": ("clustergan.yaml", ("loss.lambda_ms=0.1",)),
}
SHOWN = ("fid", "kid", "ndb", "jsd", "lpips", "cond_gain")
PLATEAU_CHANGE, PLATEAU_TAIL = 0.05, 0.2
BUDGET_FID, BUDGET_COND_GAIN, BUDGET_FOLLOW = 0.10, 0.02, ("msgan_ms0.1", "clustergan_ms0.1")


def overrides(args, name: str) -> list[str]:
    return [
        *RUNS[name][1],
        f"data.root={args.facades}",
        "data.size=64",
        "train.batch_size=8",
        f"train.epochs={args.epochs}",
        "train.epochs_decay=0",
        f"train.eval_every={args.eval_every}",
        "train.eval_protocol=curve",
        f"train.checkpoint_every={args.eval_every}",
        f"train.sample_every={args.eval_every}",
        f"train.ema.half_life_images={args.ema_half_life}",
        f"train.threads={args.threads}",
        f"seed={args.seed}",
        f"out={args.out / name}",
    ]


def train(args, name: str) -> None:
    from clustergan.config import load_config
    from clustergan.train.checkpoint import latest_checkpoint
    from clustergan.train.launch import run_training

    config = load_config(REPO / "sweeps" / RUNS[name][0], overrides(args, name))
    resume = latest_checkpoint(config.run_dir / "checkpoints")
    print(f"{name}: {'resuming from ' + str(resume) if resume else 'from scratch'} to epoch {args.epochs}", flush=True)
    run_training(config, gpu=False, resume=resume is not None)


def archive(args, name: str) -> None:
    """Copy the run's evaluations into the committed ledger (never weights)."""
    from clustergan.cache import atomic_write_bytes

    for path in sorted((args.out / name / "eval").glob("metrics_epoch_*.json")):
        atomic_write_bytes(args.ledger / name / path.name, path.read_bytes())


def curve(args, name: str) -> list[tuple[int, dict]]:
    from clustergan.jsonio import read_json

    paths = sorted((args.ledger / name).glob("metrics_epoch_*.json"))
    return [(int(p.stem.rsplit("_", 1)[1]), read_json(p)) for p in paths]


def plateau(points: list[tuple[int, dict]]) -> str:
    """The plateau rule on FID: its change over the last 20% of the epochs evaluated, relative to the end."""
    fid = [(e, m["fid"]) for e, m in points if m.get("fid") is not None]
    if len(fid) < 3:
        return "too few evaluations"
    last_epoch, last = fid[-1]
    start = last_epoch - PLATEAU_TAIL * last_epoch
    before = [v for e, v in fid if e <= start]
    if not before:
        return "too few evaluations"
    change = abs(last - before[-1]) / last
    verdict = "plateau" if change < PLATEAU_CHANGE else "still moving"
    return f"{verdict}: FID {before[-1]:.1f} -> {last:.1f} ({change:.1%}) over epochs {start:.0f}-{last_epoch}"


def budget(curves: dict[str, list[tuple[int, dict]]]) -> list[str]:
    """Issue "Signal"'s rule for the cpu preset: the shortest budget (epoch) at which pix2pix's FID is within
    BUDGET_FID of its plateau and the noise models at lambda_MS 0.1 follow their input (cond_gain >=
    BUDGET_COND_GAIN). A single evaluation is noisy, so an epoch qualifies only when the rule holds there and at
    every later evaluation. pix2pix's plateau is the median FID over the last 20% of its epochs."""
    pix = [(e, m["fid"]) for e, m in curves["pix2pix"] if m.get("fid") is not None]
    if not pix or not all(curves[name] for name in BUDGET_FOLLOW):
        return ["budget: not every curve has evaluations yet"]
    level = budget_level(curves)
    verdict = plateau(curves["pix2pix"])
    lines = [
        f"pix2pix plateau level: median FID {level:.1f} over epochs >= {pix[-1][0] * (1 - PLATEAU_TAIL):.0f}"
        + ("" if verdict.startswith("plateau") else " (provisional: the plateau rule is not met yet)")
    ]

    def holds(epoch: int) -> bool:
        fid = dict(pix).get(epoch)
        gains = [dict((e, m.get("cond_gain")) for e, m in curves[name]).get(epoch) for name in BUDGET_FOLLOW]
        return (
            fid is not None
            and abs(fid - level) <= BUDGET_FID * level
            and all(g is not None and g >= BUDGET_COND_GAIN for g in gains)
        )

    epochs = sorted(set.intersection(*({e for e, _ in curves[n]} for n in ("pix2pix", *BUDGET_FOLLOW))))
    stable = [e for i, e in enumerate(epochs) if all(holds(x) for x in epochs[i:])]
    if stable:
        lines.append(
            f"budget: epoch {stable[0]} is the first from which pix2pix's FID stays within {BUDGET_FID:.0%} of "
            f"that level and {' and '.join(BUDGET_FOLLOW)} keep cond_gain >= {BUDGET_COND_GAIN} (evaluated "
            f"up to epoch {epochs[-1]})"
        )
    else:
        lines.append(f"budget: the rule does not hold stably at any evaluated epoch (up to {epochs[-1]})")
    return lines


def _preset_budget(name: str) -> tuple[int, int, tuple[int, ...]]:
    """The facades study of reproduction preset ``name``: its constant and decaying epochs and its seeds."""
    from clustergan.errors import ConfigError
    from clustergan.reproduce.presets import get_preset

    study = next((s for s in get_preset(name).studies if s.name == "facades"), None)
    given = dict(o.split("=", 1) for o in study.overrides) if study else {}
    if "train.epochs" not in given or "train.epochs_decay" not in given:
        raise ConfigError(f"--confirm-preset {name}: it has no facades study with train.epochs and train.epochs_decay")
    return int(given["train.epochs"]), int(given["train.epochs_decay"]), study.seeds


def confirmation(args, curves: dict[str, list[tuple[int, dict]]]) -> list[str]:
    """The budget trained with its own schedule (the ``--confirm-preset``: its constant + decaying epochs,
    ``paper`` protocol, FID on the same 10 samples per input as the curves'), every seed it has finished,
    against the curves' evaluation at the same total epochs, under the same rule. Read from the preset's
    committed ledger; rows not trained yet say so."""
    from clustergan.jsonio import read_json

    level = budget_level(curves)
    constant, decay, seeds = _preset_budget(args.confirm_preset)
    total = constant + decay
    ledger = args.confirm_ledger or REPO / "docs" / "results" / args.confirm_preset / "runs"
    lines = [
        "",
        f"Confirmation at the budget with its own schedule (`{args.confirm_preset}` preset: {constant} constant + "
        f"{decay} linearly decaying epochs, `paper` protocol, each finished seed) against the constant-lr curve "
        f"at epoch {total}:",
        "",
        f"| run | seed | FID, curve (seed {args.seed}) @{total} | FID, own schedule | "
        f"cond_gain, curve (seed {args.seed}) @{total} | "
        "cond_gain, own schedule | rule |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for name in ("pix2pix", *BUDGET_FOLLOW):
        at = dict(curves[name]).get(total, {})
        fid_at, gain_at = at.get("fid", float("nan")), at.get("cond_gain", float("nan"))
        found = [
            (seed, m)
            for seed in seeds
            if (m := read_json(ledger / "facades" / name / f"seed{seed}" / "metrics.json", {}))
        ]
        if not found:
            lines.append(f"| {name} | - | {fid_at:.1f} | not trained yet | {gain_at:.4f} | - | - |")
        for seed, own in found:
            if name == "pix2pix" and level is None:
                rule = "no pix2pix curve to compare with"
            elif name == "pix2pix":
                ok = abs(own["fid"] - level) <= BUDGET_FID * level
                rule = f"FID within {BUDGET_FID:.0%} of {level:.1f}: {'yes' if ok else 'no'}"
            else:
                rule = f"cond_gain >= {BUDGET_COND_GAIN}: {'yes' if own['cond_gain'] >= BUDGET_COND_GAIN else 'no'}"
            lines.append(
                f"| {name} | {seed} | {fid_at:.1f} | {own['fid']:.1f} | {gain_at:.4f} | "
                f"{own['cond_gain']:.4f} | {rule} |"
            )
    return lines


def budget_level(curves: dict[str, list[tuple[int, dict]]]) -> float | None:
    """pix2pix's plateau level: the median FID over the last 20% of its epochs."""
    pix = [(e, m["fid"]) for e, m in curves["pix2pix"] if m.get("fid") is not None]
    if not pix:
        return None
    tail = sorted(v for e, v in pix if e >= pix[-1][0] * (1 - PLATEAU_TAIL))
    return tail[len(tail) // 2]


def report(args) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = {name: curve(args, name) for name in RUNS}
    lines = ["| run | epoch | " + " | ".join(SHOWN) + " |", "|---|---:|" + "---:|" * len(SHOWN)]
    for name, points in curves.items():
        for epoch, m in points:
            cells = " | ".join("-" if m.get(k) is None else f"{m[k]:.4g}" for k in SHOWN)
            lines.append(f"| {name} | {epoch} | {cells} |")
    lines.append("")
    lines += [f"- {name}: {plateau(points) if points else 'no evaluations yet'}" for name, points in curves.items()]
    lines += [f"- {line}" for line in budget(curves)]
    lines += confirmation(args, curves)
    print("\n".join(lines))
    page = [
        "# Learning curves (facades, 64 px)",
        "",
        f"Written by `python benchmarks/learning_curves.py --report-only` from the ledger in `{args.ledger.name}/`;",
        f"one seed ({args.seed}), batch 8, constant learning rate, EMA generator, `curve` protocol. Plot:",
        f"`docs/figures/{args.figure.name}`.",
        "",
        *lines,
        "",
    ]
    from clustergan.cache import atomic_write_bytes

    atomic_write_bytes(args.page, "\n".join(page).encode())
    print(f"table -> {args.page}")
    fig, axes = plt.subplots(2, 3, figsize=(13, 7))
    for ax, k in zip(axes.flat, SHOWN, strict=True):
        for name, points in curves.items():
            xs = [e for e, m in points if m.get(k) is not None]
            ax.plot(xs, [m[k] for _, m in points if m.get(k) is not None], marker="o", ms=3, label=name)
        ax.set_title(k)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(f"facades 64 px, batch 8, constant lr, EMA generator, curve protocol, seed {args.seed}")
    fig.tight_layout()
    args.figure.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.figure, dpi=110)
    print(f"plot -> {args.figure}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", nargs="+", choices=list(RUNS), default=list(RUNS))
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--eval-every", type=int, default=5)
    p.add_argument("--ema-half-life", type=int, default=2500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--facades", type=Path, default=REPO.parent / "shared" / "datasets" / "facades")
    p.add_argument("--out", type=Path, default=REPO / "runs" / "curves")
    p.add_argument("--ledger", type=Path, default=REPO / "docs" / "results" / "curves")
    p.add_argument("--figure", type=Path, default=REPO / "docs" / "figures" / "cpu_facades_curves.png")
    p.add_argument("--page", type=Path, default=REPO / "docs" / "results" / "curves.md")
    p.add_argument("--report-only", action="store_true")
    p.add_argument("--confirm-preset", default="cpu50", help="the preset that trains the budget with its schedule")
    p.add_argument(
        "--confirm-ledger", type=Path, default=None, help="its runs (default docs/results/<confirm-preset>/runs)"
    )
    args = p.parse_args()
    if not args.report_only:
        if not (args.facades / "train").is_dir():
            raise SystemExit(f"facades not found at {args.facades}: pass --facades DIR")
        for name in args.only:
            train(args, name)
            archive(args, name)
    for name in RUNS:  # also what a run still in progress (or stopped) has evaluated so far
        archive(args, name)
    report(args)


if __name__ == "__main__":
    main()
