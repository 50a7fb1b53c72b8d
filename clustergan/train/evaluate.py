"""Evaluate a trained run on its test split: the glue between a checkpoint and :mod:`clustergan.metrics`."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from clustergan.errors import ClusterganError


def _target_clusters(model, targets: torch.Tensor) -> torch.Tensor:
    """Each test target's own cluster: nearest cluster mean of its encoder features, in the feature space the
    statistics were computed in (the run's encoder at its ``encoder.input_size``)."""
    from clustergan.clustering import ClusterStats, extract_features
    from clustergan.train.builders import build_config_encoder

    cfg = model.config
    if not cfg.cluster.stats_dir:
        raise ClusterganError("cluster choice 'target' needs the run's cluster statistics (cluster.stats_dir)")
    stats = ClusterStats.load(Path(cfg.cluster.stats_dir))
    feats = torch.as_tensor(extract_features(build_config_encoder(cfg), targets))
    return torch.cdist(feats, torch.as_tensor(stats.means)).argmin(dim=1)


def evaluate_run(
    run_or_checkpoint: str | Path,
    protocol: str = "paper",
    seed: int = 0,
    cluster_choice: str | None = None,
    out: str | Path | None = None,
    ndb_bins: int | None = None,
    device: str | None = None,
    generator: str = "ema",
) -> dict:
    """Evaluate a run's latest checkpoint (or a checkpoint file) on its test split under ``protocol`` and
    write ``metrics.json``. ``device`` runs the generator there (e.g. "cuda"); the metrics stay on the CPU.
    ``generator``: "ema" (the checkpoint's EMA generator) or "raw" (its G). metrics.json records the one
    evaluated as ``generator``, and, when "ema" was asked of a checkpoint without one, ``generator_note``."""
    from clustergan.data import load_sources, load_targets
    from clustergan.metrics import evaluate, get_protocol, write_metrics_json
    from clustergan.provenance import provenance
    from clustergan.train.sampling import load_generator

    model = load_generator(run_or_checkpoint, device or "cpu", generator)
    cfg = model.config
    d = cfg.data
    choice = cluster_choice or cfg.cluster.test_choice
    proto = dataclasses.replace(get_protocol(protocol), cluster_choice=choice)
    if ndb_bins is not None:  # small datasets cannot fill the protocol's bins; recorded in metrics.json
        proto = dataclasses.replace(proto, ndb_bins=ndb_bins)
    sources, _ = load_sources(d.root, "test", d.direction, d.size)
    test_targets, _ = load_targets(d.root, "test", d.direction, d.size)
    train_targets, _ = load_targets(d.root, "train", d.direction, d.size)
    classifier = num_modes = None
    if (Path(d.root) / "modes.json").is_file():
        from clustergan.data import classify_mode, read_num_modes

        num_modes = read_num_modes(d.root)
        classifier = lambda images: classify_mode(images, num_modes)  # noqa: E731
    target_clusters = _target_clusters(model, test_targets) if (model.k and choice == "target") else None
    fn = model.generate_fn(choice, cfg.cluster.fixed_index, target_clusters)
    result = evaluate(
        fn,
        sources,
        train_targets,
        proto,
        seed=seed,
        mode_classifier=classifier,
        num_modes=num_modes,
        test_targets=test_targets,
    )
    result["generator"] = model.generator
    if model.generator_note:
        result["generator_note"] = model.generator_note
        print(f"clustergan eval: {model.checkpoint}: {model.generator_note}", flush=True)
    run_dir = (
        model.checkpoint.parent.parent if model.checkpoint.parent.name == "checkpoints" else model.checkpoint.parent
    )
    path = Path(out) if out else run_dir / "metrics.json"
    info = provenance()
    info.update(
        checkpoint=str(model.checkpoint),
        epoch=model.epoch,
        config_name=cfg.name,
        encoder_weights=cfg.encoder.weights or "pretrained",
        data_root=d.root,
        test_inputs=len(sources),
        train_targets=len(train_targets),
    )
    write_metrics_json(path, result, info)
    print(f"metrics ({proto.name} protocol, cluster choice {choice}, {model.generator} G) -> {path}")
    return result
