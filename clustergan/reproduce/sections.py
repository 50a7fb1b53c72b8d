"""The secondary sections of ``docs/RESULTS.md``: one-seed probes, the conditioning table and the clustergan
runs' diagnostics."""

from __future__ import annotations

from pathlib import Path

from clustergan.reproduce.presets import Study
from clustergan.reproduce.rule import (
    cell,
    compare,
    fmt,
    mean_std,
    read_or_empty,
    verdict_cell,
)
from clustergan.scores import LABELS, LOWER_IS_BETTER, QUALITY


def probes_section(study: Study, study_dir: Path, rows: dict) -> list[str]:
    """One-seed variants beside the same seed's main runs (no significance claimed with one seed)."""
    seed = study.seeds[0]
    found = [(p, read_or_empty(study_dir / p.key / f"seed{seed}" / "metrics.json")) for p in study.probes]
    found = [(p, m) for p, m in found if m]
    if not found:
        return []
    present = [k for k in QUALITY if any(isinstance(m.get(k), (int, float)) for _, m in found)]
    lines = [
        f"### One-seed probes (seed {seed}; the main rows' seed-{seed} runs beside them)",
        "",
        "| row | " + " | ".join(LABELS[k] for k in present) + " |",
        "|" + "---|" * (len(present) + 1),
    ]
    for r in rows.values():
        m = r["seeds"].get(seed, {}).get("metrics", {})
        lines.append(f"| {r['label']} (seed {seed}) | " + " | ".join(fmt(m.get(k), k) for k in present) + " |")
    for probe, m in found:
        lines.append(f"| **{probe.label}** | " + " | ".join(fmt(m.get(k), k) for k in present) + " |")
    return lines + [
        "",
        "A probe changes one setting of its method: "
        + "; ".join(f"{p.label}: `{' '.join(p.overrides)}`" for p, _ in found)
        + ".",
        "",
    ]


def diagnostics_section(study: Study, study_dir: Path) -> list[str]:
    """The clustergan runs' diagnostics (:mod:`clustergan.reproduce.diagnose`), when they were measured."""
    lines: list[str] = []
    for method in (*study.methods, *study.probes):  # probes of clustergan too (their first seed only)
        if "clustergan" not in method.key:
            continue
        diags, freq, target = [], {}, {}
        for seed in study.seeds:
            run = study_dir / method.key / f"seed{seed}"
            d, f, t = (
                read_or_empty(run / "diagnose.json"),
                read_or_empty(run / "metrics.json"),
                read_or_empty(run / "metrics_target.json"),
            )
            if d:
                diags.append((seed, d))
            for k in QUALITY:
                if isinstance(f.get(k), (int, float)) and isinstance(t.get(k), (int, float)):
                    freq.setdefault(k, []).append(f[k])
                    target.setdefault(k, []).append(t[k])
        if not diags:
            continue
        lines += [
            f"### Diagnostics: {method.label}",
            "",
            "| seed | cluster effect: LPIPS(G(x,z,i), G(x,z,j)) | noise effect: LPIPS(G(x,z1,i), G(x,z2,i)) "
            "| cluster hit rate (chance) | generated images per nearest cluster |",
            "|---|---|---|---|---|",
        ]
        for seed, d in diags:
            lines.append(
                f"| {seed} | {d['cluster_effect_lpips']:.4f} | {d['noise_effect_lpips']:.4f} | "
                f"{d['cluster_hit_rate']:.3f} ({d['chance']:.3f}) | {d['generated_cluster_histogram']} |"
            )
        d = diags[0][1]
        shrink = d.get("shrinkage") or []
        lines += [
            "",
            f"Clusters (seed {diags[0][0]}): k={d['k']}, sizes {d.get('sizes')}, silhouette "
            f"{d.get('silhouette', float('nan')):.3f}, Ledoit-Wolf shrinkage "
            f"{min(shrink, default=float('nan')):.2f}-{max(shrink, default=float('nan')):.2f}.",
            "",
        ]
        if freq:
            lines += [
                "Cluster index at test time: drawn from the training frequencies (the table above) vs each "
                "test target's own cluster (nearest cluster mean of its features):",
                "",
                "| metric | frequency | target's own cluster | verdict (target vs frequency) |",
                "|---|---|---|---|",
            ]
            for k in freq:
                c = compare(target[k], freq[k], LOWER_IS_BETTER[k])
                word = {"better": "target better", "worse": "frequency better"}.get(c["verdict"], c["verdict"])
                lines.append(f"| {LABELS[k]} | {cell(freq[k], k)} | {cell(target[k], k)} | {verdict_cell(word, c)} |")
            lines.append("")
    return lines


def conditioning_section(study: Study, study_dir: Path) -> list[str]:
    """Does the output depend on the input? (:func:`clustergan.reproduce.diagnose.conditioning_run`), every
    row that has the measurement, beside the real test targets."""
    keys = ("input_effect_lpips", "own_target_lpips", "other_target_lpips", "conditional_gain_lpips", "own_target_l1")
    rows, reference = [], None
    for method in (*study.methods, *study.probes):
        found = [
            c
            for seed in study.seeds
            if (c := read_or_empty(study_dir / method.key / f"seed{seed}" / "conditioning.json"))
        ]
        if found:
            rows.append((method.label, found))
            reference = reference or found[0]["targets_input_effect_lpips"]
    if not rows:
        return []
    lines = [
        "### Does the output depend on the input?",
        "",
        "One noise vector and one cluster index shared by every test input (4 draws; "
        "`clustergan.reproduce.diagnose.conditioning_run`). Input effect: LPIPS between the outputs for "
        "two different inputs; own / other target: LPIPS from an output to its input's target and to "
        "the other input's target; gain = other - own. Near-0 input effect and gain: the output ignores "
        "the input, and FID, NDB, JSD and LPIPS then measure an unconditional generator. Mean +- std over "
        "seeds.",
        "",
        "| row | seeds | input effect | LPIPS to own target | LPIPS to other target | gain | L1 to own target |",
        "|---|---|---|---|---|---|---|",
        f"| real test targets | - | {reference:.3f} | 0 | {reference:.3f} | {reference:.3f} | 0 |",
    ]
    for label, found in rows:
        cells = []
        for k in keys:
            m, sd = mean_std([c[k] for c in found])
            cells.append(f"{m:.4f} +- {sd:.4f}" if len(found) > 1 else f"{m:.4f}")
        lines.append(f"| {label} | {len(found)} | " + " | ".join(cells) + " |")
    return lines + [
        "",
        "pix2pix keeps its dropout per sample here, so part of its input effect is its own (small) noise.",
        "",
    ]
