"""An earlier preset's report, kept on a newer preset's page as one labelled section.

When a preset replaces another as the one ``docs/RESULTS.md`` reports (``Preset.earlier``), the old preset's
numbers stay readable there without being mixed into the new table: its own page (``Preset.page``, written
by ``--preset <old>``) is copied in between two markers, its headings one level down and its relative links
rebased to the new page's folder. Writing either page refreshes the copy, so the two never disagree.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from clustergan.cache import atomic_write_bytes
from clustergan.reproduce.presets import PRESETS, Preset

_LINK = re.compile(r"\]\((?!https?:|#|/)([^)\s]+)\)")


def _begin(name: str) -> str:
    return f"<!-- earlier preset {name}: copied from its own page by the report; edit that page, not this copy -->"


def _end(name: str) -> str:
    return f"<!-- end of earlier preset {name} -->"


def _rebase(text: str, src: Path, dst: Path) -> str:
    """Relative Markdown links of a page in ``src`` (a folder), made to work from ``dst``."""

    def move(m: re.Match) -> str:
        target = os.path.normpath(src / m.group(1))
        return f"]({Path(os.path.relpath(target, dst)).as_posix()})"

    return _LINK.sub(move, text)


def earlier_section(docs: Path, name: str, page: Path) -> list[str]:
    """The lines of earlier preset ``name``'s section on ``page``; a note in their place while its own page
    does not exist yet (``--preset <name> --report-only`` writes it from its committed ledger)."""
    old = PRESETS[name]
    source = docs / old.page
    head = [
        _begin(name),
        f"## Earlier preset: `{name}` ({old.description})",
        "",
        f"Kept as its own report, not mixed into the tables above: other budget, other runs. Its page: "
        f"[{old.page}]({Path(os.path.relpath(source, page.parent)).as_posix()}), rebuilt by "
        f"`python ray_jobs/reproduce.py --preset {name} --report-only`.",
        "",
    ]
    if not source.is_file():
        return head + [f"Not written yet: {source} does not exist.", "", _end(name)]
    body = source.read_text().strip().splitlines()
    if body and body[0].startswith("# "):  # its title; the heading above replaces it
        body = body[1:]
    body = [("#" + line) if line.startswith("#") else line for line in body]
    return head + _rebase("\n".join(body), source.parent, page.parent).strip().splitlines() + ["", _end(name)]


def refresh_copies(preset: Preset, docs: Path) -> list[Path]:
    """After ``preset``'s page was written: the pages of the presets that keep it as an earlier section get
    the new copy. A page without the markers is left alone (its next report adds them)."""
    done = []
    for newer in PRESETS.values():
        if preset.name not in newer.earlier:
            continue
        page = docs / newer.page
        text = page.read_text() if page.is_file() else ""
        begin, end = _begin(preset.name), _end(preset.name)
        if begin not in text or end not in text:
            continue
        before, rest = text.split(begin, 1)
        after = rest.split(end, 1)[1]
        section = "\n".join(earlier_section(docs, preset.name, page))
        atomic_write_bytes(page, (before + section + after).encode())
        done.append(page)
    return done
