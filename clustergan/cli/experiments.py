"""The commands on experiments: ``sweep``, ``report``, ``race``, ``dashboard``, ``reproduce``."""

from __future__ import annotations

from pathlib import Path

from clustergan.errors import ClusterganError


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
        adopt=args.adopt,
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
    from clustergan.jsonio import read_json
    from clustergan.tune.race import run_race
    from clustergan.tune.sweep_config import RaceConfig, load_sweep

    exp = Path(args.experiment)
    section: dict = {}
    base = None
    if args.config is not None:
        sweep, base = load_sweep(args.config)
        section = sweep.race.model_dump() if sweep.race else {"cond_gain_floor": sweep.cond_gain_floor}
    elif (exp / "sweep.yaml").is_file():  # the sweep as it ran, its race: section and base config included
        ran = yaml.safe_load((exp / "sweep.yaml").read_text()) or {}
        ran_sweep = ran.get("sweep", {})
        section = dict(ran_sweep.get("race") or {})  # one written before the race had a floor: the sweep's
        section.setdefault("cond_gain_floor", ran_sweep.get("cond_gain_floor"))
        base = ran.get("base")
    if "cond_gain_floor" not in section:  # a ledger without its sweep.yaml: the floor its sweep recorded
        section["cond_gain_floor"] = read_json(exp / "sweep_state.json", {}).get("cond_gain_floor")
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
