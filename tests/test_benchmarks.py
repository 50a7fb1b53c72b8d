"""The benchmark scripts' statistics (the scripts themselves are run by hand: docs/BENCHMARKS.md)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _step_time():
    spec = importlib.util.spec_from_file_location("step_time", REPO / "benchmarks" / "step_time.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_paired_ratio_divides_out_machine_drift():
    """A machine that slows down 3x during the run moves both configurations of a round alike: every per-round
    ratio stays 1.15, and one outlier step does not move the median or the interval."""
    paired_ratio = _step_time().paired_ratio
    drift = [1.0, 1.0, 3.0, 3.0, 3.0, 1.2, 2.5]
    msgan = [d * 1.0 for d in drift]
    clustergan = [d * 1.15 for d in drift]
    clustergan[0] *= 1.5  # one outlier step
    mid, low, high = paired_ratio(clustergan, msgan)
    assert mid == pytest.approx(1.15)
    assert low == pytest.approx(1.15) and high == pytest.approx(1.15)


def test_paired_ratio_interval_brackets_the_median_and_is_reproducible():
    paired_ratio = _step_time().paired_ratio
    num = [1.10, 1.30, 1.05, 1.25, 1.18, 1.12, 1.40, 1.16]
    den = [1.0] * len(num)
    mid, low, high = paired_ratio(num, den)
    assert mid == pytest.approx(1.17)  # median of the 8 ratios: (1.16 + 1.18) / 2
    assert low <= mid <= high and 1.05 <= low and high <= 1.40
    assert paired_ratio(num, den) == (mid, low, high)  # seeded resampling
    with pytest.raises(ValueError):
        paired_ratio(num, den[:-1])  # rounds must pair up


def _curves():
    spec = importlib.util.spec_from_file_location("learning_curves", REPO / "benchmarks" / "learning_curves.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_plateau_rule_compares_fid_over_the_last_fifth_of_the_epochs():
    plateau = _curves().plateau
    falling = [(e, {"fid": 300.0 - 2 * e}) for e in range(5, 65, 5)]  # 60 epochs: 290 -> 180
    assert plateau(falling).startswith("still moving: FID 210.0 -> 180.0 (16.7%) over epochs 48-60")
    flat = [(e, {"fid": max(150.0, 300.0 - 5 * e)}) for e in range(5, 65, 5)]
    assert plateau(flat).startswith("plateau: FID 150.0 -> 150.0 (0.0%)")
    assert plateau(flat[:2]) == "too few evaluations"


def test_the_budget_is_the_first_epoch_from_which_the_rule_keeps_holding():
    budget = _curves().budget
    epochs = range(5, 65, 5)
    pix2pix = [(e, {"fid": 400.0 if e < 25 else 300.0}) for e in epochs]  # within 10% of 300 from epoch 25
    follows = [(e, {"cond_gain": 0.03}) for e in epochs]
    dips = [(e, {"cond_gain": 0.01 if e == 45 else 0.03}) for e in epochs]  # below 0.02 once, at epoch 45
    lines = budget({"pix2pix": pix2pix, "msgan_ms0.1": follows, "clustergan_ms0.1": follows})
    assert lines[0] == "pix2pix plateau level: median FID 300.0 over epochs >= 48"
    assert lines[1].startswith("budget: epoch 25 is the first")
    assert budget({"pix2pix": pix2pix, "msgan_ms0.1": follows, "clustergan_ms0.1": dips})[1].startswith(
        "budget: epoch 50 is the first"
    )
    never = [(e, {"cond_gain": 0.0}) for e in epochs]
    assert budget({"pix2pix": pix2pix, "msgan_ms0.1": never, "clustergan_ms0.1": follows})[1] == (
        "budget: the rule does not hold stably at any evaluated epoch (up to 60)"
    )


def test_the_confirmation_reads_every_finished_seed_at_the_presets_total_epochs(tmp_path):
    import argparse
    import json

    module = _curves()
    epochs = range(5, 65, 5)
    curves = {
        "pix2pix": [(e, {"fid": 300.0, "cond_gain": 0.05}) for e in epochs],
        "msgan_ms0.1": [(e, {"fid": 250.0 + e, "cond_gain": 0.04}) for e in epochs],
        "clustergan_ms0.1": [(e, {"fid": 180.0, "cond_gain": 0.03}) for e in epochs],
    }
    for name, seed, fid, gain in [("pix2pix", 0, 340.0, 0.03), ("clustergan_ms0.1", 0, 170.0, 0.03),
                                  ("clustergan_ms0.1", 2, 190.0, 0.019)]:  # fmt: skip
        run = tmp_path / "facades" / name / f"seed{seed}"
        run.mkdir(parents=True)
        (run / "metrics.json").write_text(json.dumps({"fid": fid, "cond_gain": gain}))
    args = argparse.Namespace(confirm_preset="cpu50", confirm_ledger=tmp_path, seed=0)
    lines = module.confirmation(args, curves)
    assert "25 constant + 25 linearly decaying epochs" in lines[1] and lines[1].endswith("at epoch 50:")
    rows = [line for line in lines if line.startswith("| ") and "---" not in line][1:]
    assert rows == [
        "| pix2pix | 0 | 300.0 | 340.0 | 0.0500 | 0.0300 | FID within 10% of 300.0: no |",  # 13% above
        "| msgan_ms0.1 | - | 300.0 | not trained yet | 0.0400 | - | - |",
        "| clustergan_ms0.1 | 0 | 180.0 | 170.0 | 0.0300 | 0.0300 | cond_gain >= 0.02: yes |",
        "| clustergan_ms0.1 | 2 | 180.0 | 190.0 | 0.0300 | 0.0190 | cond_gain >= 0.02: no |",
    ]


def _msgan_reference():
    spec = importlib.util.spec_from_file_location("msgan_reference", REPO / "benchmarks" / "msgan_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_collapse_rule_needs_both_an_ignored_input_and_one_image_for_every_input():
    collapsed = _msgan_reference().collapsed
    assert collapsed({"cond_gain": 0.004, "output_lpips_between_inputs": 0.049})
    assert not collapsed({"cond_gain": 0.005, "output_lpips_between_inputs": 0.01})  # still follows its input
    assert not collapsed({"cond_gain": 0.0, "output_lpips_between_inputs": 0.05})  # different images per input
    assert not collapsed({"cond_gain": -0.01, "output_lpips_between_inputs": 0.5})


def test_the_reference_is_assembled_only_from_a_git_checkout(tmp_path):
    from clustergan.errors import ClusterganError

    with pytest.raises(ClusterganError, match=r"not a checkout of github\.com/HelenMao/MSGAN nor its \.git folder$"):
        _msgan_reference().assemble(tmp_path, tmp_path / "work")


def test_each_ablation_changes_one_setting_of_ours_at_its_seed_and_nothing_else(tmp_path):
    import argparse

    from clustergan.config import flat_config, load_config

    module = _msgan_reference()
    args = argparse.Namespace(facades=tmp_path, epochs=5, out=tmp_path / "runs")
    changed = {}
    for name in module.ABLATIONS:
        side, seed = module.side_and_seed(name)
        paired = flat_config(
            load_config(REPO / "sweeps" / "msgan.yaml", module.ours_overrides(args, f"ours_s{seed}")).model_dump()
        )
        config = load_config(REPO / "sweeps" / "msgan.yaml", module.ours_overrides(args, name))
        assert config.run_dir == tmp_path / "runs" / name and config.seed == seed
        flat = flat_config(config.model_dump())
        changed[name] = {k: v for k, v in flat.items() if paired.get(k) != v and k != "out"}
    assert changed == {
        "ours-halved_s0": {"model.d_scale_width": "halved"},
        "ours-gfirst_s0": {"train.update_order": "g_first"},
        "ours-halved_s1": {"model.d_scale_width": "halved"},
        "ours-gfirst_s1": {"train.update_order": "g_first"},
    }
    assert module.side_and_seed("ours-halved_s1") == ("ours-halved", 1)


def test_the_figure_is_not_redrawn_without_every_evaluated_runs_grid(tmp_path, capsys):
    import argparse

    module = _msgan_reference()
    args = argparse.Namespace(ledger=tmp_path / "ledger", out=tmp_path / "runs", figure=tmp_path / "figure.jpg")
    args.figure.write_bytes(b"the committed figure")
    (args.ledger / "ours_s0").mkdir(parents=True)
    (args.ledger / "ours_s0" / "metrics.json").write_text("{}")
    assert module.figure(args) is None
    assert args.figure.read_bytes() == b"the committed figure"
    assert f"no sample grid in {args.out} for: ours_s0" in capsys.readouterr().out
