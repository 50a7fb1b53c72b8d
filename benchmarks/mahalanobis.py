"""The Mahalanobis loss's cost (L_km, forward + backward to the features) with its rows grouped by cluster (the
CPU path) against one precision factor gathered per row (the CUDA path: a batched product) and against the
code before commit 474ed3f (gathered, then einsum), alternating; prints medians and ratios. D = 1280
(EfficientNet features), random well-conditioned statistics.

    .venv/bin/python benchmarks/mahalanobis.py --threads 2 --rows 2 16 --clusters 15
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from clustergan.losses.cluster import ClusterTargets


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--rows",
        type=int,
        nargs="+",
        default=[2, 16],
        help="rows per loss call: 2 x the batch (both MSGAN fakes); 2 = batch 1, 16 = the cpu preset",
    )
    p.add_argument("--clusters", type=int, default=15)
    p.add_argument("--dim", type=int, default=1280)
    p.add_argument("--reps", type=int, default=15)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    k, d = args.clusters, args.dim
    a = torch.randn(k, d, d, generator=gen) / d**0.5
    chol = torch.linalg.cholesky(a @ a.transpose(1, 2) + torch.eye(d))
    targets = ClusterTargets(torch.randn(k, d, generator=gen), chol)
    print(f"L_km fwd + bwd, D = {d}, k = {k}, {args.threads} thread(s), median of {args.reps} after 2 warm-up")
    for rows in args.rows:
        feats = torch.randn(rows, d, generator=gen)
        ids = torch.randint(0, k, (rows,), generator=gen)

        def one(grouped: bool | None, feats=feats, ids=ids) -> tuple[float, torch.Tensor]:
            f = feats.clone().requires_grad_(True)
            start = time.perf_counter()
            diff = f - targets.means[ids]
            if grouped is None:  # before 474ed3f
                y = torch.einsum("bij,bi->bj", targets.precision_cholesky[ids], diff)
            else:
                y = targets._whiten(diff, ids, grouped=grouped)
            torch.sqrt(y.square().sum(dim=1) + 1e-8).mean().backward()
            return time.perf_counter() - start, f.grad

        times: dict[bool | None, list[float]] = {None: [], True: [], False: []}
        for i in range(args.reps + 2):
            for grouped in (None, False, True):
                elapsed, _ = one(grouped)
                if i >= 2:
                    times[grouped].append(elapsed)
        gap = float((one(True)[1] - one(False)[1]).abs().max())
        old, gathered, grouped = (statistics.median(times[g]) * 1e3 for g in (None, False, True))
        print(
            f"{rows:3d} rows: before 474ed3f (gather + einsum) {old:7.2f} ms, gathered per row (bmm) "
            f"{gathered:7.2f} ms, grouped by cluster {grouped:7.2f} ms ({old / grouped:.1f}x faster than "
            f"before); largest gradient difference grouped vs gathered {gap:.1e}"
        )


if __name__ == "__main__":
    main()
