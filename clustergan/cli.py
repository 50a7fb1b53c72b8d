"""The ``clustergan`` command: thin wrappers over the library. User mistakes print one line, exit 2."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from clustergan.errors import ClusterganError

# --placement -> Ray's placement-group strategy for the workers' bundles
PLACEMENTS = {"pack": "PACK", "spread": "SPREAD", "strict-spread": "STRICT_SPREAD"}


def _config(args):
    from clustergan.config import load_config

    return load_config(args.config, args.overrides)


def cmd_data(args) -> None:
    from clustergan.data import fetch_dataset, make_synth

    if args.data_command == "synth":
        make_synth(
            args.out, num_modes=args.modes, n_train=args.n_train, n_test=args.n_test, size=args.size, seed=args.seed
        )
    else:
        fetch_dataset(args.name, args.out, url=args.url)


def cmd_cluster(args) -> None:
    from clustergan.train.builders import compute_clusters, with_data_root

    config = _config(args)
    if not config.cluster.k:
        raise ClusterganError(f"{args.config}: cluster.k is 0 (this config uses no clusters); pass cluster.k=N")
    config = with_data_root(config)
    out = Path(args.out) if args.out else config.run_dir / "clusters"
    compute_clusters(config, out)
    print(f"cluster statistics, montages and report.json in {out}")


def cmd_train(args) -> None:
    from clustergan.train.launch import run_training

    config = run_training(
        _config(args),
        workers=args.workers,
        gpu=args.gpu or None,
        resume=args.resume,
        storage_path=args.storage,
        cpus_per_worker=args.cpus_per_worker,
        placement=PLACEMENTS[args.placement],
    )
    print(f"run folder: {config.run_dir} (checkpoints/, samples/, tensorboard/, config.yaml)")


def _read_inputs(folder: Path, direction: str, size: int):
    import torch

    from clustergan.data import IMAGE_EXTENSIONS, read_source_image

    if not folder.is_dir():
        raise ClusterganError(f"{folder}: input folder not found")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise ClusterganError(f"{folder}: no images ({', '.join(IMAGE_EXTENSIONS)})")
    return torch.stack([read_source_image(p, direction, size) for p in files]), files


def cmd_sample(args) -> None:
    import torch
    from torchvision.utils import make_grid, save_image

    from clustergan.train.sampling import load_generator

    model = load_generator(args.run, generator=args.generator)
    if model.generator_note:
        print(f"{model.checkpoint}: {model.generator_note}")
    sources, files = _read_inputs(Path(args.input), model.config.data.direction, model.config.data.size)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(args.seed)
    if args.cluster == "all":
        clusters = list(range(model.k)) if model.k else [None]
    elif args.cluster is None:
        clusters = [None]
    else:
        if not model.k:
            raise ClusterganError(f"--cluster {args.cluster}: this model was trained without clusters; omit --cluster")
        try:
            clusters = [int(args.cluster)]
        except ValueError:
            raise ClusterganError(f"--cluster {args.cluster!r}: expected an index or 'all'") from None
    rows = []
    for src, f in zip(sources, files, strict=True):
        row = [src]
        for c in clusters:
            for j in range(args.num_z):
                ids = torch.tensor([c]) if c is not None else None
                img = model.generate(src[None], ids, gen)[0]
                tag = f"cluster{c}" if c is not None else "drawn"
                save_image((img + 1) / 2, out / f"{f.stem}_{tag}_z{j}.png")
                row.append(img)
        rows.extend(row)
    grid = make_grid((torch.stack(rows) + 1) / 2, nrow=1 + len(clusters) * args.num_z, padding=1, pad_value=1.0)
    save_image(grid, out / "grid.png")
    print(f"{len(files)} inputs x {len(clusters)} cluster choice(s) x {args.num_z} z -> {out} (grid.png)")


def cmd_eval(args) -> None:
    from clustergan.train.evaluate import evaluate_run

    result = evaluate_run(
        args.checkpoint or args.run,
        protocol=args.protocol,
        seed=args.seed,
        cluster_choice=args.cluster_choice,
        out=args.out,
        ndb_bins=args.ndb_bins,
        generator=args.generator,
    )
    keys = [k for k in ("fid", "ndb", "jsd", "lpips", "mode_coverage") if k in result]
    print(json.dumps({k: result[k] for k in keys}, indent=2))


def cmd_sweep(args) -> None:
    from clustergan.tune.sweep import run_sweep

    exp = run_sweep(
        args.config,
        storage=args.storage,
        resume=args.resume,
        smoke_test=args.smoke_test,
        ledger=args.ledger,
        time_limit_s=args.time_limit,
        local=args.local,
        max_trials=args.max_trials,
    )
    print(f"experiment folder: {exp} (ranking.md, ranking.csv, pareto.png, best_config.yaml, optuna.db)")


def cmd_report(args) -> None:
    from clustergan.tune.report import report_remote, write_report
    from clustergan.tune.storage import is_uri

    if is_uri(args.experiment):
        folder, table = report_remote(args.experiment, args.local)
        print(table)
        print(f"local copy: {folder}; report pushed to {args.experiment}")
        return
    print(write_report(args.experiment))


def cmd_race(args) -> None:
    """Race an explored experiment's front and controls on more seeds (clustergan.tune.race)."""
    import yaml
    from pydantic import ValidationError

    from clustergan.config import describe_error
    from clustergan.tune.race import run_race
    from clustergan.tune.sweep_config import RaceConfig, load_sweep

    exp = Path(args.experiment)
    section: dict = {}
    base = None
    if args.config is not None:
        sweep, base = load_sweep(args.config)
        section = sweep.race.model_dump() if sweep.race else {}
    elif (exp / "sweep.yaml").is_file():  # the sweep as it ran, its race: section and base config included
        ran = yaml.safe_load((exp / "sweep.yaml").read_text()) or {}
        section, base = ran.get("sweep", {}).get("race") or {}, ran.get("base")
    given = {
        "schedule": args.schedule,
        "max_candidates": args.max_candidates,
        "max_runs": args.max_runs,
        "concurrent": args.concurrent,
    }
    updates = {k: v for k, v in {**given, "alpha": args.alpha}.items() if v is not None}
    try:
        config = RaceConfig.model_validate({**section, **updates})
    except ValidationError as e:
        problems = "; ".join(describe_error(err, "clustergan/tune/sweep_config.py") for err in e.errors())
        raise ClusterganError(f"race settings (the race: section and the flags given): {problems}") from None
    run_race(exp, config, out=args.out, dry_run=args.dry_run, adopt=args.adopt, base=base)


