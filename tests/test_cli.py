"""End-to-end runs of the small CLI commands (train/sample/eval/cluster are in test_train.py)."""

import json

from clustergan.cli import main
from clustergan.data import read_modes


def test_data_synth_cli_is_deterministic(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["data", "synth", "--out", str(a), "--n-train", "8", "--n-test", "4", "--size", "32"]) == 0
    assert main(["data", "synth", "--out", str(b), "--n-train", "8", "--n-test", "4", "--size", "32"]) == 0
    files = sorted(p.relative_to(a) for p in a.rglob("*.png"))
    assert len(files) == 12
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
    assert len(read_modes(a, "train")) == 8 and json.loads((a / "modes.json").read_text())["num_modes"] == 4


def test_data_synth_refuses_non_empty_folder(tmp_path, capsys):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("mine")
    assert main(["data", "synth", "--out", str(tmp_path / "x")]) == 2
    assert str(tmp_path / "x") in capsys.readouterr().err


def test_metrics_prepare_cli(capsys):
    assert main(["metrics", "prepare"]) == 0
    out = capsys.readouterr().out
    assert "fid" in out.lower() and "lpips" in out.lower()


def test_sweep_adopt_without_a_folder_is_refused_before_ray_starts(capsys):
    """``clustergan sweep --adopt`` reaches the sweep from the command line, and a malformed item is a user
    error with what to give, not a traceback."""
    from pathlib import Path

    sweep = Path(__file__).resolve().parents[1] / "sweeps" / "debug_sweep.yaml"
    assert main(["sweep", "--config", str(sweep), "--adopt", "baseline:pix2pix"]) == 2
    assert capsys.readouterr().err.strip() == (
        "clustergan: error: --adopt 'baseline:pix2pix': give KIND=FOLDER, "
        "e.g. baseline:pix2pix=runs/reproduce/cpu50/facades/pix2pix"
    )
