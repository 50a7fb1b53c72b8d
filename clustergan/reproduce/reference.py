"""The two reference rows of the results table.

- **floor**: the real test targets scored by the same metrics against the same training set. NDB/JSD use
  the protocol's bins with the 106 (facades) real targets as queries instead of 10 samples per input, and
  FID compares those real targets with the training targets, so its N differs from the generated rows
  (FID is biased upward at small N): it is a floor for the direction, not a reachable value. LPIPS
  diversity has no floor (one real target per input); the report gives instead the LPIPS between random
  pairs of *different* real targets, the diversity of the data across inputs.
- **ceiling**: an untrained generator (MSGAN's architecture, initialised with the study's first seed),
  evaluated exactly like a trained one.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from clustergan.provenance import provenance


def _root(config) -> str:
    from clustergan.train.builders import with_data_root

    return with_data_root(config).data.root


def floor_metrics(config, study, seed: int = 0, lpips_pairs: int = 50) -> dict:
    from clustergan.data import load_targets
    from clustergan.metrics import NDBBins, get_protocol, lpips_distance, pixel_space
    from clustergan.metrics.frechet import (
        feature_statistics,
        frechet_distance,
        inception_features,
        kernel_inception_distance,
        real_features,
    )
    from clustergan.metrics.lpips_diversity import random_pairs

    d = config.data
    root = _root(config)
    proto = get_protocol(study.protocol)
    if study.ndb_bins is not None:
        proto = dataclasses.replace(proto, ndb_bins=study.ndb_bins)
    test, _ = load_targets(root, "test", d.direction, d.size)
    train, _ = load_targets(root, "train", d.direction, d.size)
    res = proto.ndb_resolution
    bins = NDBBins.fit_cached(
        pixel_space(train, res), proto.ndb_bins, proto.ndb_standardize, proto.ndb_seed, space=f"pixels@{res}x{res}"
    )
    ndb = bins.evaluate(pixel_space(test, res))
    result = {
        "ndb": ndb["ndb"],
        "jsd": ndb["jsd"],
        "details": {
            "ndb": {
                "n_generated": len(test),
                "n_train": bins.n_train,
                "bins": proto.ndb_bins,
                "queries": "each real test target once",
            }
        },
    }
    if proto.fid:
        # the training features are the generated rows' own (cached by content, as evaluate_run's)
        real = real_features(train)
        test_features = inception_features(test, name="real test")
        mu_r, sigma_r = feature_statistics(real, "real")
        mu_f, sigma_f = feature_statistics(test_features, "real test")
        kid, kid_std, subset = kernel_inception_distance(real, test_features, seed)
        result["fid"] = frechet_distance(mu_r, sigma_r, mu_f, sigma_f)
        result["kid"] = kid
        result["details"]["fid"] = {
            "n_real": len(train),
            "n_fake": len(test),
            "kid_std": kid_std,
            "kid_subset_size": subset,
            "note": "real test targets: FID's N differs from the generated rows' "
            "(biased), KID's does not matter (unbiased)",
        }
    pairs = random_pairs(
        len(test), min(lpips_pairs, len(test) * (len(test) - 1) // 2), torch.Generator().manual_seed(seed)
    )
    between = lpips_distance(test[pairs[:, 0]], test[pairs[:, 1]])
    result["lpips_between_inputs"] = float(between.mean())
    result["details"]["lpips_between_inputs"] = {"pairs": len(pairs), "note": "pairs of different real test targets"}
    result["protocol"] = dataclasses.asdict(proto)
    result["provenance"] = {
        **provenance(),
        "row": "floor",
        "data_root": root,
        "test_targets": len(test),
        "train_targets": len(train),
    }
    return result


def ceiling_metrics(config, study, out_dir: Path) -> dict:
    """Evaluate a freshly initialised generator through the normal checkpoint + ``evaluate_run`` path."""
    from clustergan.train.builders import build_generator, prepare_run
    from clustergan.train.checkpoint import save_checkpoint
    from clustergan.train.evaluate import evaluate_run

    config = prepare_run(config.model_copy(update={"out": str(out_dir)}, deep=True))
    torch.manual_seed(config.seed)
    G = build_generator(config)
    path = save_checkpoint(
        Path(out_dir) / "checkpoints" / "epoch_0000.pt",
        {
            "format": "clustergan-checkpoint/1",
            "epoch": 0,
            "global_step": 0,
            "G": G.state_dict(),
            "config": config.to_dict(),
            "cluster_frequencies": [],
            "provenance": {**provenance(), "untrained": True},
        },
    )
    # an untrained G has no average of training steps to ask for: "raw" on purpose, not a fallback
    return evaluate_run(
        path,
        protocol=study.protocol,
        seed=0,
        out=Path(out_dir) / "metrics.json",
        ndb_bins=study.ndb_bins,
        generator="raw",
    )
