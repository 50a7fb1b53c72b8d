"""``report.html`` in a real headless browser, and the sweep's HParams table read back with TensorBoard's reader.

The experiment is built from records and images (no training): a baseline, a searched trial of 3 seeds, a
failed trial, a running one. The browser is Debian's ``chromium`` driven by Selenium through the system's
``chromedriver`` (the tools' own browser downloads need the internet); the test skips, saying so, where they
are not installed. The page's screenshot is kept in ``$TEST_ARTIFACTS`` (default ``test-artifacts/``).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from PIL import Image

from clustergan.tune.records import SeedResult, TrialRecord, record_path, write_record
from clustergan.tune.report import write_report

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", REPO / "test-artifacts"))
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")


def _png(path: Path, colour: tuple[int, int, int], size=(96, 32)) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)
    return str(path)


def _trial(exp: Path, tid: str, kind: str, status: str, seeds: dict[int, dict] | None = None, **extra) -> None:
    per_seed = {}
    for seed, m in (seeds or {}).items():
        run = exp / "trials" / tid / f"seed{seed}"
        grid = _png(run / "samples" / "epoch_0002.png", (40 * seed, 120, 200))
        per_seed[str(seed)] = SeedResult(**m, sample_grid=grid, run_dir=str(run))
    means = {k: sum(s[k] for s in seeds.values()) / len(seeds) for k in next(iter(seeds.values()))} if seeds else None
    record = TrialRecord(
        trial_id=tid,
        kind=kind,
        status=status,
        params={"cluster.k": 2, "loss.lambda_ms": 0.1} if kind == "search" else {},
        seeds=sorted(seeds or [0]),
        started=0.0,
        per_seed=per_seed,
        train_config={"name": tid, "cluster": {"k": 2 if kind == "search" else 0}},
        metrics=means if status == "finished" else None,
        sample_grid=per_seed[max(per_seed)].sample_grid if per_seed else None,
        **extra,
    )
    write_record(record_path(exp, tid), record)


@pytest.fixture
def experiment(tmp_path) -> Path:
    exp = tmp_path / "exp"
    (exp / "clusters" / "k2").mkdir(parents=True)
    _png(exp / "clusters" / "k2" / "clusters.png", (200, 50, 50), (64, 64))
    (exp / "sweep_state.json").write_text(json.dumps({"status": "partial: 4 of 6 trials", "name": "page"}))
    _trial(exp, "base0", "baseline:pix2pix", "finished", {0: {"ndb": 9, "jsd": 0.4, "lpips": 0.01, "fid": 300.0}})
    _trial(
        exp,
        "s1",
        "search",
        "finished",
        {s: {"ndb": 3 + s, "jsd": 0.1 + 0.01 * s, "lpips": 0.2, "mode_coverage": 0.9} for s in (0, 1, 2)},
    )
    _trial(exp, "s2", "search", "failed", error="TrainingDiverged: loss G_total became NaN/Inf")
    _trial(exp, "s3", "search", "running")
    return exp


def test_report_page_is_one_offline_file_with_the_ranking_and_every_image(experiment):
    write_report(experiment)
    page = (experiment / "report.html").read_text()
    assert "<script" not in page and "http://" not in page.replace("http://127.0.0.1", "")  # no CDN, no server
    assert 'src="trials/s1/seed2/samples/epoch_0002.png"' in page  # relative: the folder can be moved whole
    assert 'src="clusters/k2/clusters.png"' in page and 'src="pareto.png"' in page
    assert "sample grid: not there yet" in page  # the failed and the running trial have no grid
    assert "3&ndash;5, sd 1, 3 seeds" in page  # s1's NDB over its seeds
    assert "error: TrainingDiverged: loss G_total became NaN/Inf" in page
    assert "partial: 4 of 6 trials" in page
    assert f"tensorboard --logdir {experiment}" in page


def test_hparams_table_is_read_back_by_tensorboard(experiment):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    write_report(experiment)
    folder = experiment / "hparams"
    assert sorted(p.name for p in folder.iterdir() if p.is_dir()) == [
        "baseline-pix2pix",
        "search-s1",
        "search-s2",
        "search-s3",
    ]

    def plugin_data(run: Path) -> dict[str, plugin_data_pb2.HParamsPluginData]:
        acc = EventAccumulator(str(run))
        acc.Reload()
        contents = acc.PluginTagToContent("hparams")
        return {tag: plugin_data_pb2.HParamsPluginData.FromString(c) for tag, c in contents.items()}

    experiment_info = plugin_data(folder)["_hparams_/experiment"].experiment
    assert [h.name for h in experiment_info.hparam_infos] == [
        "kind",
        "status",
        "rank",
        "pareto_rank",
        "seeds",
        "cluster.k",
        "loss.lambda_ms",
    ]
    assert [m.name.tag for m in experiment_info.metric_infos] == ["ndb", "jsd", "lpips", "fid", "mode_coverage"]

    start = plugin_data(folder / "search-s1")["_hparams_/session_start_info"].session_start_info
    assert start.hparams["kind"].string_value == "search" and start.hparams["rank"].number_value == 1
    assert start.hparams["seeds"].number_value == 3 and start.hparams["loss.lambda_ms"].number_value == 0.1
    acc = EventAccumulator(str(folder / "search-s1"))
    acc.Reload()
    assert acc.Scalars("ndb")[0].value == 4.0 and acc.Scalars("mode_coverage")[0].value == pytest.approx(0.9)
    assert "fid" not in acc.Tags()["scalars"]  # only what was computed
    base = plugin_data(folder / "baseline-pix2pix")
    assert base["_hparams_/session_start_info"].session_start_info.hparams["kind"].string_value == "baseline:pix2pix"
    assert base["_hparams_/session_end_info"].session_end_info.status == 1  # STATUS_SUCCESS
    failed = plugin_data(folder / "search-s2")["_hparams_/session_end_info"].session_end_info
    assert failed.status == 2  # STATUS_FAILURE
    # the sweep ended (partial) before s3's final report: stopped early, neither a success nor a failure
    assert plugin_data(folder / "search-s3")["_hparams_/session_end_info"].session_end_info.status == 0

    (folder / "search-s3" / "stale").write_text("x")
    write_report(experiment)  # rewritten whole
    assert not (folder / "search-s3" / "stale").exists()


@pytest.mark.skipif(
    CHROMIUM is None or DRIVER is None,
    reason="headless Chromium not installed: apt-get install chromium chromium-driver (.ci/run does)",
)
def test_report_page_renders_in_headless_chromium(experiment):
    pytest.importorskip("selenium", reason="selenium not installed (pip install -e '.[test]')")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    write_report(experiment)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    flags = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,2000")
    for flag in flags:
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)
    try:
        browser.get((experiment / "report.html").as_uri())
        assert browser.title == "clustergan sweep page"
        rows = browser.find_elements(By.CSS_SELECTOR, "#ranking tbody tr")
        assert [r.get_attribute("data-trial") for r in rows] == ["s1", "base0", "s3", "s2"]
        assert rows[0].find_elements(By.TAG_NAME, "td")[0].text == "1"
        images = browser.find_elements(By.TAG_NAME, "img")
        # the Pareto plot, the two finished trials' grids, and the cluster overview of each k=2 trial
        assert len(images) == 1 + 2 + 3
        broken = [
            i.get_attribute("src")
            for i in images
            if not browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", i)
        ]
        assert broken == []
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        assert browser.save_screenshot(str(ARTIFACTS / "report_page.png"))
    finally:
        browser.quit()


def test_progress_line_counts_trials_and_names_the_best_so_far(experiment):
    from clustergan.tune.progress import progress_line

    line = progress_line(experiment, "page", planned=6, done=3, failed=1, seconds=72.4)
    assert line == (
        "[sweep page] 3/6 trials done (1 failed) in 1 min 12 s; best so far: search s1 (NDB 4, JSD 0.11, LPIPS 0.2)"
    )
