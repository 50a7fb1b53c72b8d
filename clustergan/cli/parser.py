"""The ``clustergan`` command's arguments: one subcommand per command of :mod:`clustergan.cli.runs` and
:mod:`clustergan.cli.experiments`."""

from __future__ import annotations

import argparse
from pathlib import Path

from clustergan.cli.experiments import cmd_dashboard, cmd_race, cmd_report, cmd_reproduce, cmd_sweep
from clustergan.cli.runs import PLACEMENTS, cmd_cluster, cmd_data, cmd_eval, cmd_metrics, cmd_sample, cmd_train

DESCRIPTION = "The clustergan command: thin wrappers over the library. User mistakes print one line, exit 2."


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="clustergan", description=DESCRIPTION)
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("data", help="make or download datasets")
    dsub = d.add_subparsers(dest="data_command", required=True)
    s = dsub.add_parser("synth", help="procedural paired dataset with known modes")
    s.add_argument("--out", required=True)
    s.add_argument("--modes", type=int, default=4)
    s.add_argument("--n-train", type=int, default=96)
    s.add_argument("--n-test", type=int, default=24)
    s.add_argument("--size", type=int, default=64)
    s.add_argument("--seed", type=int, default=0)
    f = dsub.add_parser("fetch", help="download a public dataset (needs network access)")
    f.add_argument("name", choices=["facades"])
    f.add_argument("--out", required=True)
    f.add_argument("--url", default=None)
    d.set_defaults(func=cmd_data)

    def with_config(parser):
        parser.add_argument("--config", required=True, help="training config YAML, e.g. sweeps/debug.yaml")
        parser.add_argument("overrides", nargs="*", help="key=value overrides, e.g. train.epochs=2")

    def add_generator(parser, verb):
        parser.add_argument(
            "--generator",
            default="ema",
            choices=["ema", "raw"],
            help=f"{verb} the EMA generator (train.ema; a checkpoint without one falls back to G "
            "and says so) or the raw G (default: ema)",
        )

    c = sub.add_parser("cluster", help="encoder features + k-means + per-cluster statistics")
    with_config(c)
    c.add_argument("--out", default=None, help="default: <run dir>/clusters")
    c.set_defaults(func=cmd_cluster)

    t = sub.add_parser("train", help="train one model (local process by default)")
    with_config(t)
    t.add_argument("--resume", action="store_true", help="continue from the run's last checkpoint")
    t.add_argument("--workers", type=int, default=0, help="Ray Train workers; 0 = this process (debug mode)")
    t.add_argument("--gpu", action="store_true", help="train on GPUs (Ray Train: one per worker, NCCL)")
    t.add_argument("--cpus-per-worker", type=float, default=1.0, help="Ray Train: CPUs each worker reserves")
    t.add_argument("--storage", default=None, help="Ray Train: run storage folder or URI (default <run dir>/ray)")
    t.add_argument(
        "--placement",
        choices=list(PLACEMENTS),
        default="pack",
        help="Ray Train: where the workers go. pack: fill a node first; spread: on different nodes where they "
        "can; strict-spread: one worker per node, or wait for enough nodes",
    )
    t.set_defaults(func=cmd_train)

    sm = sub.add_parser("sample", help="generate from a trained run for chosen clusters")
    sm.add_argument("--run", required=True, help="run folder or checkpoint file")
    sm.add_argument("--input", required=True, help="folder of source images (or A|B pairs)")
    sm.add_argument("--cluster", default=None, help="index, or 'all'; default: drawn from training frequencies")
    sm.add_argument("--num-z", type=int, default=3)
    sm.add_argument("--seed", type=int, default=0)
    sm.add_argument("--out", required=True)
    add_generator(sm, "sample")
    sm.set_defaults(func=cmd_sample)

    e = sub.add_parser("eval", help="FID / NDB / JSD / LPIPS on the test split -> metrics.json")
    g = e.add_mutually_exclusive_group(required=True)
    g.add_argument("--run")
    g.add_argument("--checkpoint")
    e.add_argument("--protocol", default="paper", help="paper, sweep or curve (clustergan/metrics/protocols.py)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--cluster-choice", default=None, choices=["frequency", "fixed", "target"])
    e.add_argument("--ndb-bins", type=int, default=None, help="override the protocol's NDB bins (small data)")
    e.add_argument("--out", default=None, help="default: <run dir>/metrics.json")
    add_generator(e, "evaluate")
    e.set_defaults(func=cmd_eval)

    sw = sub.add_parser("sweep", help="multi-objective hyper-parameter sweep on Ray Tune + Optuna")
    sw.add_argument("--config", required=True, help="sweep YAML, e.g. sweeps/debug_sweep.yaml")
    sw.add_argument("--storage", default=None, help="experiment folder or URI (default runs/sweeps/<name>)")
    sw.add_argument("--resume", action="store_true", help="continue an interrupted sweep")
    sw.add_argument("--smoke-test", action="store_true", help="shrink the sweep to seconds (2 steps, 2 trials)")
    sw.add_argument(
        "--ledger",
        default=None,
        help="folder of finished trials kept across machines (e.g. "
        "docs/sweeps/<name>): restored into a new experiment first, updated at the end",
    )
    sw.add_argument(
        "--time-limit",
        type=float,
        default=None,
        help="whole-sweep limit in seconds (overrides "
        "the YAML's time_limit_s; a trial still running then is trained again next time)",
    )
    sw.add_argument(
        "--max-trials",
        type=int,
        default=None,
        help="start at most this many trials in this run "
        "(baselines first), so that a slice of a long sweep ends between trials; with --ledger",
    )
    sw.add_argument(
        "--local",
        default=None,
        help="with a URI --storage: the driver's local copy of the experiment (default runs/sweeps/<name>)",
    )
    sw.add_argument(
        "--adopt",
        action="append",
        metavar="KIND=FOLDER",
        help="take a fixed trial's seeds (baseline:pix2pix, baseline:msgan, control:<name>) from FOLDER's "
        "seed<N>/ runs when they are the same training: evaluated, not trained again (repeatable)",
    )
    sw.set_defaults(func=cmd_sweep)

    r = sub.add_parser("report", help="(re)write a sweep's ranking, Pareto plot and best config")
    r.add_argument("experiment", help="experiment folder or URI written by `clustergan sweep`")
    r.add_argument("--local", default=None, help="with a URI: the local copy to pull into (default runs/sweeps/<name>)")
    r.set_defaults(func=cmd_report)

    ra = sub.add_parser("race", help="more seeds for a sweep's Pareto candidates and controls, until they separate")
    ra.add_argument("experiment", help="the experiment folder (or a ledger) whose trials enter")
    ra.add_argument("--config", type=Path, help="a sweep YAML whose race: section to use (default: the experiment's)")
    ra.add_argument("--out", type=Path, help="the race folder (default <experiment>/race)")
    ra.add_argument("--schedule", type=int, nargs="+", help="seeds per entrant after each round, e.g. 2 4 8")
    ra.add_argument("--max-candidates", type=int, help="searched trials entering (controls come on top)")
    ra.add_argument("--max-runs", type=int, help="budget: new training runs this race may start")
    ra.add_argument(
        "--adopt",
        action="append",
        metavar="CANDIDATE=FOLDER",
        help="take an entrant's seeds from FOLDER's seed<N>/ runs when they are the same training (repeatable)",
    )
    ra.add_argument("--alpha", type=float, help="the race's false-drop rate (default 0.05)")
    ra.add_argument("--concurrent", type=int, help="a round's runs as Ray tasks, this many at once (default 1)")
    ra.add_argument("--dry-run", action="store_true", help="print the entrants, rounds and their cost; train nothing")
    ra.set_defaults(func=cmd_race)

    db = sub.add_parser("dashboard", help="optuna-dashboard on a sweep's study (pip install -e '.[dashboard]')")
    db.add_argument("experiment", help="experiment folder written by `clustergan sweep`")
    db.add_argument("--host", default="127.0.0.1", help="bind address (default: this machine only)")
    db.add_argument("--port", type=int, default=8080)
    db.set_defaults(func=cmd_dashboard)

    from clustergan.reproduce.command import add_arguments as reproduce_arguments

    rp = sub.add_parser(
        "reproduce", help="the paper's Table 1 at a preset's scale -> its page, docs/RESULTS.md for cpu50 (resumable)"
    )
    reproduce_arguments(rp)
    rp.set_defaults(func=cmd_reproduce)

    m = sub.add_parser("metrics", help="metric utilities")
    msub = m.add_subparsers(dest="metrics_command", required=True)
    msub.add_parser("prepare", help="convert and cache the FID / LPIPS weights")
    m.set_defaults(func=cmd_metrics)
    return p
