"""Aggregate a reproduction into ``docs/RESULTS.md`` (+ ``results.json`` and the figure).

Significance rule (the issue's): a difference between two rows is called only when the gap between their
means exceeds twice the pooled seed standard deviation, ``sqrt((s_a^2 + s_b^2) / 2)``; otherwise the
comparison reads "not significant". With one seed per row no difference is called.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

from clustergan.cache import atomic_write_bytes
from clustergan.jsonio import read_json, write_json
from clustergan.reproduce.presets import Preset, Study

METRICS = ("fid", "kid", "ndb", "jsd", "lpips", "mode_coverage")
LOWER_IS_BETTER = {"fid": True, "kid": True, "ndb": True, "jsd": True, "lpips": False, "mode_coverage": False}
LABELS = {"fid": "FID", "kid": "KID", "ndb": "NDB", "jsd": "JSD", "lpips": "LPIPS", "mode_coverage": "mode coverage"}

# The paper's Table 1 (facades; resolution, epochs and protocol not stated; docs/PROTOCOLS.md).
PAPER_TABLE1 = {
    "pix2pix": {"fid": 98.23, "ndb": 11, "jsd": 0.0812, "lpips": 0.0621},
    "MSGAN": {"fid": 88.84, "ndb": 11, "jsd": 0.0559, "lpips": 0.3752},
    "clustergan": {"fid": 92.27, "ndb": 9, "jsd": 0.0300, "lpips": 0.4444},
}


def _read(path: Path) -> dict:
    return read_json(path, {})


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof 1; 0 for a single value)."""
    if not values:
        return math.nan, math.nan
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def compare(a: list[float], b: list[float], lower_is_better: bool) -> dict:
    """The significance rule between rows ``a`` and ``b``: which is better, or "not significant"."""
    ma, sa = mean_std(a)
    mb, sb = mean_std(b)
    pooled = math.sqrt((sa**2 + sb**2) / 2)
    gap = ma - mb
    significant = len(a) > 1 and len(b) > 1 and abs(gap) > 2 * pooled
    if not significant:
        verdict = "not significant"
    else:
        a_better = gap < 0 if lower_is_better else gap > 0
        verdict = "better" if a_better else "worse"
    return {"gap": gap, "threshold": 2 * pooled, "verdict": verdict, "seeds": min(len(a), len(b))}


def _verdict_cell(word: str, c: dict) -> str:
    """A comparison cell; with one seed on a side there is no spread, so no threshold is shown."""
    if c["seeds"] < 2:
        return f"{word}: one seed, no verdict (gap {c['gap']:+.4g})"
    return f"{word} (gap {c['gap']:+.4g}, 2σ {c['threshold']:.3g})"


def collect(study: Study, study_dir: Path) -> dict:
    """Per method: the label, per-seed metrics and wall times of the runs that have a metrics.json."""
    rows = {}
    for method in study.methods:
        seeds = {}
        for seed in study.seeds:
            run = study_dir / method.key / f"seed{seed}"
            m = _read(run / "metrics.json")
            if m:
                seeds[seed] = {
                    "metrics": {k: m[k] for k in METRICS if isinstance(m.get(k), (int, float))},
                    "epoch": m.get("provenance", {}).get("epoch"),
                    "cluster_choice": m.get("protocol", {}).get("cluster_choice"),
                    "protocol": m.get("protocol", {}),
                    "times": _read(run / "reproduce.json"),
                    "config": _read(run / "config.json"),
                }
        if seeds:
            rows[method.key] = {"label": method.label, "seeds": seeds}
    return rows


