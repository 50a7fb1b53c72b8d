"""Ray Train and Ray Tune: distributed equivalence, sweeps, ranking report, resume.

One Ray session (``ray.init(num_cpus=4)``: 2 workers x 1 CPU + a trial driver never schedule on 2 CPUs
otherwise) is shared by every test in this file; the sweep experiment is built once and reused.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]

ray = pytest.importorskip("ray")


@pytest.fixture(scope="session")
def ray_session(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    saved = {k: os.environ.get(k) for k in ("CLUSTERGAN_CACHE", "RAY_AUTH_MODE")}
    # set before ray.init so that the worker processes inherit them
    os.environ["CLUSTERGAN_CACHE"] = str(cache)
    os.environ["RAY_AUTH_MODE"] = "disabled"
    if not ray.is_initialized():
        ray.init(num_cpus=4, include_dashboard=True, configure_logging=False)
    yield cache
    ray.shutdown()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


# ------------------------------------------------------------------------------------------ Ray Train


def _no_augmentation_loop(loop_config):
    """The real worker loop with the dataset's random crop / flip turned off (they draw from each rank's own
    generator, so they cannot match a single process)."""
    from clustergan.data import paired
    from clustergan.tune.train_ray import worker_loop

    _disable_augmentation(paired)
    worker_loop(loop_config)


def _disable_augmentation(paired_module):
    original = paired_module.PairedImageDataset.__getitem__

    def getitem(self, index):
        self.train = False
        return original(self, index)

    paired_module.PairedImageDataset.__getitem__ = getitem
    return original


def _pix2pix_config(out: Path, batch_size: int):
    from clustergan.config import load_config
    from clustergan.train.builders import prepare_run

    overrides = ["cluster.k=0", "model.nz=0", "model.dropout=0.0", "loss.lambda_ms=0.0", "loss.lambda_kl1=0.0",
                 "loss.lambda_km=0.0", "model.norm=instance", "train.epochs=1", "train.max_steps=3",
                 f"train.batch_size={batch_size}", "train.threads=1", f"out={out}"]
    return prepare_run(load_config(REPO / "sweeps" / "debug.yaml", overrides))


def _biases_before_instance_norm(model: torch.nn.Module) -> set[str]:
    names = set()
    for prefix, module in model.named_modules():
        if isinstance(module, torch.nn.Sequential):
            children = list(module.named_children())
            for (name, layer), (_, after) in zip(children, children[1:]):
                norm = isinstance(after, torch.nn.InstanceNorm2d) and not after.affine
                if norm and getattr(layer, "bias", None) is not None:
                    names.add(f"{prefix}.{name}.bias" if prefix else f"{name}.bias")
    return names


def test_two_workers_match_one_worker_with_double_batch(ray_session, tmp_path, monkeypatch):
    import ray.cloudpickle

    from clustergan.data import paired
    from clustergan.train.checkpoint import load_checkpoint
    from clustergan.train.dist import LocalContext
    from clustergan.train.loop import train_func
    from clustergan.tune.train_ray import make_trainer

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    b = 4
    two = _pix2pix_config(tmp_path / "two", b)
    trainer = make_trainer(two, workers=2, storage_path=str(tmp_path / "ray"), loop=_no_augmentation_loop,
                           name="equivalence")
    result = trainer.fit()
    assert result.error is None
    assert result.checkpoint is not None and result.metrics["step"] == 3

    one = _pix2pix_config(tmp_path / "one", 2 * b)
    original = _disable_augmentation(paired)
    try:
        train_func(one.to_dict(), LocalContext(device="cpu"))
    finally:
        paired.PairedImageDataset.__getitem__ = original

    from clustergan.train.builders import build_generator

    g_two = load_checkpoint(tmp_path / "two" / "checkpoints" / "epoch_0001.pt")["G"]
    g_one = load_checkpoint(tmp_path / "one" / "checkpoints" / "epoch_0001.pt")["G"]
    init = _pix2pix_config(tmp_path / "unused", b)
    torch.manual_seed(init.seed)
    model = build_generator(init)
    g0 = model.state_dict()
    assert g_two.keys() == g_one.keys() == g0.keys()
    # A conv bias right before a non-affine InstanceNorm is cancelled by the normalisation: its true gradient
    # is 0, its computed gradient float noise (~1e-9) that differs with the batch split, and Adam's first
    # steps (m / sqrt(v)) turn that noise into +-lr. Those biases are compared by their bound instead.
    noise_only = _biases_before_instance_norm(model)
    assert noise_only  # the U-Net has some; if it stops having them, this exclusion can go
    diffs = {k: float((g_two[k].float() - g_one[k].float()).abs().max()) for k in g_two}
    worst = max(v for k, v in diffs.items() if k not in noise_only)
    assert worst < 1e-5, f"max |G_2workers - G_1worker| = {worst}"
    assert max(diffs[k] for k in noise_only) <= 3 * 2 * init.train.lr  # 3 steps of at most +-lr each
    # and training did move the weights (the comparison is not trivially between two initialisations)
    moved = max(float((g_one[k].float() - g0[k].float()).abs().max()) for k in g0 if g0[k].is_floating_point())
    assert moved > 1e-4
