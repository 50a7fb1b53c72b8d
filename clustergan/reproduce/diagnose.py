"""Why clustergan does or does not beat MSGAN: measurements on trained runs, no retraining.

For a clustergan run, on the test inputs:

- **cluster effect**: mean LPIPS between G(x, z, i) and G(x, z, j), i != j, the same z: how much the output
  changes with the cluster index alone; beside it the **noise effect**, LPIPS between G(x, z1, i) and
  G(x, z2, i). A cluster effect near 0 means the generator ignores the index.
- **cluster hit rate**: the share of generated images whose encoder features lie nearest to the mean of
  the cluster they were conditioned on (chance = 1/k), and the same for the real test targets' own
  nearest cluster as a reference of how separable the clusters are at all (silhouette from the report).
- the clustering's own numbers: silhouette, cluster sizes, Ledoit-Wolf shrinkage.

For every run of a study, whatever the method: **does the output depend on the input?** FID, NDB and JSD
compare sets of images, so a generator that draws one good facade for every label map can score well on
them. With one noise draw and one cluster index shared by every test input:

- **input effect**: LPIPS between G(x_a, z, i) and G(x_b, z, i) for two different inputs (each input and
  the next one), beside the same distance between their real targets; near 0 means the input is ignored;
- **own vs other target**: LPIPS from G(x_a, z, i) to x_a's own target and to x_b's target; the gain
  (other - own) is how much closer an output is to its own target than to another input's, the real
  targets' gain being their own between-input distance.
"""

from __future__ import annotations

from pathlib import Path

import torch

from clustergan.jsonio import read_json, write_json


@torch.no_grad()
def diagnose_run(run_dir: Path, pairs_seed: int = 0) -> dict:
    from clustergan.clustering import ClusterStats, extract_features
    from clustergan.data import load_sources
    from clustergan.metrics import lpips_distance
    from clustergan.train.builders import build_config_encoder
    from clustergan.train.sampling import load_generator

    model = load_generator(run_dir)
    cfg = model.config
    k = model.k
    sources, _ = load_sources(cfg.data.root, "test", cfg.data.direction, cfg.data.size)
    n = len(sources)
    gen = torch.Generator().manual_seed(pairs_seed)
    # two noise draws per input, every cluster index with each: [k, 2, N, 3, H, W]
    z = torch.randn(2, n, model.nz, generator=gen)
    outs = torch.stack(
        [
            torch.stack([model.G(sources, z[r], torch.full((n,), c, dtype=torch.long)).clamp(-1, 1) for r in range(2)])
            for c in range(k)
        ]
    )
    # cluster effect: consecutive cluster pairs (c, c+1 mod k), same z; noise effect: z1 vs z2, same cluster
    cluster_effect = torch.stack([lpips_distance(outs[c, 0], outs[(c + 1) % k, 0]) for c in range(k)]).mean()
    noise_effect = torch.stack([lpips_distance(outs[c, 0], outs[c, 1]) for c in range(k)]).mean()

    stats = ClusterStats.load(Path(cfg.cluster.stats_dir))
    encoder = build_config_encoder(cfg)
    means = torch.as_tensor(stats.means, dtype=torch.float32)
    feats = torch.as_tensor(extract_features(encoder, outs[:, 0].flatten(0, 1)))  # [k * N, D]
    nearest = torch.cdist(feats, means).argmin(1).view(k, n)
    hit_rate = float((nearest == torch.arange(k)[:, None]).float().mean())
    report = read_json(Path(cfg.cluster.stats_dir) / "report.json")
    return {
        "run": str(run_dir),
        "k": k,
        "inputs": n,
        "cluster_effect_lpips": float(cluster_effect),
        "noise_effect_lpips": float(noise_effect),
        "cluster_hit_rate": hit_rate,
        "chance": 1.0 / k,
        "generated_cluster_histogram": torch.bincount(nearest.flatten(), minlength=k).tolist(),
        "silhouette": report.get("silhouette"),
        "sizes": report.get("sizes"),
        "shrinkage": report.get("shrinkage"),
    }


@torch.no_grad()
def conditioning_run(run_dir: Path, passes: int = 4, seed: int = 0) -> dict:
    """Input effect and own-vs-other target distances (module docstring), over ``passes`` draws of one
    shared (z, i); pix2pix's dropout stays per sample (its noise effect is small)."""
    from clustergan.data import load_sources, load_targets
    from clustergan.metrics import lpips_distance
    from clustergan.metrics.conditioning import ConditionalGain
    from clustergan.train.sampling import load_generator

    model = load_generator(run_dir)
    cfg = model.config
    sources, _ = load_sources(cfg.data.root, "test", cfg.data.direction, cfg.data.size)
    targets, _ = load_targets(cfg.data.root, "test", cfg.data.direction, cfg.data.size)
    n = len(sources)
    other = torch.roll(torch.arange(n), -1)  # each input's partner: the next input (as ConditionalGain pairs them)
    gen = torch.Generator().manual_seed(seed)
    outs, effect = [], []
    for _ in range(passes):
        ids = model.draw_clusters(1, gen)
        z = torch.randn(1, model.nz, generator=gen).expand(n, -1) if model.nz else None
        out = model.generate(sources, ids.expand(n) if ids is not None else None, gen, z=z)
        effect.append(lpips_distance(out, out[other]))
        outs.append(out)
    samples = torch.stack(outs, 1)  # [N, passes, 3, H, W]
    gain = ConditionalGain(targets, samples_per_input=passes)
    gain.update(samples)
    g = gain.compute()
    return {
        "run": str(run_dir),
        "inputs": n,
        "passes": passes,
        "input_effect_lpips": float(torch.cat(effect).mean()),
        "targets_input_effect_lpips": g.details["targets_gain"],
        "own_target_lpips": g.details["own_lpips"],
        "other_target_lpips": g.details["other_lpips"],
        "conditional_gain_lpips": g.values["cond_gain"],
        "own_target_l1": float((samples - targets[:, None]).abs().mean()),
    }


def diagnose_study(study_dir: Path, study, log=print) -> None:
    """For every run of a study: ``conditioning.json``. For every clustergan run: ``diagnose.json`` and, to
    test the choice of the cluster index at test time, ``metrics_target.json`` (the same protocol with each
    test target's own cluster)."""
    from clustergan.train.evaluate import evaluate_run

    for method in (*study.methods, *study.probes):  # probes too (their first seed only)
        for seed in study.seeds:
            run = study_dir / method.key / f"seed{seed}"
            if not (run / "metrics.json").is_file():
                continue
            if not (run / "checkpoints").is_dir():  # results restored from the ledger: no generator here
                if not (run / "conditioning.json").is_file():
                    log(f"diagnose {run}: skipped, no checkpoint on this machine (results from the ledger)")
                continue
            if not (run / "conditioning.json").is_file():
                log(f"diagnose {run}: input effect, own vs other target", flush=True)
                write_json(run / "conditioning.json", conditioning_run(run))
            if "clustergan" not in method.key:
                continue
            if not (run / "diagnose.json").is_file():
                log(f"diagnose {run}: cluster effect, cluster hit rate", flush=True)
                write_json(run / "diagnose.json", diagnose_run(run))
            if not (run / "metrics_target.json").is_file():
                log(f"diagnose {run}: evaluation with each target's own cluster", flush=True)
                evaluate_run(
                    run,
                    protocol=study.protocol,
                    seed=0,
                    cluster_choice="target",
                    out=run / "metrics_target.json",
                    ndb_bins=study.ndb_bins,
                )
