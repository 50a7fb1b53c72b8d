"""Our FID agrees with pytorch-fid's own command line run offline on the same PNG files.

The converted weights are put where pytorch-fid looks for its download (TORCH_HOME/hub/checkpoints), so
the CLI runs unchanged and without network.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from threadpoolctl import threadpool_limits

from clustergan.metrics import fid
from clustergan.metrics.frechet import converted_weights_path

torch.set_num_threads(1)


def uint8_images(n: int, seed: int, bias: int) -> np.ndarray:
    """[n, 32, 32, 3] uint8 blobs of colour; ``bias`` shifts the two sets apart."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 200, size=(n, 4, 4, 3)) + bias
    return np.clip(coarse.repeat(8, 1).repeat(8, 2), 0, 255).astype(np.uint8)


def test_fid_matches_the_pytorch_fid_cli(tmp_path, monkeypatch):
    monkeypatch.setenv("CLUSTERGAN_CACHE", str(tmp_path / "cache"))
    checkpoints = tmp_path / "torch_home" / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    shutil.copy(converted_weights_path(), checkpoints / "pt_inception-2015-12-05-6726825d.pth")

    sets = {"real": uint8_images(5, seed=0, bias=0), "fake": uint8_images(5, seed=1, bias=40)}
    for name, images in sets.items():
        (tmp_path / name).mkdir()
        for i, image in enumerate(images):
            Image.fromarray(image).save(tmp_path / name / f"{i:02d}.png")  # PNG: lossless

    env = {
        **os.environ,
        "TORCH_HOME": str(tmp_path / "torch_home"),
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "CUDA_VISIBLE_DEVICES": "",
    }
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytorch_fid",
            str(tmp_path / "real"),
            str(tmp_path / "fake"),
            "--device",
            "cpu",
            "--num-workers",
            "0",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    cli_fid = float(re.search(r"FID:\s+(\S+)", run.stdout).group(1))

    # pytorch-fid reads the PNGs as uint8 / 255 in [0, 1]; ours takes the same pixels in [-1, 1].
    to_tensor = lambda a: torch.from_numpy(a).permute(0, 3, 1, 2).double().div(127.5).sub(1).float()  # noqa: E731
    with threadpool_limits(1):  # sqrtm of 2048 x 2048 is faster on one BLAS thread on a busy machine
        ours = fid(to_tensor(sets["real"]), to_tensor(sets["fake"]))
    print(f"ours {ours!r} pytorch-fid CLI {cli_fid!r}")
    assert ours == pytest.approx(cli_fid, abs=1e-3)
    assert ours > 1.0  # the two sets really differ
