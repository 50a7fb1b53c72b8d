"""``train.amp: auto``: bf16 exactly where the device has native bf16, and the choice recorded."""

from __future__ import annotations

import pytest
import torch

from clustergan.train import precision


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ("fpu avx2 avx512f avx512_bf16", "bf16"),
        ("fpu avx2 amx_tile amx_bf16", "bf16"),
        ("fpu avx2 avx512f avx512_vnni", "none"),
    ],
)
def test_auto_follows_the_cpu_flags(tmp_path, monkeypatch, flags, expected):
    info = tmp_path / "cpuinfo"
    info.write_text(f"processor\t: 0\nflags\t\t: {flags}\n\nprocessor\t: 1\nflags\t\t: {flags}\n")
    real = precision.cpu_flags
    monkeypatch.setattr(precision, "cpu_flags", lambda: real(info))
    assert precision.resolve_amp("auto", torch.device("cpu")) == expected
    assert precision.resolve_amp("none", torch.device("cpu")) == "none"
    assert precision.resolve_amp("bf16", torch.device("cpu")) == "bf16"


def test_cpu_flags_without_cpuinfo(tmp_path):
    assert precision.cpu_flags(tmp_path / "absent") == set()


def test_the_resolved_precision_is_in_the_checkpoint(tmp_path):
    from pathlib import Path

    from clustergan.config import load_config
    from clustergan.train import checkpoint as ckpt
    from clustergan.train.builders import prepare_run
    from clustergan.train.loop import train_func

    repo = Path(__file__).resolve().parents[1]
    config = prepare_run(
        load_config(
            repo / "sweeps" / "debug.yaml",
            [
                f"out={tmp_path / 'run'}",
                "cluster.k=0",
                "loss.lambda_kl1=0",
                "loss.lambda_km=0",
                "train.amp=auto",
                "train.epochs=1",
                "train.max_steps=1",
                "data.synth.n_train=8",
                "data.synth.n_test=4",
            ],
        )
    )
    train_func(config.to_dict())
    state = ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path / "run" / "checkpoints"))
    assert state["provenance"]["resolved_amp"] == precision.resolve_amp("auto", torch.device("cpu"))
