"""How the encoder's input size moves the k-means clusters, and what it costs: the evidence behind
``encoder.input_size``.

For each input size, the training targets are encoded exactly as ``clustergan cluster`` encodes them (the
same cached features, the same scikit-learn k-means with the product's restarts) and clustered with
k-means seeds 0..S-1. Printed per dataset, k and size:

- ``ARI vs 224``: the adjusted Rand index between the assignments at this size and at 224 px, seed for
  seed (median and range over the seeds). The rule for a size to be usable: median >= 0.8 at k = 8 and
  k = 15.
- ``ARI 224 seeds``: the same index between 224 px assignments of different seeds (seed j vs j+1): how much
  k-means alone moves. A size cannot be asked to agree with 224 better than 224 agrees with itself.
- ``silhouette``: of the seed-0 clustering, in that size's own feature space.
- ``fwd+bwd ms``: the frozen encoder's forward and backward pass on 16 images of the dataset's size
  (what the feature losses add to a clustergan step at batch 8: both fakes), median over interleaved
  rounds, all sizes timed in this one process.

    python benchmarks/encoder_input_size.py                              # facades at 64 px + procedural 32 px
    python benchmarks/encoder_input_size.py --facades /path/to/facades --sizes 224 160 128 96 64
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from clustergan.clustering import cached_features, get_backend  # noqa: E402
from clustergan.config import load_config  # noqa: E402
from clustergan.encoders import build_encoder  # noqa: E402
from clustergan.train.builders import synth_root  # noqa: E402

ENCODER = "efficientnet_lite0"


def assignments(features: np.ndarray, k: int, seeds: int) -> list[np.ndarray]:
    backend = get_backend("sklearn")
    return [backend.kmeans(features, k, seed) for seed in range(seeds)]


def time_encoder(sizes: list[int], image_size: int, rounds: int, batch: int = 16) -> dict[int, float]:
    """Median ms of forward + backward (to the input) per input size, the sizes stepped in turn each round."""
    encoders = {s: build_encoder(ENCODER, None, s) for s in sizes}
    images = torch.rand(batch, 3, image_size, image_size) * 2 - 1
    times: dict[int, list[float]] = {s: [] for s in sizes}
    for r in range(rounds + 2):
        for s, enc in encoders.items():
            x = images.clone().requires_grad_(True)
            start = time.perf_counter()
            enc(x).sum().backward()
            if r >= 2:  # two warm-up rounds
                times[s].append((time.perf_counter() - start) * 1e3)
    return {s: statistics.median(v) for s, v in times.items()}


def study(name: str, root: Path, image_size: int, sizes: list[int], ks: list[int], seeds: int, rounds: int) -> None:
    from sklearn.metrics import adjusted_rand_score, silhouette_score

    print(f"\n## {name}: {root} (targets at {image_size} px, BtoA, {ENCODER}, k-means seeds 0-{seeds - 1})")
    feats = {s: cached_features(root, "BtoA", image_size, ENCODER, None, "train", input_size=s) for s in sizes}
    cost = time_encoder(sizes, image_size, rounds)
    print(f"N = {len(feats[sizes[0]])} training targets")
    print("| k | input size | ARI vs 224 (median, min-max) | ARI 224 seeds | silhouette | fwd+bwd ms (16 images) |")
    print("|---:|---:|---|---:|---:|---:|")
    for k in ks:
        reference = assignments(feats[224], k, seeds)
        self_ari = [adjusted_rand_score(reference[j], reference[j + 1]) for j in range(seeds - 1)]
        for s in sizes:
            own = reference if s == 224 else assignments(feats[s], k, seeds)
            ari = [adjusted_rand_score(a, b) for a, b in zip(reference, own, strict=False)]
            sil = silhouette_score(feats[s], own[0])
            print(
                f"| {k} | {s} | {statistics.median(ari):.3f} ({min(ari):.3f}-{max(ari):.3f}) | "
                f"{statistics.median(self_ari):.3f} | {sil:.3f} | {cost[s]:.0f} |"
            )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--facades", type=Path, default=REPO.parent / "shared" / "datasets" / "facades")
    p.add_argument("--size", type=int, default=64, help="facades training resolution")
    p.add_argument("--sizes", type=int, nargs="+", default=[224, 160, 128, 64])
    p.add_argument("--synth-sizes", type=int, nargs="+", default=[224, 160, 128, 64, 32])
    p.add_argument("--ks", type=int, nargs="+", default=[8, 15])
    p.add_argument("--synth-ks", type=int, nargs="+", default=[4, 8, 15])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--rounds", type=int, default=10, help="timed rounds of the encoder pass")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    import platform

    cpu = next(
        (line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
        platform.processor(),
    )
    print(f"CPU: {cpu}, {args.threads} threads, torch {torch.__version__}")
    if 224 not in args.sizes or 224 not in args.synth_sizes:
        raise SystemExit("--sizes and --synth-sizes must include 224, the reference")
    if (args.facades / "train").is_dir():
        study("facades", args.facades, args.size, args.sizes, args.ks, args.seeds, args.rounds)
    else:
        print(f"facades not found at {args.facades} (pass --facades): skipped")
    synth = synth_root(load_config(REPO / "sweeps" / "debug.yaml"))
    study("procedural (4 modes)", synth, 32, args.synth_sizes, args.synth_ks, args.seeds, args.rounds)


if __name__ == "__main__":
    main()
