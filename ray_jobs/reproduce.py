"""Reproduce the paper's Table 1: train pix2pix, MSGAN and clustergan with the same budget and seeds,
evaluate them under the ``paper`` protocol, and write docs/RESULTS.md.

    python ray_jobs/reproduce.py --preset cpu                    # this 2-core machine, ~90 min
    python ray_jobs/reproduce.py --preset gpu                    # the paper's scale, DDP on every GPU
    python ray_jobs/reproduce.py --preset cpu --study synth      # one study only
    python ray_jobs/reproduce.py --preset cpu --report-only      # rewrite the report from finished runs
    ray job submit --working-dir . -- python ray_jobs/reproduce.py --preset gpu --facades /data/facades

Interrupted? Run the same command again: finished runs are skipped, a run in progress resumes from its
last checkpoint. On a fresh machine the committed ledger (docs/results/<preset>/runs, written with the
report) restores the finished runs' results, so a reproduction can grow seed by seed across sessions:

    python ray_jobs/reproduce.py --preset cpu --study facades --seeds 0      # one seed, then the report

A first run on a new GPU machine: one epoch of every facades run at the paper's scale, timed, not evaluated
(smoke runs go to runs/reproduce/<preset>-smoke, apart from the real ones):

    python ray_jobs/reproduce.py --preset gpu --study facades --seeds 0 --epochs 1 --train-only

The sweep's best configuration (sweeps/facades_best.yaml, from the sweep's best_config.yaml) was already
trained once, by its sweep trial, with seed 0 and the study's budget. That run can be taken as the row's
seed 0 instead of training it again, when it is the same training (checked: config, dataset, last epoch,
clusters); it is then evaluated under the study's protocol like the others:

    python ray_jobs/reproduce.py --preset cpu --study facades --only clustergan_best \
        --adopt clustergan_best=runs/sweeps/facades_search_2/trials/<id>/seed0
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from clustergan.errors import ClusterganError  # noqa: E402


def adopt(preset, out: Path, facades: Path, studies: list[str] | None, item: str, smoke: bool) -> None:
    """``--adopt KEY=RUN_DIR``: the run's seed comes from its own config."""
    import json

    from clustergan.reproduce.run import adopt_run, run_specs

    key, sep, folder = item.partition("=")
    if not sep or not key or not folder:
        raise ClusterganError(f"--adopt {item!r}: write it as KEY=RUN_DIR, e.g. "
                              f"clustergan_best=runs/sweeps/facades_search/trials/<id>/seed0")
    try:
        seed = json.loads((Path(folder) / "config.json").read_text())["config"]["seed"]
    except (OSError, ValueError, KeyError):
        raise ClusterganError(f"--adopt {item}: {Path(folder) / 'config.json'} is missing or has no seed; "
                              f"give a finished run folder") from None
    specs = run_specs(preset, studies, [key], [seed])
    if len(specs) != 1:
        raise ClusterganError(f"--adopt {item}: {len(specs)} runs of {key} with seed {seed}; pick one with --study")
    run_dir = adopt_run(specs[0], Path(folder), out, facades, smoke=smoke)
    print(f"adopted {folder} as {specs[0].name} ({run_dir}): not trained again")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", default="cpu", help="cpu (default) or gpu")
    p.add_argument("--study", action="append", default=None, help="facades or synth (repeatable; default all)")
    p.add_argument("--only", action="append", default=None, help="only these method keys, e.g. msgan (repeatable)")
    p.add_argument("--seeds", type=lambda v: [int(x) for x in v.split(",")], default=None,
                   help="only these training seeds, e.g. 0 or 1,2 (the probes, floor, ceiling and diagnostics "
                        "come with the first seed's runs)")
    p.add_argument("--facades", type=Path, default=Path("../shared/datasets/facades"),
                   help="pix2pix facades folder (default ../shared/datasets/facades)")
    p.add_argument("--out", type=Path, default=None, help="runs folder (default runs/reproduce/<preset>)")
    p.add_argument("--docs", type=Path, default=Path("docs"), help="where RESULTS.md and its figures go")
    p.add_argument("--report-only", action="store_true", help="only rewrite the report from finished runs")
    p.add_argument("--no-report", action="store_true", help="train and evaluate, do not write the report")
    p.add_argument("--smoke-test", action="store_true", help="2 steps per run (seconds); labelled in the report")
    p.add_argument("--epochs", type=int, default=None, metavar="N",
                   help="smoke: N whole epochs per run instead of the preset's budget (labelled smoke, no ledger)")
    p.add_argument("--train-only", action="store_true",
                   help="train (and time) the runs, do not evaluate them or write the report")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="Ray Train workers per run instead of the preset's (0: this process, no Ray; -1: one per GPU)")
    p.add_argument("--adopt", action="append", default=[], metavar="KEY=RUN_DIR",
                   help="take this finished run (e.g. a sweep trial's seed folder) as method KEY's run for the "
                        "seed it trained with, when it is the same training; repeatable")
    p.add_argument("--fresh", action="store_true",
                   help="ignore the committed ledger (<docs>/results/<preset>/runs): recompute every run")
    args = p.parse_args(argv)
    try:
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
            reproduce(preset, out, args.facades, args.study, smoke=args.smoke_test, only=args.only, seeds=args.seeds,
                      smoke_epochs=args.epochs, train_only=args.train_only, workers=args.workers)
        if not args.no_report:
            from clustergan.reproduce.archive import archive
            from clustergan.reproduce.results import write_results

            path = write_results(preset, out, args.docs)
            print(f"results: {path}")
            if not smoke:
                print(f"ledger: {archive(out, ledger)} result files in {ledger} (commit them with the report)")
    except ClusterganError as e:
        print(f"reproduce: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
