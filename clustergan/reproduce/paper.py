"""The paper's Table 1 and its direction (clustergan vs MSGAN, vs pix2pix) tested on our rows."""

from __future__ import annotations

from clustergan.scores import LABELS, LOWER_IS_BETTER, QUALITY

# The paper's Table 1 (facades; resolution, epochs and protocol not stated; docs/PROTOCOLS.md).
PAPER_TABLE1 = {
    "pix2pix": {"fid": 98.23, "ndb": 11, "jsd": 0.0812, "lpips": 0.0621},
    "MSGAN": {"fid": 88.84, "ndb": 11, "jsd": 0.0559, "lpips": 0.3752},
    "clustergan": {"fid": 92.27, "ndb": 9, "jsd": 0.0300, "lpips": 0.4444},
}

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
        for k in QUALITY:
            ours = verdicts.get((ours_a, ours_b, k))
            if ours is None or k not in PAPER_TABLE1[paper_a]:
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


def paper_table() -> list[str]:
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
