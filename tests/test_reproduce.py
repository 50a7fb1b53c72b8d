"""The reproduction benchmark: the significance rule, the presets' errors, and one tiny end-to-end run
(train, evaluate, floor, ceiling, report, figure, resume) on the procedural dataset."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from clustergan.errors import ClusterganError, ConfigError
from clustergan.reproduce import Method, Preset, Study, get_preset
from clustergan.reproduce.presets import SWEEPS
from clustergan.reproduce.results import compare, mean_std, write_results
from clustergan.reproduce.run import reproduce, run_specs

REPO = Path(__file__).resolve().parents[1]


def test_significance_rule_golden():
    # gap -4, pooled std 1 -> threshold 2: A (lower) is better
    assert compare([1.0, 2.0, 3.0], [5.0, 6.0, 7.0], lower_is_better=True) == {
        "gap": -4.0,
        "threshold": 2.0,
        "verdict": "better",
        "seeds": 3,
    }
    # higher is better: the same numbers make A worse
    assert compare([1.0, 2.0, 3.0], [5.0, 6.0, 7.0], lower_is_better=False)["verdict"] == "worse"
    # gap 1 < 2 x pooled std 1: not significant
    assert compare([1.0, 2.0, 3.0], [2.0, 3.0, 4.0], lower_is_better=True)["verdict"] == "not significant"
    # one seed per row: never called
    assert compare([1.0], [9.0], lower_is_better=True)["verdict"] == "not significant"
    # unequal spreads: stds sqrt(0.5) and 0 pool to sqrt((0.5 + 0) / 2) = 0.5, so the threshold is 1.0
    assert compare([0.5, 1.5], [3.0, 3.0], lower_is_better=True) == {
        "gap": -2.0,
        "threshold": pytest.approx(1.0),
        "verdict": "better",
        "seeds": 2,
    }
    assert mean_std([2.0, 4.0]) == (3.0, pytest.approx(2**0.5))


def test_unknown_preset_and_study_are_explained():
    with pytest.raises(
        ConfigError, match=r"unknown reproduction preset 'laptop'; choose one of \['cpu', 'cpu50', 'cpu80', 'gpu'\]"
    ):
        get_preset("laptop")
    with pytest.raises(ClusterganError, match=r"--study 'faces': preset 'cpu' has studies \['facades', 'synth'\]"):
        run_specs(get_preset("cpu"), ["faces"])


def test_cpu_preset_gives_every_method_the_same_budget_and_seeds():
    preset = get_preset("cpu")
    specs = run_specs(preset, ["facades"])
    methods = [m.key for m in preset.studies[0].methods if not m.optional or m.config.is_file()]
    assert [s.method.key for s in specs[: len(methods)]] == methods  # seed-major order
    assert {s.seed for s in specs} == {0, 1, 2}
    # the two noise models at lambda_MS 1 (their papers') and both again at a matched lambda_MS 0.1, all seeds
    assert methods[:5] == ["pix2pix", "msgan", "clustergan", "msgan_ms0.1", "clustergan_ms0.1"]
    by_key = {m.key: m for m in preset.studies[0].methods}
    assert by_key["msgan_ms0.1"].overrides == by_key["clustergan_ms0.1"].overrides == ("loss.lambda_ms=0.1",)
    # and the matched pair again at pix2pix's lambda_L1 100 (once one-seed probes), all seeds
    assert methods[5:7] == ["msgan_ms0.1_l1_100", "clustergan_ms0.1_l1_100"]
    assert (
        by_key["msgan_ms0.1_l1_100"].overrides
        == by_key["clustergan_ms0.1_l1_100"].overrides
        == ("loss.lambda_ms=0.1", "loss.lambda_l1=100.0")
    )
    assert len(specs) == 3 * len(methods) and not preset.studies[0].probes
    synth = {m.key: m for m in preset.studies[1].methods}
    assert list(synth) == ["pix2pix", "msgan", "clustergan", "msgan_ms0.1", "clustergan_ms0.1"]
    assert synth["msgan_ms0.1"].overrides == synth["msgan"].overrides + ("loss.lambda_ms=0.1",)
    assert synth["clustergan_ms0.1"].overrides == synth["clustergan"].overrides + ("loss.lambda_ms=0.1",)


def test_only_selects_method_keys_and_names_the_known_ones():
    specs = run_specs(get_preset("cpu"), ["facades"], only=["msgan"])
    assert [(s.method.key, s.seed) for s in specs] == [("msgan", 0), ("msgan", 1), ("msgan", 2)]
    with pytest.raises(ClusterganError, match=r"--only gan: not a method of these studies; they have \['clustergan',"):
        run_specs(get_preset("cpu"), ["facades"], only=["gan"])


def test_missing_facades_is_an_error_naming_the_folder(tmp_path):
    study = get_preset("cpu").studies[0]
    preset = Preset(name="t", description="t", studies=(study,))
    with pytest.raises(
        ClusterganError,
        match=r"the facades study needs the facades dataset; .*nowhere/train is not "
        r"a folder. Pass --facades",
    ):
        reproduce(preset, tmp_path / "out", tmp_path / "nowhere")


def test_cli_error_exits_2_without_traceback():
    proc = subprocess.run(
        [sys.executable, "ray_jobs/reproduce.py", "--preset", "laptop"], cwd=REPO, capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "clustergan: error: unknown reproduction preset 'laptop'; choose one of ['cpu', 'cpu50', 'cpu80', 'gpu']"
    )


def _tiny_preset() -> Preset:
    base = SWEEPS / "debug.yaml"
    methods = (
        Method(
            "pix2pix",
            "pix2pix",
            base,
            (
                "model.nz=0",
                "model.dropout=0.5",
                "cluster.k=0",
                "loss.lambda_ms=0.0",
                "loss.lambda_kl1=0.0",
                "loss.lambda_km=0.0",
            ),
        ),
        Method("MSGAN", "msgan", base, ("cluster.k=0", "loss.lambda_kl1=0.0", "loss.lambda_km=0.0")),
        Method("clustergan", "clustergan", base, ("cluster.k=2",)),
    )
    probes = (
        Method("MSGAN, lambda_MS 0.5", "probe_msgan", base, methods[1].overrides + ("loss.lambda_ms=0.5",)),
        Method("clustergan, lambda_MS 0.5", "probe_clustergan", base, ("cluster.k=2", "loss.lambda_ms=0.5")),
    )
    study = Study(
        name="synth",
        title="tiny synth",
        methods=methods,
        seeds=(0, 1),
        protocol="sweep",
        ndb_bins=3,
        probes=probes,
        diagnose=True,
        overrides=(
            "data.size=32",
            "data.synth.size=32",
            "data.synth.n_train=12",
            "data.synth.n_test=3",
            "train.batch_size=4",
            "train.threads=1",
        ),
        figure=True,
    )
    return Preset(name="tiny", description="test", studies=(study,))


def test_smoke_epochs_train_only_trains_whole_epochs_and_evaluates_nothing(tmp_path):
    # the first run on a new GPU machine: `--epochs 1 --train-only` (there the evaluation weights may be absent)
    preset = _tiny_preset()
    out = tmp_path / "runs"
    lines: list[str] = []
    reproduce(
        preset,
        out,
        None,
        seeds=[0],
        only=["msgan"],
        smoke_epochs=2,
        train_only=True,
        log=lambda msg, **_: lines.append(msg),
    )
    run = out / "synth" / "msgan" / "seed0"
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["epoch_0001.pt", "epoch_0002.pt"]
    assert not (run / "metrics.json").exists() and not (out / "synth" / "_floor").exists()
    assert lines[0] == "[1/1] synth/msgan/seed0: train"
    assert re.fullmatch(r"\[1/1\] synth/msgan/seed0: trained in \d+\.\d s \(--train-only: not evaluated\)", lines[1])
    info = json.loads((out / "machine.json").read_text())
    assert info["smoke_test"] is True and info["smoke_epochs"] == 2
    record = json.loads((run / "reproduce.json").read_text())
    assert record["train_done"] and record["train_seconds"] > 0


def test_cli_epochs_must_be_positive():
    proc = subprocess.run(
        [sys.executable, "ray_jobs/reproduce.py", "--preset", "gpu", "--epochs", "0"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == "clustergan: error: --epochs 0: give a whole number of epochs >= 1"


def test_end_to_end_tiny_reproduction_then_resume(tmp_path):
    preset = _tiny_preset()
    out, docs = tmp_path / "runs", tmp_path / "docs"
    lines: list[str] = []
    reproduce(preset, out, None, smoke=True, log=lambda msg, **_: lines.append(msg))
    assert lines[0] == "[1/8] synth/pix2pix/seed0: train"
    assert any(line.startswith("[7/8] synth/probe_msgan/seed0: train") for line in lines)  # probes: first seed only
    assert any(line.startswith("[8/8] synth/probe_clustergan/seed0: train") for line in lines)
    for key in ("pix2pix", "msgan", "clustergan"):
        for seed in (0, 1):
            m = json.loads((out / "synth" / key / f"seed{seed}" / "metrics.json").read_text())
            assert m["protocol"]["name"] == "sweep" and m["protocol"]["ndb_bins"] == 3
            assert 0.0 <= m["mode_coverage"] <= 1.0 and m["lpips"] >= 0.0
    floor = json.loads((out / "synth" / "_floor" / "metrics.json").read_text())
    assert floor["details"]["ndb"]["n_generated"] == 3 and "fid" not in floor  # the sweep protocol has no FID
    ceiling = json.loads((out / "synth" / "_ceiling" / "metrics.json").read_text())
    assert ceiling["provenance"]["epoch"] == 0

    diag = json.loads((out / "synth" / "clustergan" / "seed0" / "diagnose.json").read_text())
    assert diag["k"] == 2 and sum(diag["generated_cluster_histogram"]) == 2 * 3 and 0 <= diag["cluster_hit_rate"] <= 1
    assert (out / "synth" / "clustergan" / "seed1" / "metrics_target.json").is_file()
    assert json.loads((out / "synth" / "probe_clustergan" / "seed0" / "diagnose.json").read_text())["k"] == 2
    for key in ("pix2pix", "msgan", "clustergan", "probe_msgan"):  # every method: does the output use the input?
        cond = json.loads((out / "synth" / key / "seed0" / "conditioning.json").read_text())
        assert cond["inputs"] == 3 and cond["input_effect_lpips"] >= 0 and cond["targets_input_effect_lpips"] > 0

    path = write_results(preset, out, docs)
    text = path.read_text()
    assert "| **MSGAN, lambda_MS 0.5** |" in text and "| MSGAN (seed 0) |" in text
    assert "### Diagnostics: clustergan" in text and "| metric | frequency | target's own cluster |" in text
    assert "### Diagnostics: clustergan, lambda_MS 0.5" in text  # a clustergan probe is diagnosed too
    assert "### Does the output depend on the input?" in text and "| real test targets | - |" in text
    assert "| MSGAN, lambda_MS 0.5 | 1 |" in text and "| clustergan | 2 |" in text
    assert "**SMOKE TEST: 2 training steps per run." in text
    assert "| clustergan vs pix2pix |" in text and "| clustergan vs MSGAN |" in text
    assert "| floor: real test targets | - |" in text and "| ceiling: untrained generator | - |" in text
    assert (docs / "figures" / "tiny_synth_figure2.png").stat().st_size > 1000
    assert "![Figure 2](figures/tiny_synth_figure2.png)" in text
    assert re.search(r"; no FID; protocol hash `[0-9a-f]{12}`\.\n", text)  # one protocol for every row
    # a preset with its own page leaves RESULTS.md alone, and its figure link works from the page's folder
    own = write_results(dataclasses.replace(preset, page="results/tiny.md"), out, docs)
    assert own == docs / "results" / "tiny.md" and path.read_text() == text
    assert "![Figure 2](../figures/tiny_synth_figure2.png)" in own.read_text()
    summary = json.loads((docs / "results" / "tiny.json").read_text())
    assert set(summary["studies"]["synth"]["rows"]) == {"pix2pix", "msgan", "clustergan"}  # method keys
    assert summary["studies"]["synth"]["rows"]["msgan"]["label"] == "MSGAN"

    # a rerun skips finished training and evaluation
    ckpt = next((out / "synth" / "msgan" / "seed0" / "checkpoints").iterdir())
    before = (ckpt.stat().st_mtime_ns, (out / "synth" / "msgan" / "seed0" / "metrics.json").stat().st_mtime_ns)
    reproduce(preset, out, None, smoke=True, log=lambda *a, **k: None)
    after = (ckpt.stat().st_mtime_ns, (out / "synth" / "msgan" / "seed0" / "metrics.json").stat().st_mtime_ns)
    assert before == after

    # the committed ledger: results only (no checkpoints); a fresh machine restores them and trains nothing
    from clustergan.reproduce.archive import archive, restore

    ledger = tmp_path / "ledger"
    assert archive(out, ledger) == len(list(ledger.rglob("*.json")))
    assert not list(ledger.rglob("*.pt")) and (ledger / "synth" / "_ceiling" / "metrics.json").is_file()
    out2, docs2 = tmp_path / "fresh_runs", tmp_path / "fresh_docs"
    assert restore(ledger, out2) == 8  # 3 methods x 2 seeds + the 2 probes
    assert restore(ledger, out2) == 0  # local results win
    lines.clear()
    reproduce(preset, out2, None, smoke=True, log=lambda msg, **_: lines.append(msg))
    assert not list(out2.rglob("checkpoints"))  # nothing was trained again
    assert not any("skipped, no checkpoint" in line for line in lines)  # its diagnostics came with it
    (docs2 / "figures").mkdir(parents=True)
    (docs2 / "figures" / "tiny_synth_figure2.png").write_bytes(b"kept")  # the figure the first machine drew
    text2 = write_results(preset, out2, docs2).read_text()
    assert text2.split("## Machine")[0] == text.split("## Machine")[0]  # the same table, from the ledger
    assert (docs2 / "figures" / "tiny_synth_figure2.png").read_bytes() == b"kept"
    # a report from results alone, without the machine.json a reproduction writes when it starts: said so
    (out2 / "machine.json").unlink()
    machine = write_results(preset, out2, docs2).read_text().split("## Machine")[1]
    assert "Not recorded: this output folder has no machine.json" in machine and "?" not in machine


def test_seeds_select_training_seeds_and_probes_follow_the_first():
    specs = run_specs(_tiny_preset(), seeds=[1])
    assert {s.seed for s in specs} == {1} and not any(s.method.key.startswith("probe") for s in specs)
    assert [s.method.key for s in run_specs(_tiny_preset(), seeds=[0])][-2:] == ["probe_msgan", "probe_clustergan"]
    assert {(s.method.key, s.seed) for s in run_specs(get_preset("cpu"), ["facades"], seeds=[1, 2])} >= {
        ("clustergan_ms0.1", 1),
        ("clustergan_ms0.1", 2),
    }
    with pytest.raises(ClusterganError, match=r"--seeds 7: the facades study trains seeds \[0, 1, 2\]"):
        run_specs(get_preset("cpu"), ["facades"], seeds=[7])


def test_one_seed_comparison_cells_show_no_threshold():
    from clustergan.reproduce.rule import verdict_cell as _verdict_cell

    one = compare([1.0], [9.0], lower_is_better=True)
    assert _verdict_cell("not significant", one) == "not significant: one seed, no verdict (gap -8)"
    two = compare([1.0, 2.0], [9.0, 10.0], lower_is_better=True)
    assert _verdict_cell("**A better**", two) == "**A better** (gap -8, 2σ 1.41)"


def test_direction_lines_test_the_matched_lambda_pair_against_the_papers_clustergan_vs_msgan():
    from clustergan.reproduce.results import direction_lines

    labels = {
        "clustergan": "clustergan",
        "msgan": "MSGAN",
        "clustergan_ms0.1": "clustergan, lambda_MS 0.1",
        "msgan_ms0.1": "MSGAN, lambda_MS 0.1",
    }
    summary = {
        "rows": {key: {"label": label} for key, label in labels.items()},
        "comparisons": [
            {"a": "clustergan", "b": "msgan", "metric": "lpips", "verdict": "worse"},
            {"a": "clustergan_ms0.1", "b": "msgan_ms0.1", "metric": "lpips", "verdict": "better"},
            {"a": "clustergan_ms0.1", "b": "msgan_ms0.1", "metric": "ndb", "verdict": "not significant"},
        ],
    }
    lines = direction_lines(summary)
    assert "| clustergan vs MSGAN | LPIPS | better (0.4444 vs 0.3752) | worse | **no** |" in lines
    assert (
        "| clustergan, lambda_MS 0.1 vs MSGAN, lambda_MS 0.1 | LPIPS | better (0.4444 vs 0.3752) | better | yes |"
        in lines
    )
    assert (
        "| clustergan, lambda_MS 0.1 vs MSGAN, lambda_MS 0.1 | NDB | better (9 vs 11) | not significant | not shown |"
        in lines
    )
    assert direction_lines({"rows": {}, "comparisons": []}) == []


def test_conditioning_of_a_perfect_and_of_an_input_blind_generator(tmp_path, monkeypatch):
    """Golden cases of the input-effect diagnostic: a generator that returns each input's own target has the
    targets' input effect, distance 0 to its own target and a gain equal to the targets' input effect; one
    that returns the same image for every input has input effect 0 and gain 0."""
    import numpy as np
    from PIL import Image

    import clustergan.train.sampling as sampling
    from clustergan.config import load_config
    from clustergan.data import load_targets
    from clustergan.reproduce.diagnose import conditioning_run

    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        (tmp_path / "data" / split).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(rng.integers(0, 255, (32, 64, 3), dtype=np.uint8)).save(
                tmp_path / "data" / split / f"{i}.png"
            )
    cfg = load_config(
        REPO / "sweeps" / "debug.yaml",
        [
            f"data.root={tmp_path / 'data'}",
            "cluster.k=0",
            "model.nz=0",
            "loss.lambda_ms=0.0",
            "loss.lambda_kl1=0.0",
            "loss.lambda_km=0.0",
        ],
    )
    targets, _ = load_targets(cfg.data.root, "test", cfg.data.direction, cfg.data.size)

    class Fake:
        config, k, nz = cfg, 0, 0

        def __init__(self, same: bool):
            self.same = same

        def draw_clusters(self, n, generator):
            return None

        def generate(self, sources, ids, generator, z=None):
            return targets[:1].expand_as(targets).clone() if self.same else targets.clone()

    monkeypatch.setattr(sampling, "load_generator", lambda run: Fake(same=False))
    perfect = conditioning_run(tmp_path / "run", passes=2)
    assert perfect["own_target_lpips"] == 0.0 and perfect["own_target_l1"] == 0.0
    assert perfect["input_effect_lpips"] == pytest.approx(perfect["targets_input_effect_lpips"], abs=1e-6)
    assert perfect["targets_input_effect_lpips"] > 0.05
    assert perfect["conditional_gain_lpips"] == pytest.approx(perfect["targets_input_effect_lpips"], abs=1e-6)
    monkeypatch.setattr(sampling, "load_generator", lambda run: Fake(same=True))
    blind = conditioning_run(tmp_path / "run", passes=2)
    assert blind["input_effect_lpips"] == 0.0 and blind["conditional_gain_lpips"] == pytest.approx(0.0, abs=1e-6)
    assert blind["own_target_lpips"] > 0.01


def test_the_report_shows_matched_comparisons_and_leaves_mismatched_ones_to_the_json():
    from clustergan.reproduce.results import shown_pairs

    labels = [
        "pix2pix",
        "MSGAN",
        "clustergan",
        "MSGAN, lambda_MS 0.1",
        "clustergan, lambda_MS 0.1",
        "clustergan (sweep best)",
    ]
    pairs = [(a, b) for i, a in enumerate(labels) for b in labels[i + 1 :]]
    shown = shown_pairs(pairs)
    assert shown[("MSGAN", "clustergan")] == 0 and shown[("MSGAN, lambda_MS 0.1", "clustergan, lambda_MS 0.1")] == 0
    # the sweep's best has no MSGAN at its settings: it meets every MSGAN row
    assert (
        shown[("MSGAN", "clustergan (sweep best)")] == shown[("MSGAN, lambda_MS 0.1", "clustergan (sweep best)")] == 0
    )
    assert all(shown[("pix2pix", x)] == 1 for x in labels[1:])
    assert shown[("MSGAN", "MSGAN, lambda_MS 0.1")] == 2 and shown[("clustergan", "clustergan, lambda_MS 0.1")] == 2
    # method and settings both differ: not a line of the table
    assert ("clustergan", "MSGAN, lambda_MS 0.1") not in shown and ("MSGAN", "clustergan, lambda_MS 0.1") not in shown
    assert len(shown) == len(pairs) - 2


def test_adopt_takes_a_finished_identical_run_and_refuses_another_training(tmp_path):
    # the sweep's best configuration was trained once by its trial: that run becomes the row's seed 0
    from clustergan.reproduce.run import adopt_run

    preset = _tiny_preset()
    elsewhere, out = tmp_path / "sweep_trial", tmp_path / "runs"
    reproduce(
        preset,
        elsewhere,
        None,
        smoke=True,
        only=["clustergan", "msgan"],
        seeds=[0],
        train_only=True,
        log=lambda *a, **k: None,
    )
    source = elsewhere / "synth" / "clustergan" / "seed0"
    spec = next(s for s in run_specs(preset, only=["clustergan"], seeds=[0]))
    other = next(s for s in run_specs(preset, only=["msgan"], seeds=[0]))

    with pytest.raises(ClusterganError) as err:  # an MSGAN run is not clustergan's training
        adopt_run(spec, elsewhere / "synth" / "msgan" / "seed0", out, None, smoke=True)
    assert "not the training synth/clustergan/seed0 would run (cluster.k: 0 there, 2 here; " in str(err.value)
    assert not (out / "synth" / "clustergan" / "seed0" / "checkpoints").exists()
    with pytest.raises(ClusterganError, match=r"no config.json in it; give a run folder"):
        adopt_run(other, tmp_path / "nothing", out, None, smoke=True)

    run = adopt_run(spec, source, out, None, smoke=True)
    assert run == out / "synth" / "clustergan" / "seed0"
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert names == sorted(p.name for p in (source / "checkpoints").iterdir()) and names
    assert (source / "checkpoints" / names[-1]).is_file()  # copied, the source left as it was
    record = json.loads((run / "reproduce.json").read_text())
    assert record["train_done"] and record["adopted_from"] == str(source.resolve()) and record["train_seconds"] >= 0
    assert json.loads((run / "config.json").read_text()) == json.loads((source / "config.json").read_text())
    with pytest.raises(ClusterganError, match=r"is already trained .*remove that folder first"):
        adopt_run(spec, source, out, None, smoke=True)

    ckpt = run / "checkpoints" / names[-1]
    before = ckpt.stat().st_mtime_ns
    reproduce(preset, out, None, smoke=True, only=["clustergan"], seeds=[0], log=lambda *a, **k: None)
    assert ckpt.stat().st_mtime_ns == before  # not trained again
    assert json.loads((run / "metrics.json").read_text())["protocol"]["name"] == "sweep"  # evaluated here
    # a run of some methods still gives the study its floor and ceiling rows (they depend on no training)
    assert (out / "synth" / "_floor" / "metrics.json").is_file()
    assert json.loads((out / "synth" / "_ceiling" / "metrics.json").read_text())["provenance"]["epoch"] == 0
    text = write_results(preset, out, tmp_path / "docs").read_text()
    assert (
        f"trained once by the sweep trial that found the configuration; evaluated here like every run): "
        f"synth/clustergan/seed0 (`{source.resolve()}`)." in text
    )


def test_cli_adopt_needs_key_equals_folder(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "ray_jobs/reproduce.py",
            "--preset",
            "cpu",
            "--adopt",
            "clustergan_best",
            "--out",
            str(tmp_path),
            "--no-report",
            "--fresh",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "clustergan: error: --adopt 'clustergan_best': write it as KEY=RUN_DIR, e.g. "
        "clustergan_best=runs/sweeps/facades_search/trials/<id>/seed0"
    )


def test_the_cost_estimate_prices_the_runs_left_at_each_methods_measured_pace(tmp_path):
    from clustergan.jsonio import write_json
    from clustergan.reproduce.cost import estimate

    preset = _tiny_preset()
    specs = run_specs(preset, only=["pix2pix", "msgan"], seeds=[0, 1])
    protocol = specs[0].study.protocol
    for key, seconds in (("pix2pix", 600.0), ("msgan", 1200.0)):  # seed 0 done, measured on "CPU X"
        run = tmp_path / "synth" / key / "seed0"
        record = {"train_done": True, "train_seconds": seconds, "eval_seconds": 120.0, "machine": {"cpu": "CPU X"}}
        write_json(run / "reproduce.json", record)
        write_json(run / "metrics.json", {"protocol": {"name": protocol}})
    write_json(tmp_path / "synth" / "msgan" / "seed1" / "reproduce.json", {"train_done": True})  # evaluate only
    text = estimate(specs, tmp_path)
    # left: pix2pix seed 1 (600 + 120 s) and msgan seed 1's evaluation (120 s): 840 s
    assert text.startswith(
        "estimated cost: 1 of 4 runs to train and evaluate, 1 to evaluate only; ~0.2 h (14 min) for the 2 priced "
    )
    assert "(measured on CPU X; another machine scales it)" in text
    empty = estimate(run_specs(preset, only=["clustergan"], seeds=[0]), tmp_path)
    assert "not counted, no finished run to price them by: synth/clustergan" in empty


def test_the_floor_row_stands_in_both_fid_columns_at_its_own_n(tmp_path):
    """The floor (real test targets, one per input) is comparable with a row's FID only at its own N: the
    `FID at N = inputs` column, the first sample per input."""
    from clustergan.reproduce.results import study_section

    study = Study(name="s", title="t", methods=(), overrides=(), seeds=(0,))
    floor = {"fid": 70.5, "kid": 0.01, "ndb": 1, "jsd": 0.02, "lpips_between_inputs": 0.3}
    (tmp_path / "_floor").mkdir()
    (tmp_path / "_floor" / "metrics.json").write_text(json.dumps({**floor, "details": {"fid": {"n_fake": 106}}}))
    metrics = {"fid": 150.0, "fid_n_inputs": 190.0, "kid": 0.1, "ndb": 9, "jsd": 0.05, "lpips": 0.2, "cond_gain": 0.03}
    lines, summary = study_section(study, tmp_path, {"a": {"label": "A", "seeds": {0: {"metrics": metrics}}}})
    header = [c.strip() for c in lines[2].strip("|").split("|")]
    a, floor = ({h: c.strip() for h, c in zip(header, lines[i].strip("|").split("|"), strict=True)} for i in (4, 5))
    assert header[2:4] == ["FID (lower better)", "FID at N = inputs (lower better)"]
    assert floor["row"] == "floor: real test targets"
    assert floor["FID (lower better)"] == floor["FID at N = inputs (lower better)"] == "70.50 (N=106)"
    assert a["FID at N = inputs (lower better)"] == "190.00"
    # cond_gain: shown beside, the floor has none, and it is never compared or summarised as a quality metric
    assert header[-1] == "cond_gain (beside: does the output follow its input?)"
    assert (a[header[-1]], floor[header[-1]]) == ("0.0300", "n/a")
    assert "cond_gain" not in summary["rows"]["a"]


def test_a_method_new_to_the_preset_is_priced_from_another_presets_runs_scaled_by_epochs(tmp_path):
    from clustergan.jsonio import write_json
    from clustergan.reproduce.cost import estimate

    preset = _tiny_preset()
    study = dataclasses.replace(
        preset.studies[0], overrides=(*preset.studies[0].overrides, "train.epochs=4", "train.epochs_decay=4")
    )
    specs = run_specs(dataclasses.replace(preset, studies=(study,)), only=["clustergan"], seeds=[0, 1])
    run = tmp_path / "old" / "synth" / "clustergan" / "seed0"  # 1 + 1 epochs: 600 s training, 60 s evaluation
    write_json(run / "reproduce.json", {"train_done": True, "train_seconds": 600.0, "eval_seconds": 60.0})
    write_json(run / "metrics.json", {"protocol": {"name": "sweep"}})
    config = {"data": {"size": 32}, "train": {"batch_size": 4, "epochs": 1, "epochs_decay": 1}}
    write_json(run / "config.json", {"config": config})
    text = estimate(specs, tmp_path / "new", {"old": tmp_path / "old"})
    # two runs of 4 + 4 epochs: 2 x (600 x 4 + 60) s = 82 min
    assert text == (
        "estimated cost: 2 of 2 runs to train and evaluate, 0 to evaluate only; ~1.4 h (82 min) for the 2 "
        "priced at the median wall time of each method's finished runs (measured on unknown CPU; another "
        "machine scales it); priced from another preset's runs, training time scaled by epochs: "
        "synth/clustergan from preset old x4 epochs"
    )
    config["train"]["batch_size"] = 8  # another batch: another cost per epoch, not a price
    write_json(run / "config.json", {"config": config})
    assert estimate(specs, tmp_path / "new", {"old": tmp_path / "old"}).endswith(
        "none can be priced yet; not counted, no finished run to price them by: synth/clustergan"
    )


def test_a_run_cut_off_and_resumed_counts_the_cut_stretch_up_to_its_last_checkpoint(tmp_path, monkeypatch):
    """reproduce.json's train_seconds is every stretch of a run: one killed mid-run counts to the checkpoint
    the next stretch resumes from (what came after it is trained again, and counted then)."""
    import os
    import time

    import clustergan.train.launch as launch
    from clustergan.reproduce.run import train_one

    preset = _tiny_preset()
    spec = next(iter(run_specs(preset, only=["pix2pix"], seeds=[0])))
    run_dir = tmp_path / "runs" / "synth" / "pix2pix" / "seed0"

    def killed(config, **_):
        raise KeyboardInterrupt

    monkeypatch.setattr(launch, "run_training", killed)
    with pytest.raises(KeyboardInterrupt):
        train_one(spec, preset, tmp_path / "runs", None, smoke=True)
    started = json.loads((run_dir / "reproduce.json").read_text())["stretch_started"]
    assert abs(started - time.time()) < 60
    (run_dir / "checkpoints").mkdir(parents=True)
    ckpt = run_dir / "checkpoints" / "epoch_0001.pt"
    ckpt.write_bytes(b"x")
    os.utime(ckpt, (started + 100.0, started + 100.0))  # its last checkpoint came 100 s into the stretch

    monkeypatch.setattr(launch, "run_training", lambda config, **_: config)
    train_one(spec, preset, tmp_path / "runs", None, smoke=True)
    record = json.loads((run_dir / "reproduce.json").read_text())
    assert record["train_done"] and "stretch_started" not in record
    assert 99.0 <= record["train_seconds"] < 110.0  # file times may round
    assert record["resumed_from"] == str(ckpt)

    # cut again before any new checkpoint: that stretch adds nothing, and the one before is not counted twice
    del record["train_done"]
    record["stretch_started"] = started + 500.0
    (run_dir / "reproduce.json").write_text(json.dumps(record))
    train_one(spec, preset, tmp_path / "runs", None, smoke=True)
    assert 99.0 <= json.loads((run_dir / "reproduce.json").read_text())["train_seconds"] < 120.0
