"""Aggregate a reproduction into ``docs/RESULTS.md`` (+ ``results.json`` and the figure): the main table of
every study with its comparisons (the significance rule of :mod:`clustergan.reproduce.rule`), the paper's
direction (:mod:`clustergan.reproduce.paper`) and the secondary sections (:mod:`clustergan.reproduce.sections`).
"""

from __future__ import annotations

import os
from pathlib import Path

from clustergan.cache import atomic_write_bytes
from clustergan.jsonio import write_json
from clustergan.reproduce.earlier import earlier_section, refresh_copies
from clustergan.reproduce.paper import direction_lines, paper_table
from clustergan.reproduce.presets import Preset, Study
from clustergan.reproduce.rule import (
    cell,
    compare,
    fmt,
    mean_std,
    read_or_empty,
    verdict_cell,
)
from clustergan.reproduce.sections import conditioning_section, diagnostics_section, probes_section
from clustergan.reproduce.targets import targets_section
from clustergan.scores import LABELS, LOWER_IS_BETTER, QUALITY, SCORES

__all__ = ["collect", "compare", "direction_lines", "mean_std", "shown_pairs", "study_section", "write_results"]


def collect(study: Study, study_dir: Path) -> dict:
    """Per method: the label, per-seed metrics and wall times of the runs that have a metrics.json."""
    rows = {}
    for method in study.methods:
        seeds = {}
        for seed in study.seeds:
            run = study_dir / method.key / f"seed{seed}"
            m = read_or_empty(run / "metrics.json")
            if m:
                seeds[seed] = {
                    "metrics": {k: m[k] for k in SCORES if isinstance(m.get(k), (int, float))},
                    "epoch": m.get("provenance", {}).get("epoch"),
                    "cluster_choice": m.get("protocol", {}).get("cluster_choice"),
                    "protocol": m.get("protocol", {}),
                    "times": read_or_empty(run / "reproduce.json"),
                    "config": read_or_empty(run / "config.json"),
                }
        if seeds:
            rows[method.key] = {"label": method.label, "seeds": seeds}
    return rows


def study_section(study: Study, study_dir: Path, rows: dict) -> tuple[list[str], dict]:
    present = [k for k in QUALITY if any(k in s["metrics"] for r in rows.values() for s in r["seeds"].values())]
    lines = [f"## {study.title}", ""]
    summary: dict = {"rows": {}, "comparisons": []}
    if not rows:
        return lines + ["No finished runs yet.", ""], summary
    # cond_gain asks whether the output follows its input: shown beside the quality metrics, never compared
    beside = [
        k
        for k in SCORES
        if k not in QUALITY and any(k in s["metrics"] for r in rows.values() for s in r["seeds"].values())
    ]
    header = (
        "| row | seeds | "
        + " | ".join(f"{LABELS[k]} ({'lower' if LOWER_IS_BETTER[k] else 'higher'} better)" for k in present)
        + "".join(f" | {LABELS[k]} (beside: does the output follow its input?)" for k in beside)
        + " |"
    )
    lines += [header, "|" + "---|" * (len(present) + len(beside) + 2)]
    for key, r in rows.items():
        vals = {k: [s["metrics"][k] for s in r["seeds"].values() if k in s["metrics"]] for k in present}
        summary["rows"][key] = {
            "label": r["label"],
            **{k: {"mean": mean_std(v)[0], "std": mean_std(v)[1], "values": v} for k, v in vals.items()},
        }
        seeds = ",".join(str(s) for s in r["seeds"])
        shown = [cell(vals[k], k) for k in present]
        shown += [cell([s["metrics"][k] for s in r["seeds"].values() if k in s["metrics"]], k) for k in beside]
        lines.append(f"| {r['label']} | {seeds} | " + " | ".join(shown) + " |")
    floor = read_or_empty(study_dir / "_floor" / "metrics.json")
    if floor:
        cells = []
        for k in present:
            if k == "lpips":
                cells.append(f"n/a (between inputs: {floor['lpips_between_inputs']:.4f})")
            elif k in ("fid", "fid_n_inputs") and "fid" in floor:  # the floor's N is the number of inputs
                cells.append(f"{floor['fid']:.2f} (N={floor['details']['fid']['n_fake']})")
            else:
                cells.append(fmt(floor[k], k) if k in floor else "n/a")
        cells += ["n/a"] * len(beside)  # one real target per input: nothing to follow
        lines.append("| floor: real test targets | - | " + " | ".join(cells) + " |")
        summary["floor"] = {k: floor[k] for k in ("fid", "ndb", "jsd", "lpips_between_inputs") if k in floor}
    ceiling = read_or_empty(study_dir / "_ceiling" / "metrics.json")
    if ceiling:
        lines.append(
            "| ceiling: untrained generator | - | "
            + " | ".join(fmt(ceiling[k], k) if k in ceiling else "n/a" for k in (*present, *beside))
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
                cells.append(verdict_cell(word, c))
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


def _protocol_lines(rows: dict, study: Study) -> list[str]:
    from clustergan.metrics.protocols import protocol_digest

    first = next((s for r in rows.values() for s in r["seeds"].values()), None)
    if not first:
        return []
    p = first["protocol"]
    cfg = first["config"].get("config", {})
    t = cfg.get("train", {})
    choices = sorted({s["cluster_choice"] for r in rows.values() for s in r["seeds"].values()} - {None})
    digests = sorted({protocol_digest(s["protocol"]) for r in rows.values() for s in r["seeds"].values()})
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
            if p.get("fid") or "fid" in (p.get("metrics") or ())
            else "; no FID"
        )
        + f"; protocol hash {', '.join(f'`{h}`' for h in digests)}"
        + (" (the rows were evaluated under different settings)" if len(digests) > 1 else "")
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
    page = docs / preset.page
    machine = read_or_empty(out / "machine.json")
    lines = [
        f"# Results: the paper's Table 1, reproduced (`{preset.name}` preset)",
        "",
        f"Written by `python ray_jobs/reproduce.py --preset {preset.name}` (`make reproduce PRESET={preset.name}`); "
        "every number below comes from the runs it trained. Rerunning the preset reproduces them within the seed "
        "spread.",
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
        baseline = None
        if study.baseline:  # the other preset's committed ledger, read with this study's rows
            ledger = docs / "results" / study.baseline / "runs" / study.name
            baseline = (study.baseline, collect(study, ledger)) if ledger.is_dir() else None
        checked, s["targets"] = targets_section(study.targets, rows, len(study.seeds), baseline)
        lines += section + checked + _protocol_lines(rows, study)
        started = read_or_empty(study_dir / "machine.json")
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
            lines += paper_table() + direction_lines(s)
        notes = docs / "results" / f"{preset.name}_{study.name}_notes.md"
        if notes.is_file():  # the hand-written reading of this study's numbers, kept across rewrites
            lines += ["### Reading the results", "", notes.read_text().strip(), ""]
        lines += probes_section(study, study_dir, rows)
        if study.diagnose:
            lines += conditioning_section(study, study_dir) + diagnostics_section(study, study_dir)
        if study.figure and rows:
            fig = write_figure(study_dir, rows, docs / "figures" / f"{preset.name}_{study.name}_figure2.png")
            if fig:
                rel = Path(os.path.relpath(fig, page.parent))  # the link works from where the page is
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
    for name in preset.earlier:
        lines += earlier_section(docs, name, page) + [""]
    page.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(page, ("\n".join(lines) + "\n").encode())
    write_json(docs / "results" / f"{preset.name}.json", summary)
    refresh_copies(preset, docs)
    return page
