"""``report.html``: one static page per sweep experiment, written beside ``ranking.md`` by every report.

The page is one file with no script, no server and no CDN: styles are inline and images are links relative to
the experiment folder (the Pareto plot, each trial's last sample grid, the cluster overview of its k), so it
opens from disk and keeps working when the folder is copied elsewhere whole. An image that is not there (a
trial still running, a grid not pulled from a URI) is named as missing, never shown broken.
"""

from __future__ import annotations

import html
import math
import os
import statistics
from pathlib import Path
from typing import Any
from urllib.parse import quote

from clustergan.cache import atomic_write_bytes
from clustergan.tune.records import METRICS

PAGE = "report.html"

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 80em; color: #222; padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: right; }
th { background: #f0f0f0; } td.text { text-align: left; }
tr.baseline td, tr.control td { background: #f6f6ff; } tr.unranked td { color: #777; }
.note { background: #fff8e0; border-left: 4px solid #e0b000; padding: 0.5em 1em; }
.trials { display: flex; flex-wrap: wrap; gap: 1.5em; }
.trial { border: 1px solid #ccc; padding: 0.5em; max-width: 38em; }
.trial img { max-width: 100%; image-rendering: pixelated; display: block; margin: 0.3em 0; }
.missing { color: #a00; font-style: italic; }
code, pre { background: #f4f4f4; padding: 0.1em 0.3em; }
.interval { color: #666; font-size: 0.85em; }
"""


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def fmt_number(value: Any) -> str:
    """A table cell: empty for None, 4 significant digits for a float."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return str(value)


def _locate(path: str | None, exp: Path) -> Path | None:
    """A recorded file path as this machine sees it: absolute, or relative to the working directory (a
    ledger records its grids relative to where the sweep ran) or to the experiment."""
    if not path:
        return None
    p = Path(path)
    for candidate in (p,) if p.is_absolute() else (p, exp / p):
        if candidate.is_file():
            return candidate
    return None


def _image(path: Path | None, exp: Path, alt: str, what: str) -> str:
    if path is None:
        return f'<p class="missing">{_esc(what)}: not there yet</p>'
    href = quote(os.path.relpath(path.resolve(), exp.resolve()).replace(os.sep, "/"))
    return f'<a href="{href}"><img src="{href}" alt="{_esc(alt)}"></a>'


def _interval(row: dict[str, Any], metric: str) -> str:
    """A trial of several seeds: the seeds' spread under its mean (min to max, and the seed count)."""
    values = [s[metric] for s in (row.get("per_seed") or {}).values() if s.get(metric) is not None]
    if len(values) < 2:
        return ""
    return (
        f'<br><span class="interval">{fmt_number(min(values))}&ndash;{fmt_number(max(values))}, '
        f"sd {fmt_number(statistics.stdev(values))}, {len(values)} seeds</span>"
    )


def _table(rows: list[dict[str, Any]], values: list[dict[str, Any]], shown: list[str]) -> str:
    head = "".join(f"<th>{_esc(c)}</th>" for c in shown)
    body = []
    for row, v in zip(rows, values, strict=True):
        kind = v["kind"].split(":", 1)[0]
        classes = [kind] + ([] if v["rank"] is not None else ["unranked"])
        cells = []
        for c in shown:
            if c in METRICS:
                cells.append(f"<td>{fmt_number(v[c])}{_interval(row, c)}</td>")
            elif c in ("trial", "kind", "status"):
                cell = f'<a href="#trial-{_esc(v["trial"])}">{_esc(v[c])}</a>' if c == "trial" else _esc(v[c])
                cells.append(f'<td class="text">{cell}</td>')
            else:
                cells.append(f"<td>{fmt_number(v[c])}</td>")
        body.append(f'<tr class="{" ".join(classes)}" data-trial="{_esc(v["trial"])}">{"".join(cells)}</tr>')
    return f'<table id="ranking"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _trial_card(row: dict[str, Any], v: dict[str, Any], exp: Path) -> str:
    k = v.get("cluster.k")
    metrics = ", ".join(f"{m} {fmt_number(v[m])}" for m in METRICS if v.get(m) is not None)
    params = ", ".join(
        f"{key} {fmt_number(value)}" for key, value in sorted((row.get("params") or {}).items()) if value is not None
    )
    parts = [
        f'<div class="trial" id="trial-{_esc(v["trial"])}">',
        f"<h3>{_esc(v['trial'])} &middot; {_esc(v['kind'])} &middot; {_esc(v['status'])}"
        + (f" &middot; rank {v['rank']}" if v["rank"] is not None else "")
        + "</h3>",
        f"<p>{_esc(metrics) or 'no metrics yet'}</p>",
        f"<p>{_esc(params) or 'the base configuration'}</p>" if row["kind"] != "search" or params else "",
        f'<p class="missing">error: {_esc(v["error"])}</p>' if v.get("error") else "",
        "<p>Last sample grid: a row per test input, the input first, then for each cluster index (up to 8) a few "
        "noise draws; without clusters, noise draws only.</p>",
        _image(_locate(v.get("sample_grid"), exp), exp, f"samples of trial {v['trial']}", "sample grid"),
    ]
    if k:
        overview = exp / "clusters" / f"k{k}" / "clusters.png"
        parts += [
            f"<p>Its k = {k} clusters of the training targets (one row per cluster index):</p>",
            _image(overview if overview.is_file() else None, exp, f"clusters for k={k}", f"cluster montage k={k}"),
        ]
    parts.append("</div>")
    return "\n".join(p for p in parts if p)


def write_page(
    exp: Path,
    state: dict[str, Any],
    rows: list[dict[str, Any]],
    values: list[dict[str, Any]],
    shown: list[str],
    protocol: str,
    notes: list[str],
    plot: Path | None,
    best: Path | None,
) -> Path:
    """Write ``<exp>/report.html`` from the ranking ``write_report`` computed; returns its path."""
    name = state.get("name", exp.name)
    status = state.get("status", "running")
    ranked = sum(v["rank"] is not None for v in values)
    db = exp / "optuna.db"
    look = [
        f"<li>Training curves and the HParams table of every trial: <code>tensorboard --logdir {_esc(exp)}</code>"
        " (then open http://127.0.0.1:6006, tab HPARAMS)</li>",
    ]
    if db.is_file():
        look.append(
            f"<li>The Optuna study: <code>clustergan dashboard {_esc(exp)}</code> "
            "(needs <code>pip install -e '.[dashboard]'</code>)</li>"
        )
    look.append(f"<li>Rewrite this page: <code>clustergan report {_esc(exp)}</code></li>")
    if best is not None:
        train = f"clustergan train --config {_esc(best)}"
        look.append(f"<li>Train the best searched configuration: <code>{train}</code></li>")
    body = [
        f"<h1>Sweep <code>{_esc(name)}</code>: {_esc(status)}</h1>",
        f"<p>{len(values)} trials, {ranked} ranked. Files: "
        '<a href="ranking.md">ranking.md</a>, <a href="ranking.csv">ranking.csv</a>'
        + (', <a href="best_config.yaml">best_config.yaml</a>' if best is not None else "")
        + ".</p>",
        *(f'<p class="note">{_esc(n.replace("**", ""))}</p>' for n in notes),
        "<h2>Ranking</h2>",
        "<p>Pareto rank by non-dominated sorting on (NDB min, JSD min, LPIPS max); within a rank, lower NDB, "
        "then lower JSD, then higher LPIPS. Baselines and hand-set controls are shaded; unranked trials "
        "(infeasible, stopped early, running, failed) are greyed. A trial of several seeds shows its seed "
        "mean, with the seeds' range and standard deviation below it.</p>",
        _table(rows, values, shown),
        "<h2>Pareto plot</h2>",
        _image(plot, exp, "NDB against LPIPS, colour JSD", "Pareto plot"),
        "<h2>Trials</h2>",
        '<div class="trials">',
        *(_trial_card(r, v, exp) for r, v in zip(rows, values, strict=True)),
        "</div>",
        "<h2>Protocol</h2>",
        f"<p>{_esc(protocol.replace('`', ''))}</p>",
        "<h2>Look further</h2>",
        f"<ul>{''.join(look)}</ul>",
    ]
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>clustergan sweep {_esc(name)}</title><style>{STYLE}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )
    path = exp / PAGE
    atomic_write_bytes(path, page.encode())
    return path
