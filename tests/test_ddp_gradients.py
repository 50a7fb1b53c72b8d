"""DDP's averaging is exact: one step's gradients with 2 gloo ranks x batch b equal those of one process with
batch 2b on the same samples, to float rounding, for G and D.

``tests/test_ray.py`` runs the real Ray Train path for 3 steps and compares weights. There Adam's first
steps (update ~ lr * g / |g|) turn rounding noise in near-zero gradients into +-lr, so the weights can
only be bounded. The gradients, taken before the optimizer, can be held to 1e-5. No Ray here: torch's own
gloo process group in two spawned processes, with the same DDP wrapping that ``ray.train.torch.prepare_model``
applies on CPU.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from tests.helpers import biases_before_instance_norm

REPO = Path(__file__).resolve().parents[1]
B = 4


# The cluster terms average over the batch like every other term, so DDP's mean of the ranks' gradients is
# the one-process gradient with them on too. L_MS is not: its ratio couples the samples of a batch, so it is off.
CLUSTER_TERMS = ["cluster.k=2", "loss.lambda_kl1=1.0", "loss.lambda_km=0.05"]
NO_CLUSTERS = ["cluster.k=0", "loss.lambda_kl1=0.0", "loss.lambda_km=0.0"]


def _config(out: Path, batch_size: int, clusters: bool = False):
    from clustergan.config import load_config
    from clustergan.train.builders import prepare_run

    overrides = [
        "model.nz=0",
        "model.dropout=0.0",
        "loss.lambda_ms=0.0",
        *(CLUSTER_TERMS if clusters else NO_CLUSTERS),
        "cluster.backend=sklearn",
        "model.norm=instance",
        "train.epochs=1",
        f"train.batch_size={batch_size}",
        "train.threads=1",
        "data.synth.n_train=16",
        "data.synth.n_test=4",
        f"out={out}",
    ]
    return prepare_run(load_config(REPO / "sweeps" / "debug.yaml", overrides))


def _first_step_gradients(rank: int, world: int, config_dict: dict, port: int, out_file: str) -> None:
    """One Trainer step on this rank's shard; rank 0 saves D's gradients (before D's update) and G's."""
    from clustergan.config import TrainConfig
    from clustergan.train.dist import Context
    from clustergan.train.loop import Trainer

    torch.set_num_threads(1)
    if world > 1:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        dist.init_process_group("gloo", rank=rank, world_size=world)

    class Gloo(Context):
        def prepare_model(self, model):
            return torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model

    ctx = Gloo()
    ctx.rank, ctx.world_size = rank, world
    trainer = Trainer(TrainConfig.model_validate(config_dict), ctx)
    trainer.epoch = 0
    grads: dict[str, torch.Tensor] = {}
    for tag, net, opt in (("D", trainer.D, trainer.opt_D), ("G", trainer.G, trainer.opt_G)):
        step = opt.step

        def recording_step(*args, _tag=tag, _net=net, _step=step, **kwargs):
            for name, p in getattr(_net, "module", _net).named_parameters():
                grads[f"{_tag}.{name}"] = p.grad.detach().clone()
            return _step(*args, **kwargs)

        opt.step = recording_step
    trainer.loader.sampler.set_epoch(0)
    trainer.dataset.set_epoch(0)
    trainer.step(next(iter(trainer.loader)))
    if rank == 0:
        torch.save(grads, out_file)
    if world > 1:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("clusters", [False, True], ids=["no-clusters", "cluster-losses"])
def test_ddp_gradients_of_two_ranks_equal_one_process_with_the_double_batch(tmp_path, clusters):
    two = _config(tmp_path / "two", B, clusters)
    one = _config(tmp_path / "one", 2 * B, clusters)
    mp.spawn(_first_step_gradients, args=(2, two.to_dict(), _free_port(), str(tmp_path / "two.pt")), nprocs=2)
    _first_step_gradients(0, 1, one.to_dict(), 0, str(tmp_path / "one.pt"))
    g_two = torch.load(tmp_path / "two.pt", weights_only=True)
    g_one = torch.load(tmp_path / "one.pt", weights_only=True)
    assert (
        g_two.keys() == g_one.keys()
        and any(k.startswith("D.") for k in g_one)
        and any(k.startswith("G.") for k in g_one)
    )
    from clustergan.train.builders import build_discriminator, build_generator

    noise_only = {f"G.{n}" for n in biases_before_instance_norm(build_generator(one))}
    noise_only |= {f"D.{n}" for n in biases_before_instance_norm(build_discriminator(one))}
    assert any(k.startswith("G.") for k in noise_only) and any(k.startswith("D.") for k in noise_only)
    for k in g_one:
        if k in noise_only:  # true gradient 0: both are float noise, far below a real gradient
            assert max(float(g_one[k].abs().max()), float(g_two[k].abs().max())) < 1e-5, k
            continue
        scale = float(g_one[k].abs().max())
        assert scale > 1e-5, k  # a real gradient, so the relative comparison means something
        diff = float((g_two[k] - g_one[k]).abs().max())
        assert diff <= 1e-5 * scale, f"{k}: 2 ranks x {B} vs 1 x {2 * B} differ by {diff:.3g} (max |grad| {scale:.3g})"
