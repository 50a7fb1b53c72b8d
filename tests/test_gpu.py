"""The GPU paths: CuPy's Ledoit-Wolf, the cuML backend, training on CUDA with bf16 autocast, and a Ray Train
worker on a GPU with the NCCL backend.

Every test here skips, with the reason, on a machine without a usable CUDA device (CI, the project's
laptops); ``benchmarks/gpu_smoke.sh`` runs them on a GPU machine. What each run saw is recorded in
``docs/gpu_smoke.md``.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from clustergan.clustering import backends as backends_mod

REPO = Path(__file__).resolve().parents[1]

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")


def _debug_config(out: Path, *overrides: str):
    from clustergan.config import load_config
    from clustergan.train.builders import prepare_run

    return prepare_run(load_config(REPO / "sweeps" / "debug.yaml", [f"out={out}", "train.threads=2", *overrides]))


@needs_cuda
def test_cupy_ledoit_wolf_matches_sklearn():
    cupy = pytest.importorskip("cupy", reason="CuPy is not installed (the gpu extra)")
    from sklearn.covariance import LedoitWolf

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 40)) @ rng.normal(size=(40, 40))  # n < 2d: shrinkage is clearly non-zero
    cov, shrinkage = backends_mod.ledoit_wolf_xp(x, cupy)
    ref = LedoitWolf().fit(x)
    assert isinstance(cov, cupy.ndarray)
    assert abs(shrinkage - ref.shrinkage_) < 1e-10 and 0.0 < shrinkage < 1.0
    np.testing.assert_allclose(cupy.asnumpy(cov), ref.covariance_, rtol=1e-9, atol=1e-9)


@needs_cuda
def test_cuml_backend_matches_sklearn():
    if not backends_mod.cuml_importable():
        pytest.skip("cuML is not installed (pip install -e '.[gpu]', or environment.yml)")
    from sklearn.metrics import adjusted_rand_score

    rng = np.random.default_rng(0)
    centres = rng.normal(scale=6.0, size=(4, 16))
    features = np.concatenate([c + rng.normal(size=(50, 16)) for c in centres]).astype(np.float32)
    gpu, cpu = backends_mod.get_backend("cuml"), backends_mod.get_backend("sklearn")
    assert adjusted_rand_score(cpu.kmeans(features, 4, seed=0), gpu.kmeans(features, 4, seed=0)) > 0.99
    cov_gpu, s_gpu = gpu.ledoit_wolf(features[:50])
    cov_cpu, s_cpu = cpu.ledoit_wolf(features[:50])
    assert abs(s_gpu - s_cpu) < 1e-6
    np.testing.assert_allclose(cov_gpu, cov_cpu, rtol=1e-5, atol=1e-6)


@needs_cuda
@pytest.mark.parametrize("amp", ["none", "bf16"])
def test_clustergan_trains_on_cuda_and_its_checkpoint_loads_on_cpu(tmp_path, amp):
    from clustergan.train.checkpoint import latest_checkpoint, load_checkpoint
    from clustergan.train.dist import LocalContext
    from clustergan.train.loop import train_func
    from clustergan.train.sampling import load_generator

    config = _debug_config(
        tmp_path / "run",
        "cluster.k=2",
        "train.epochs=1",
        "train.epochs_decay=0",
        "train.max_steps=3",
        f"train.amp={amp}",
    )
    train_func(config.to_dict(), LocalContext(device="cuda"))
    ckpt = latest_checkpoint(config.run_dir / "checkpoints")
    assert ckpt is not None
    state = load_checkpoint(ckpt)  # weights_only, mapped to the CPU
    assert all(t.device.type == "cpu" for t in state["G"].values())
    assert all(torch.isfinite(t).all() for t in state["G"].values() if t.is_floating_point())
    generator = load_generator(config.run_dir, device="cpu")  # a GPU-trained run samples on a CPU machine
    x = torch.zeros(2, 3, config.data.size, config.data.size)
    y = generator.generate(x, cluster_ids=torch.tensor([0, 1]))
    assert y.shape == x.shape and math.isfinite(float(y.abs().max()))


@needs_cuda
@pytest.mark.xdist_group("ray")  # starts Ray: runs in the Ray modules' worker (tests/conftest.py)
def test_ray_train_worker_on_gpu_uses_nccl_and_reports_a_checkpoint(tmp_path, monkeypatch):
    # a throwaway local cluster, as in tests/test_ray.py: Ray reads the mode when it is first imported, so it
    # is set before the import (the job-submission test, tests/test_ray_jobs.py, covers token auth)
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    pytest.importorskip("ray")
    import ray.cloudpickle

    from clustergan.train.ray_train import make_trainer

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    config = _debug_config(
        tmp_path / "run", "train.epochs=1", "train.epochs_decay=0", "train.max_steps=3", "train.amp=bf16"
    )
    started = ray.is_initialized()
    if not started:
        ray.init(num_cpus=4, num_gpus=1, include_dashboard=False, configure_logging=False)
    try:
        trainer = make_trainer(
            config, workers=1, use_gpu=True, storage_path=str(tmp_path / "ray"), loop=_record_device_loop, name="gpu"
        )
        result = trainer.fit()
    finally:
        if not started:
            ray.shutdown()
    assert result.error is None
    assert result.checkpoint is not None and result.metrics["step"] == 3
    seen = (config.run_dir / "worker_device.txt").read_text().split()
    assert seen[0] == "cuda:0" and seen[1] == "nccl"


def _record_device_loop(loop_config):
    """The real worker loop, after writing down the device Ray Train gave the worker and the process group's
    backend (NCCL is what a GPU run must use)."""
    import ray.train.torch
    import torch.distributed as dist

    from clustergan.train.ray_train import worker_loop

    run_dir = Path(loop_config["config"]["out"])
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "worker_device.txt").write_text(f"{ray.train.torch.get_device()} {dist.get_backend()}\n")
    worker_loop(loop_config)
