"""``clustergan reproduce``: the paper's Table 1 at a preset's scale (``ray_jobs/reproduce.py`` runs it as a
Ray job). Train pix2pix, MSGAN and clustergan with the same budget and seeds, evaluate them under the
study's protocol, write the preset's page (``docs/RESULTS.md`` for cpu50) and the ledger of finished runs.

    clustergan reproduce --preset cpu50                  # 2 CPU cores (the default)
    clustergan reproduce --preset gpu                    # the paper's scale, DDP on every GPU
    clustergan reproduce --preset cpu --study synth      # the earlier 500-step preset, one study only
    clustergan reproduce --preset cpu50 --report-only    # rewrite the report from finished runs

Interrupted? Run the same command again: finished runs are skipped, a run in progress resumes from its
last checkpoint. On a fresh machine the committed ledger (``docs/results/<preset>/runs``, written with the
report) restores the finished runs' results, so a reproduction can grow seed by seed
(``--study facades --seeds 0``). A first run on a new GPU machine: ``--study facades --seeds 0 --epochs 1
--train-only`` trains one epoch of every facades run, timed, not evaluated (smoke runs go to
``runs/reproduce/<preset>-smoke``).

A sweep trial that trained the sweep's best configuration with seed 0 and the study's budget can be taken
as that row's seed 0 instead of training it again, when it is the same training (checked: config, dataset,
last epoch, clusters): ``--only clustergan_best --adopt clustergan_best=<sweep>/trials/<id>/seed0``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from clustergan.errors import ClusterganError
from clustergan.jsonio import read_json


def adopt(preset, out: Path, facades: Path, studies: list[str] | None, item: str, smoke: bool) -> None:
    """``--adopt KEY=RUN_DIR``: the run's seed comes from its own config."""
    from clustergan.reproduce.run import adopt_run, run_specs

    key, sep, folder = item.partition("=")
    if not sep or not key or not folder:
        raise ClusterganError(
            f"--adopt {item!r}: write it as KEY=RUN_DIR, e.g. "
            f"clustergan_best=runs/sweeps/facades_search/trials/<id>/seed0"
        )
    seed = read_json(Path(folder) / "config.json", {}).get("config", {}).get("seed")
    if not isinstance(seed, int):
        raise ClusterganError(
            f"--adopt {item}: {Path(folder) / 'config.json'} is missing or has no seed; give a finished run folder"
        )
    specs = run_specs(preset, studies, [key], [seed])
    if len(specs) != 1:
        raise ClusterganError(f"--adopt {item}: {len(specs)} runs of {key} with seed {seed}; pick one with --study")
    run_dir = adopt_run(specs[0], Path(folder), out, facades, smoke=smoke)
    print(f"adopted {folder} as {specs[0].name} ({run_dir}): not trained again")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--preset",
        default="cpu50",
        help="cpu50 (default: the learning curves' budget, 2,500 steps), cpu80 (4,000 steps), cpu (the earlier "
        "500-step preset) or gpu",
    )
    p.add_argument("--study", action="append", default=None, help="facades or synth (repeatable; default all)")
    p.add_argument("--only", action="append", default=None, help="only these method keys, e.g. msgan (repeatable)")
    p.add_argument(
        "--seeds",
        type=lambda v: [int(x) for x in v.split(",")],
        default=None,
        help="only these training seeds, e.g. 0 or 1,2 (the probes, floor, ceiling and diagnostics "
        "come with the first seed's runs)",
    )
    p.add_argument(
        "--facades",
        type=Path,
        default=Path("../shared/datasets/facades"),
        help="pix2pix facades folder (default ../shared/datasets/facades)",
    )
    p.add_argument("--out", type=Path, default=None, help="runs folder (default runs/reproduce/<preset>)")
    p.add_argument("--docs", type=Path, default=Path("docs"), help="where RESULTS.md and its figures go")
    p.add_argument("--report-only", action="store_true", help="only rewrite the report from finished runs")
    p.add_argument("--no-report", action="store_true", help="train and evaluate, do not write the report")
    p.add_argument("--smoke-test", action="store_true", help="2 steps per run (seconds); labelled in the report")
    p.add_argument(
        "--epochs",
        type=int,
        default=None,
        metavar="N",
        help="smoke: N whole epochs per run instead of the preset's budget (labelled smoke, no ledger)",
    )
    p.add_argument(
        "--train-only", action="store_true", help="train (and time) the runs, do not evaluate them or write the report"
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="Ray Train workers per run instead of the preset's (0: this process, no Ray; -1: one per GPU)",
    )
    p.add_argument(
        "--adopt",
        action="append",
        default=[],
        metavar="KEY=RUN_DIR",
        help="take this finished run (e.g. a sweep trial's seed folder) as method KEY's run for the "
        "seed it trained with, when it is the same training; repeatable",
    )
    p.add_argument(
        "--fresh",
        action="store_true",
        help="ignore the committed ledger (<docs>/results/<preset>/runs): recompute every run",
    )


def run(args: argparse.Namespace) -> None:
    from clustergan.reproduce import get_preset
    from clustergan.reproduce.run import reproduce

    preset = get_preset(args.preset)
    if args.epochs is not None and args.epochs < 1:
        raise ClusterganError(f"--epochs {args.epochs}: give a whole number of epochs >= 1")
    smoke = args.smoke_test or args.epochs is not None
    # smoke runs never share a folder with real ones: a finished smoke run would count as done there
    out = args.out or Path("runs") / "reproduce" / (preset.name + ("-smoke" if smoke else ""))
    ledger = args.docs / "results" / preset.name / "runs"
    if args.train_only:
        args.no_report = True
    if not args.fresh and not smoke:
        from clustergan.reproduce.archive import restore

        if n := restore(ledger, out):
            print(f"restored {n} finished runs' results from the ledger {ledger} (--fresh recomputes them)")
    for item in args.adopt:
        adopt(preset, out, args.facades, args.study, item, smoke=args.smoke_test)
    if not args.report_only:
        if not smoke:
            from clustergan.reproduce.cost import estimate
            from clustergan.reproduce.presets import PRESETS
            from clustergan.reproduce.run import run_specs

            # a method new to this preset is priced from another preset's committed runs, scaled by epochs
            others = {name: args.docs / "results" / name / "runs" for name in PRESETS if name != preset.name}
            specs = run_specs(preset, args.study, args.only, args.seeds)
            print(estimate(specs, out, {n: d for n, d in others.items() if d.is_dir()}), flush=True)
        reproduce(
            preset,
            out,
            args.facades,
            args.study,
            smoke=args.smoke_test,
            only=args.only,
            seeds=args.seeds,
            smoke_epochs=args.epochs,
            train_only=args.train_only,
            workers=args.workers,
        )
    if not args.no_report:
        from clustergan.reproduce.archive import archive
        from clustergan.reproduce.results import write_results

        path = write_results(preset, out, args.docs)
        print(f"results: {path}")
        if not smoke:
            print(f"ledger: {archive(out, ledger)} result files in {ledger} (commit them with the report)")
