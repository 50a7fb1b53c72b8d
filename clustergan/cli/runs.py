"""The commands on one run or dataset: ``data``, ``cluster``, ``train``, ``sample``, ``eval``, ``metrics``."""

from __future__ import annotations

import json
from pathlib import Path

from clustergan.errors import ClusterganError
from clustergan.scores import SCORES

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
    keys = [k for k in SCORES if k in result]
    print(json.dumps({k: result[k] for k in keys}, indent=2))


def cmd_metrics(args) -> None:
    from clustergan.metrics import prepare_metric_weights

    print(json.dumps(prepare_metric_weights(), indent=2, default=str))