def cmd_dashboard(args) -> None:
    """optuna-dashboard on the experiment's study, bound to 127.0.0.1 unless --host says otherwise."""
    from clustergan.tune.storage import OPTUNA_DB, is_uri

    folder = Path(args.experiment)
    db = folder / OPTUNA_DB
    if is_uri(args.experiment):
        raise ClusterganError(
            f"{args.experiment}: the dashboard reads a local experiment; pull it first with "
            f"`clustergan report {args.experiment} --local DIR`, then pass DIR"
        )
    if not db.is_file():
        raise ClusterganError(f"{db} not found: pass an experiment folder written by `clustergan sweep`")
    try:
        from optuna_dashboard import run_server
    except ImportError:
        raise ClusterganError("optuna-dashboard is not installed: pip install -e '.[dashboard]'") from None
    print(f"optuna-dashboard for {folder}: http://{args.host}:{args.port}/dashboard (Ctrl-C stops it)", flush=True)
    run_server(f"sqlite:///{db.resolve()}", host=args.host, port=args.port)


def cmd_reproduce(args) -> None:
    from clustergan.reproduce.command import run

    run(args)


def cmd_metrics(args) -> None:
    from clustergan.metrics import prepare_metric_weights

    print(json.dumps(prepare_metric_weights(), indent=2, default=str))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="clustergan", description=__doc__)
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

    rp = sub.add_parser("reproduce", help="the paper's Table 1 at a preset's scale -> docs/RESULTS.md (resumable)")
    reproduce_arguments(rp)
    rp.set_defaults(func=cmd_reproduce)

    m = sub.add_parser("metrics", help="metric utilities")
    msub = m.add_subparsers(dest="metrics_command", required=True)
    msub.add_parser("prepare", help="convert and cache the FID / LPIPS weights")
    m.set_defaults(func=cmd_metrics)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except ClusterganError as e:
        print(f"clustergan: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("clustergan: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
