"""The reproduction's archive (its committed ledger): the small result files of every finished run, kept in
the repo. (A sweep's ledger of finished trials is :mod:`clustergan.tune`'s.)

A reproduction takes hours on a 2-core CPU, longer than a machine may be held, and a fresh machine starts
with an empty ``runs/``. So the report step copies each run's results (metrics, diagnostics, wall times,
resolved config; never checkpoints or weights) into ``docs/results/<preset>/runs/``, and the next
``reproduce.py`` restores them before it starts: runs that have results are not trained again, and the
table grows seed by seed across machines. Each run's ``reproduce.json`` names the CPU it trained on, and the
report lists every machine that contributed. ``--fresh`` ignores the ledger and recomputes everything.

Only plain JSON goes in or out, through ``json`` (no pickles).
"""

from __future__ import annotations

from pathlib import Path

from clustergan.cache import atomic_copy

# per run folder <study>/<method>/seed<N>/, and the study-level files
RUN_FILES = (
    "metrics.json",
    "metrics_target.json",
    "diagnose.json",
    "conditioning.json",
    "reproduce.json",
    "config.json",
)
STUDY_FILES = ("machine.json", "_floor/metrics.json", "_ceiling/metrics.json")


def _files(root: Path) -> list[Path]:
    """Result files under a reproduction folder, relative to it."""
    found: list[Path] = []
    if not root.is_dir():
        return found
    for study in sorted(p for p in root.iterdir() if p.is_dir()):
        found += [f.relative_to(root) for name in STUDY_FILES if (f := study / name).is_file()]
        for run in sorted(study.glob("*/seed*")):
            if run.is_dir() and (run / "metrics.json").is_file():  # only finished runs enter the ledger
                found += [f.relative_to(root) for name in RUN_FILES if (f := run / name).is_file()]
    return found


def archive(out: Path, ledger: Path) -> int:
    """Copy the result files of ``out`` into ``ledger`` (overwriting older copies). Returns the count."""
    files = _files(Path(out))
    for rel in files:
        atomic_copy(Path(out) / rel, Path(ledger) / rel)
    return len(files)


def restore(ledger: Path, out: Path) -> int:
    """Copy the ledger's files into ``out`` where ``out`` lacks them; a run folder is restored whole, and
    only when ``out`` has no trace of that run (a local run, finished or in progress, wins). Returns the
    number of runs restored."""
    ledger, out = Path(ledger), Path(out)
    runs: dict[Path, list[Path]] = {}
    for rel in _files(ledger):
        if rel.parent.name.startswith("seed"):
            runs.setdefault(rel.parent, []).append(rel)
        elif not (out / rel).exists():
            atomic_copy(ledger / rel, out / rel)
    restored = 0
    for run, files in runs.items():
        local = out / run
        if (local / "metrics.json").exists() or (local / "checkpoints").exists():
            continue
        for rel in files:
            atomic_copy(ledger / rel, out / rel)
        restored += 1
    return restored