def _fmt(value: float, metric: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if metric == "fid":
        return f"{value:.2f}"
    if metric == "ndb":
        return f"{value:.1f}" if value != int(value) else f"{int(value)}"
    return f"{value:.4f}"


def _cell(values: list[float], metric: str) -> str:
    m, s = mean_std(values)
    return f"{_fmt(m, metric)} ± {_fmt(s, metric)}" if len(values) > 1 else _fmt(m, metric)


def study_section(study: Study, study_dir: Path, rows: dict) -> tuple[list[str], dict]:
    present = [k for k in METRICS if any(k in s["metrics"] for r in rows.values() for s in r["seeds"].values())]
    lines = [f"## {study.title}", ""]
    summary: dict = {"rows": {}, "comparisons": []}
    if not rows:
        return lines + ["No finished runs yet.", ""], summary
    header = (
        "| row | seeds | "
        + " | ".join(f"{LABELS[k]} ({'lower' if LOWER_IS_BETTER[k] else 'higher'} better)" for k in present)
        + " |"
    )
    lines += [header, "|" + "---|" * (len(present) + 2)]
    for key, r in rows.items():
        vals = {k: [s["metrics"][k] for s in r["seeds"].values() if k in s["metrics"]] for k in present}
        summary["rows"][key] = {
            "label": r["label"],
            **{k: {"mean": mean_std(v)[0], "std": mean_std(v)[1], "values": v} for k, v in vals.items()},
        }
        seeds = ",".join(str(s) for s in r["seeds"])
        lines.append(f"| {r['label']} | {seeds} | " + " | ".join(_cell(vals[k], k) for k in present) + " |")
    floor = _read(study_dir / "_floor" / "metrics.json")
    if floor:
        cells = []
        for k in present:
            if k == "lpips":
                cells.append(f"n/a (between inputs: {floor['lpips_between_inputs']:.4f})")
            elif k == "fid" and "fid" in floor:
                cells.append(f"{floor['fid']:.2f} (N={floor['details']['fid']['n_fake']})")
            else:
                cells.append(_fmt(floor[k], k) if k in floor else "n/a")
        lines.append("| floor: real test targets | - | " + " | ".join(cells) + " |")
        summary["floor"] = {k: floor[k] for k in ("fid", "ndb", "jsd", "lpips_between_inputs") if k in floor}
    ceiling = _read(study_dir / "_ceiling" / "metrics.json")
    if ceiling:
        lines.append(
            "| ceiling: untrained generator | - | "
            + " | ".join(_fmt(ceiling[k], k) if k in ceiling else "n/a" for k in present)
            + " |"
        )
        summary["ceiling"] = {k: ceiling[k] for k in present if k in ceiling}
    lines += ["", "Mean ± sample std over training seeds (one evaluation each, evaluation seed 0).", ""]

    # the significance rule, between the method rows: every pair goes into the summary (results JSON); the
    # Markdown shows the pairs a reader asks about (shown_pairs) and counts the rest
    keys = list(rows)
    pairs = [(a, b) for i, a in enumerate(keys) for b in keys[i + 1 :]]
    pairs = [(b, a) if b.startswith("clustergan") and not a.startswith("clustergan") else (a, b) for a, b in pairs]
    shown = shown_pairs([(rows[a]["label"], rows[b]["label"]) for a, b in pairs])
    if pairs:
        lines += [
            "Comparisons (rule: a difference counts only when |mean gap| > 2 x pooled seed std). Shown: "
            "clustergan against MSGAN at the same settings, every row against pix2pix, and each method "
            "against itself at other settings (the levers).",
            "",
            "| A vs B | " + " | ".join(LABELS[k] for k in present) + " |",
            "|" + "---|" * (len(present) + 1),
        ]
        hidden = 0
        for a, b in sorted(pairs, key=lambda ab: shown.get((rows[ab[0]]["label"], rows[ab[1]]["label"]), 99)):
            cells = []
            for k in present:
                va = [s["metrics"][k] for s in rows[a]["seeds"].values() if k in s["metrics"]]
                vb = [s["metrics"][k] for s in rows[b]["seeds"].values() if k in s["metrics"]]
                c = compare(va, vb, LOWER_IS_BETTER[k])
                summary["comparisons"].append(
                    {"a": a, "b": b, "a_label": rows[a]["label"], "b_label": rows[b]["label"], "metric": k, **c}
                )
                word = {"better": "**A better**", "worse": "**B better**"}.get(c["verdict"], "not significant")
                cells.append(_verdict_cell(word, c))
            if (rows[a]["label"], rows[b]["label"]) in shown:
                lines.append(f"| {rows[a]['label']} vs {rows[b]['label']} | " + " | ".join(cells) + " |")
            else:
                hidden += 1
        if hidden:
            lines += [
                "",
                f"{hidden} more pairs, at settings that differ in more than the method (e.g. clustergan "
                "at lambda_MS 0.1 vs MSGAN at 1), are in the results JSON (`comparisons`).",
            ]
        lines.append("")
    return lines, summary


def _family(label: str) -> tuple[str, str]:
    """``"clustergan, lambda_MS 0.1"`` -> ("clustergan", ", lambda_MS 0.1"): the method, then its settings."""
    for family in ("clustergan", "MSGAN", "pix2pix"):
        if label.startswith(family):
            return family, label[len(family) :]
    return label, ""


def shown_pairs(pairs: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """The comparisons worth a line, each with its place in the table: (0) clustergan vs MSGAN at the same
    settings, or vs every MSGAN row when none has its settings (the sweep's best); (1) any row vs pix2pix;
    (2) a method vs itself at other settings. Pairs whose settings differ as well as their method are left
    to the JSON."""
    labels = {x for pair in pairs for x in pair}
    msgan_settings = {_family(x)[1] for x in labels if _family(x)[0] == "MSGAN"}
    order: dict[tuple[str, str], int] = {}
    for a, b in pairs:
        (fa, sa), (fb, sb) = _family(a), _family(b)
        if {fa, fb} == {"clustergan", "MSGAN"}:
            ours = sa if fa == "clustergan" else sb
            if sa == sb or ours not in msgan_settings:
                order[(a, b)] = 0
        elif "pix2pix" in (fa, fb) and fa != fb:
            order[(a, b)] = 1
        elif fa == fb:
            order[(a, b)] = 2
    return order


def probes_section(study: Study, study_dir: Path, rows: dict) -> list[str]:
    """One-seed variants beside the same seed's main runs (no significance claimed with one seed)."""
    seed = study.seeds[0]
    found = [(p, _read(study_dir / p.key / f"seed{seed}" / "metrics.json")) for p in study.probes]
    found = [(p, m) for p, m in found if m]
    if not found:
        return []
    present = [k for k in METRICS if any(isinstance(m.get(k), (int, float)) for _, m in found)]
    lines = [
        f"### One-seed probes (seed {seed}; the main rows' seed-{seed} runs beside them)",
        "",
        "| row | " + " | ".join(LABELS[k] for k in present) + " |",
        "|" + "---|" * (len(present) + 1),
    ]
    for r in rows.values():
        m = r["seeds"].get(seed, {}).get("metrics", {})
        lines.append(f"| {r['label']} (seed {seed}) | " + " | ".join(_fmt(m.get(k), k) for k in present) + " |")
    for probe, m in found:
        lines.append(f"| **{probe.label}** | " + " | ".join(_fmt(m.get(k), k) for k in present) + " |")
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
            d, f, t = _read(run / "diagnose.json"), _read(run / "metrics.json"), _read(run / "metrics_target.json")
            if d:
                diags.append((seed, d))
            for k in METRICS:
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
                lines.append(
                    f"| {LABELS[k]} | {_cell(freq[k], k)} | {_cell(target[k], k)} | {_verdict_cell(word, c)} |"
                )
            lines.append("")
    return lines


def conditioning_section(study: Study, study_dir: Path) -> list[str]:
    """Does the output depend on the input? (:func:`clustergan.reproduce.diagnose.conditioning_run`), every
    row that has the measurement, beside the real test targets."""
    keys = ("input_effect_lpips", "own_target_lpips", "other_target_lpips", "conditional_gain_lpips", "own_target_l1")
    rows, reference = [], None
    for method in (*study.methods, *study.probes):
        found = [
            c for seed in study.seeds if (c := _read(study_dir / method.key / f"seed{seed}" / "conditioning.json"))
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


def _protocol_lines(rows: dict, study: Study) -> list[str]:
    first = next((s for r in rows.values() for s in r["seeds"].values()), None)
    if not first:
        return []
    p = first["protocol"]
    cfg = first["config"].get("config", {})
    t = cfg.get("train", {})
    choices = sorted({s["cluster_choice"] for r in rows.values() for s in r["seeds"].values()} - {None})
    return [
        f"- Protocol `{p.get('name')}`: {p.get('samples_per_input')} samples per test input; LPIPS "
        f"(AlexNet v{p.get('lpips_version')}, inputs {p.get('lpips_range')}) over {p.get('lpips_pairs')} random "
        f"pairs per input; NDB/JSD with K={p.get('ndb_bins')} bins on "
        f"{'standardised ' if p.get('ndb_standardize') else ''}{p.get('ndb_space')} at "
        f"{p.get('ndb_resolution')}x{p.get('ndb_resolution')}, {p.get('ndb_queries_per_input')} samples per input, "
        f"bins fitted on the training targets (seed {p.get('ndb_seed')})"
        + (
            f"; FID (pytorch-fid Inception) on {p.get('fid_samples_per_input')} samples per input against the "
            f"training targets"
            if p.get("fid")
            else "; no FID"
        )
        + ".",
        f"- Budget, the same for every method: {cfg.get('data', {}).get('size')} px, batch "
        f"{t.get('batch_size')}, {t.get('epochs')} + {t.get('epochs_decay')} epochs (linear decay), Adam lr "
        f"{t.get('lr')}, encoder `{cfg.get('encoder', {}).get('name')}`; seeds {list(study.seeds)}.",
        f"- Cluster index at test time: {', '.join(choices) or 'n/a'} (drawn per sample from the training "
        f"cluster frequencies).",
    ]


def write_results(preset: Preset, out: Path, docs: Path) -> Path:
    from clustergan.reproduce.figure import write_figure

    out, docs = Path(out), Path(docs)
    machine = _read(out / "machine.json")
    lines = [
        f"# Results: the paper's Table 1, reproduced (`{preset.name}` preset)",
        "",
        "Written by `python ray_jobs/reproduce.py --preset " + preset.name + "` "
        "(`make reproduce`); every number below comes from the runs it trained. Rerunning the preset "
        "reproduces them within the seed spread.",
        "",
    ]
    if machine.get("smoke_test"):
        budget = f"{machine['smoke_epochs']} epoch(s)" if machine.get("smoke_epochs") else "2 training steps"
        lines += [f"**SMOKE TEST: {budget} per run. These numbers say nothing about the methods.**", ""]
    lines += [f"Preset: {preset.description}.", ""]
    summary: dict = {"preset": preset.name, "machine": machine, "studies": {}}
    wall_total = 0.0
    figure_lines: list[str] = []
    trained_on: dict[str, list[str]] = {}  # CPU -> runs, from each run's reproduce.json
    adopted: list[str] = []  # runs trained elsewhere with the same config (reproduce.py --adopt)
    for study in preset.studies:
        study_dir = out / study.name
        rows = collect(study, study_dir)
        for r in rows.values():
            for seed, x in r["seeds"].items():
                cpu = x["times"].get("machine", {}).get("cpu", "not recorded")
                trained_on.setdefault(cpu, []).append(f"{study.name}/{r['label']}/seed{seed}")
                if x["times"].get("adopted_from"):
                    adopted.append(f"{study.name}/{r['label']}/seed{seed} (`{x['times']['adopted_from']}`)")
        section, s = study_section(study, study_dir, rows)
        lines += section + _protocol_lines(rows, study)
        started = _read(study_dir / "machine.json")
        if started:
            lines.append(f"- Started {started.get('started', '?')} from commit `{started.get('git_commit', '?')}`.")
        train_s = sum(x["times"].get("train_seconds", 0.0) for r in rows.values() for x in r["seeds"].values())
        eval_s = sum(x["times"].get("eval_seconds", 0.0) for r in rows.values() for x in r["seeds"].values())
        wall_total += train_s + eval_s
        if rows:
            lines.append(
                f"- Wall time: training {train_s / 60:.1f} min, evaluation {eval_s / 60:.1f} min "
                f"({sum(len(r['seeds']) for r in rows.values())} runs)."
            )
        lines.append("")
        if study.facades and rows:
            lines += _paper_table() + direction_lines(s)
        notes = docs / "results" / f"{preset.name}_{study.name}_notes.md"
        if notes.is_file():  # the hand-written reading of this study's numbers, kept across rewrites
            lines += ["### Reading the results", "", notes.read_text().strip(), ""]
        lines += probes_section(study, study_dir, rows)
        if study.diagnose:
            lines += conditioning_section(study, study_dir) + diagnostics_section(study, study_dir)
        if study.figure and rows:
            fig = write_figure(study_dir, rows, docs / "figures" / f"{preset.name}_{study.name}_figure2.png")
            if fig:
                rel = fig.relative_to(docs) if fig.is_relative_to(docs) else fig
                figure_lines = [
                    f"![Figure 2]({rel})",
                    "",
                    "Same test inputs (rows); columns: the input, pix2pix, MSGAN (3 noise "
                    "vectors), clustergan for each cluster index (one noise vector; `ours MS0.1`: "
                    "clustergan at lambda_MS 0.1, when present). Seed-0 models.",
                    "",
                ]
                lines += ["### Figure 2 (ours)", ""] + figure_lines
        summary["studies"][study.name] = s
    if machine:
        where = (
            f"{machine.get('cpu', 'CPU not recorded')}, {machine.get('cores', 'an unrecorded number of')} cores, "
            f"GPUs: {', '.join(machine.get('gpus') or []) or 'none'}, torch {machine.get('torch', 'not recorded')}."
        )
    else:  # --report-only on an output folder without machine.json (e.g. runs adopted from a ledger only)
        where = "Not recorded: this output folder has no machine.json (the reproduction writes it when it starts)."
    lines += [
        "## Machine",
        "",
        f"{where} Training + evaluation wall time, all studies: {wall_total / 60:.1f} min.",
        "",
    ]
    if len(trained_on) > 1 or "not recorded" in trained_on:
        lines += [
            "The runs were trained on more than one machine (a reproduction grows across machines through "
            "the committed ledger, `docs/results/" + preset.name + "/runs`); wall times are not comparable "
            "across them:",
            "",
        ]
        lines += [f"- {cpu}: {len(runs)} runs ({', '.join(runs)})" for cpu, runs in trained_on.items()] + [""]
    if adopted:
        lines += [
            "Adopted, not trained by the reproduction (`reproduce.py --adopt`: the same config, dataset, "
            "budget and clusters, trained once by the sweep trial that found the configuration; evaluated "
            "here like every run): " + "; ".join(adopted) + ".",
            "",
        ]
    docs.mkdir(parents=True, exist_ok=True)
    path = docs / "RESULTS.md"
    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode())
    write_json(docs / "results" / f"{preset.name}.json", summary)
    return path


# (our method key A, key B, the paper's row A, row B): the paper's direction, tested on our rows; the
# matched-lambda_MS pair asks the paper's question (does clustering add to mode seeking?) where neither collapses
DIRECTION_PAIRS = (
    ("clustergan", "msgan", "clustergan", "MSGAN"),
    ("clustergan", "pix2pix", "clustergan", "pix2pix"),
    ("clustergan_ms0.1", "msgan_ms0.1", "clustergan", "MSGAN"),
    ("clustergan_ms0.1", "pix2pix", "clustergan", "pix2pix"),
    # the same pair where both follow their input (lambda_L1 100, pix2pix's weight)
    ("clustergan_ms0.1_l1_100", "msgan_ms0.1_l1_100", "clustergan", "MSGAN"),
)


def direction_lines(summary: dict) -> list[str]:
    """The paper's direction (clustergan vs MSGAN, and vs pix2pix) beside ours, metric by metric."""
    verdicts = {(c["a"], c["b"], c["metric"]): c["verdict"] for c in summary.get("comparisons", [])}
    lines = [
        "### The paper's direction vs ours",
        "",
        "| comparison | metric | paper | ours (significance rule) | same direction? |",
        "|---|---|---|---|---|",
    ]
    any_row = False
    for ours_a, ours_b, paper_a, paper_b in DIRECTION_PAIRS:
        for k in ("fid", "ndb", "jsd", "lpips"):
            ours = verdicts.get((ours_a, ours_b, k))
            if ours is None:
                continue
            any_row = True
            a, b = PAPER_TABLE1[paper_a][k], PAPER_TABLE1[paper_b][k]
            paper = "tie" if a == b else ("better" if (a < b) == LOWER_IS_BETTER[k] else "worse")
            same = "n/a" if ours == "not significant" else ("yes" if ours == paper else "**no**")
            if ours == "not significant" and paper != "tie":
                same = "not shown"
            label = {key: row["label"] for key, row in summary["rows"].items()}
            lines.append(
                f"| {label[ours_a]} vs {label[ours_b]} | {LABELS[k]} | {paper} ({a} vs {b}) | {ours} | {same} |"
            )
    return lines + [""] if any_row else []


def _paper_table() -> list[str]:
    lines = [
        "### The paper's Table 1, beside ours",
        "",
        "Other resolution, budget and protocol: compare the direction only.",
        "",
        "| paper row | FID | NDB | JSD | LPIPS |",
        "|---|---|---|---|---|",
    ]
    for label, v in PAPER_TABLE1.items():
        lines.append(f"| {label} | {v['fid']} | {v['ndb']} | {v['jsd']} | {v['lpips']} |")
    return lines + [""]
