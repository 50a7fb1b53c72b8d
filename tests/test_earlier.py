"""An earlier preset's report kept on its successor's page (clustergan.reproduce.earlier)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from clustergan.errors import ConfigError
from clustergan.reproduce import earlier
from clustergan.reproduce.presets import PRESETS, Preset, check_presets

REPO = Path(__file__).resolve().parents[1]

OLD_PAGE = """# Results: the paper's Table 1, reproduced (`old` preset)

Intro.

## facades

| row | FID |
|---|---|
| pix2pix | 300 |

#### Reading

![Figure 2](../figures/old_figure2.png) and [a site](https://example.org) and [anchor](#facades)
"""


@pytest.fixture
def presets(monkeypatch):
    table = {
        "old": Preset(name="old", description="the old budget", studies=(), page="results/old.md"),
        "new": Preset(name="new", description="the new budget", studies=(), earlier=("old",)),
    }
    monkeypatch.setattr(earlier, "PRESETS", table)
    return table


def test_the_copy_drops_the_title_moves_headings_down_and_rebases_links(tmp_path, presets):
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "old.md").write_text(OLD_PAGE)
    lines = earlier.earlier_section(tmp_path, "old", tmp_path / "RESULTS.md")
    text = "\n".join(lines)
    assert lines[0].startswith("<!-- earlier preset old:") and lines[-1] == "<!-- end of earlier preset old -->"
    assert "## Earlier preset: `old` (the old budget)" in text
    assert "[results/old.md](results/old.md)" in text and "--preset old --report-only" in text
    assert "# Results" not in text  # the old title is replaced by the section's heading
    assert "\n### facades\n" in text and "\n##### Reading\n" in text
    assert "![Figure 2](figures/old_figure2.png)" in text  # from docs/results/ to docs/
    assert "[a site](https://example.org)" in text and "[anchor](#facades)" in text
    assert "| pix2pix | 300 |" in text


def test_a_missing_old_page_is_said_not_invented(tmp_path, presets):
    text = "\n".join(earlier.earlier_section(tmp_path, "old", tmp_path / "RESULTS.md"))
    assert f"Not written yet: {tmp_path / 'results' / 'old.md'} does not exist." in text


def test_writing_the_old_page_refreshes_the_copy_and_nothing_else(tmp_path, presets):
    (tmp_path / "results").mkdir()
    old = tmp_path / "results" / "old.md"
    old.write_text(OLD_PAGE)
    new = tmp_path / "RESULTS.md"
    section = "\n".join(earlier.earlier_section(tmp_path, "old", new))
    new.write_text("# New\n\nnew table\n\n" + section + "\n\nafter\n")
    old.write_text(OLD_PAGE.replace("| pix2pix | 300 |", "| pix2pix | 299 |"))
    assert earlier.refresh_copies(presets["old"], tmp_path) == [new]
    text = new.read_text()
    assert "| pix2pix | 299 |" in text and "| pix2pix | 300 |" not in text
    assert text.startswith("# New\n\nnew table\n\n") and text.endswith("\n\nafter\n")
    assert earlier.refresh_copies(presets["new"], tmp_path) == []  # nothing keeps the new preset
    new.write_text("# New, without markers\n")
    assert earlier.refresh_copies(presets["old"], tmp_path) == [] and new.read_text() == "# New, without markers\n"


def test_an_earlier_preset_must_exist_and_every_preset_have_its_own_page():
    with pytest.raises(ConfigError, match=r"preset 'cpu50': earlier presets \['cpux'\] do not exist"):
        check_presets({**PRESETS, "cpu50": dataclasses.replace(PRESETS["cpu50"], earlier=("cpux",))})
    with pytest.raises(ConfigError) as err:
        check_presets({**PRESETS, "cpu": dataclasses.replace(PRESETS["cpu"], page="RESULTS.md")})
    assert str(err.value) == (
        "presets 'cpu' and 'cpu50' both write the page 'RESULTS.md': give each its own Preset.page, or one "
        "report replaces the other"
    )
    assert PRESETS["gpu"].page == "results/gpu.md"  # a GPU run leaves the committed cpu50 report alone


def test_the_committed_results_page_holds_the_current_copy_of_the_earlier_preset():
    docs = REPO / "docs"
    page = docs / PRESETS["cpu50"].page
    assert PRESETS["cpu50"].earlier == ("cpu",) and page == docs / "RESULTS.md"
    section = "\n".join(earlier.earlier_section(docs, "cpu", page))
    assert section in page.read_text(), "docs/RESULTS.md is stale: run reproduce.py --preset cpu50 --report-only"


def test_the_report_writes_the_copy_and_a_rewritten_old_report_refreshes_it(tmp_path, presets):
    from clustergan.reproduce.results import write_results

    out, docs = tmp_path / "runs", tmp_path / "docs"
    assert write_results(presets["old"], out, docs) == docs / "results" / "old.md"
    new = write_results(presets["new"], out, docs)
    assert new == docs / "RESULTS.md"
    assert "Preset: the old budget." in new.read_text().split("## Earlier preset: `old`")[1]
    presets["old"] = dataclasses.replace(presets["old"], description="the old budget, described again")
    write_results(presets["old"], out, docs)  # the old report alone: its copy on the new page follows
    copy = new.read_text().split("## Earlier preset: `old`")[1]
    assert "Preset: the old budget, described again." in copy and "Preset: the old budget.\n" not in copy
