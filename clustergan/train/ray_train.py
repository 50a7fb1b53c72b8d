"""The training function under Ray Train (:func:`clustergan.train.launch.run_training` with ``workers >= 1``).

:class:`RayContext` implements :class:`clustergan.train.dist.Context` for one Ray Train worker: G and D are
wrapped in DDP (gloo on CPU, NCCL on GPU) by ``ray.train.torch.prepare_model``; the data loader keeps the
base class's ``DistributedSampler`` with the real rank / world size (not ``prepare_data_loader``'s), so the
shards are exactly those of the local mode and ``N`` workers x batch ``b`` see the same samples per step as
one worker with batch ``N * b``; epoch losses are all-reduced (mean) before reporting; rank 0 writes grids and
checkpoints and hands each checkpoint to ``ray.train.report``, which copies it into the run's storage.

How the mode-seeking loss behaves across workers: L_MS compares two fakes of the *same* inputs
(``G(x, z1)`` vs ``G(x, z2)``), so each worker computes it on its local batch only, and DDP averages the
gradients. L_MS is batch-coupled, not per-sample: ``1 / (mean|fake2 - fake1| / mean|z2 - z1| + eps)`` with
both means over the whole batch (:func:`clustergan.losses.mode_seeking_loss`, as MSGAN published it). So
``N`` workers x batch ``b`` optimise the mean of ``N`` such losses over batches of ``b``, which is not the
loss of the concatenated ``N * b`` batch (the reciprocal of a ratio of batch means does not average), and
the noise draws differ too (each rank draws its own z from the same seed). A sweep or a comparison that
changes the number of workers changes L_MS's batch. The cluster losses (kL1, Mahalanobis) are means over
per-sample terms, so for them (equal shards) the average over workers does equal the concatenated batch's.
Random augmentation (crop / flip) is drawn per (seed, epoch, index), so a sample is augmented the same way
whichever rank loads it: for pix2pix, 2 workers x batch b and 1 worker x batch 2b agree within float noise
(tests/test_ray.py), except conv biases right before a non-affine InstanceNorm, whose true gradient is 0
and which Adam moves by +-lr on noise either way.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from clustergan.config import TrainConfig
from clustergan.errors import ClusterganError
from clustergan.train.checkpoint import latest_checkpoint
from clustergan.train.dist import Context
from clustergan.train.loop import train_func
from clustergan.train.node_inputs import describe_inputs, localize_inputs

#: How many times a Ray Train run restarts from its last checkpoint after a worker dies.
DEFAULT_MAX_FAILURES = 2


def _last_epoch_file(folder: Path, checkpoint) -> Path:
    """The ``epoch_*.pt`` file of a Ray checkpoint's folder (rank 0 reports exactly one)."""
    files = sorted(Path(folder).glob("epoch_*.pt"))
    if not files:
        raise ClusterganError(f"Ray checkpoint {checkpoint.path} holds no epoch_*.pt file")
    return files[-1]


class RayContext(Context):
    """One Ray Train worker. Build it inside the worker function (after Ray set up the process group)."""

    def __init__(self, resume_from: Path | None = None):
        import ray.train
        import ray.train.torch

        ctx = ray.train.get_context()
        self.rank = ctx.get_world_rank()
        self.world_size = ctx.get_world_size()
        self.device = ray.train.torch.get_device()
        self._resume_from = Path(resume_from) if resume_from else None
        self._restored_dir: Path | None = None

    def prepare_model(self, model: torch.nn.Module) -> torch.nn.Module:
        import ray.train.torch

        # move_to_device + DistributedDataParallel; parameters are broadcast from rank 0 at wrap time
        return ray.train.torch.prepare_model(model)

    def all_reduce_mean(self, values: dict[str, float]) -> dict[str, float]:
        if self.world_size == 1 or not values:
            return dict(values)
        import torch.distributed as dist

        keys = sorted(values)  # the same order on every rank
        t = torch.tensor(
            [float(values[k]) for k in keys],
            dtype=torch.float64,
            device=self.device if self.device.type == "cuda" else "cpu",
        )
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        t /= self.world_size
        return dict(zip(keys, t.cpu().tolist(), strict=False))

    def report(self, metrics: dict[str, Any], checkpoint_path: Path | None = None) -> None:
        """Every rank calls this once per epoch (``ray.train.report`` is a barrier); rank 0 attaches its
        checkpoint. Only the one file is handed over (a hard link in a temporary folder), so the upload does
        not grow with the number of epochs kept under ``<run>/checkpoints``."""
        import ray.train

        if checkpoint_path is None or not self.is_main:
            ray.train.report(metrics)
            return
        with tempfile.TemporaryDirectory(prefix="clustergan-ckpt-") as tmp:
            dest = Path(tmp) / Path(checkpoint_path).name
            try:
                os.link(checkpoint_path, dest)
            except OSError:  # another filesystem: copy
                shutil.copy2(checkpoint_path, dest)
            ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(tmp))

    def resume_checkpoint(self) -> Path | None:
        """Ray's latest checkpoint of this run (after a worker failure or a restart with the same name),
        else the file given at construction (``--resume`` on a run folder), else None."""
        import ray.train

        checkpoint = ray.train.get_checkpoint()
        if checkpoint is not None:
            self._restored_dir = Path(tempfile.mkdtemp(prefix="clustergan-restore-"))
            checkpoint.to_directory(str(self._restored_dir))
            return _last_epoch_file(self._restored_dir, checkpoint)
        return self._resume_from

    def release_resume(self) -> None:
        # a restored checkpoint is a full copy (hundreds of MB at 256 px): one per restart would fill /tmp
        if self._restored_dir is not None:
            shutil.rmtree(self._restored_dir, ignore_errors=True)
            self._restored_dir = None


def worker_loop(loop_config: dict[str, Any]) -> None:
    """What each Ray Train worker runs: ``{"config": TrainConfig dict, "threads": int, "resume_from": str,
    "inputs": describe_inputs(...)}``; the inputs are found or rebuilt on the worker's node first."""
    torch.set_num_threads(max(1, int(loop_config.get("threads") or 1)))  # train.threads, if set, wins later
    ctx = RayContext(resume_from=loop_config.get("resume_from"))
    train_func(localize_inputs(loop_config["config"], loop_config.get("inputs")), ctx)


def make_trainer(
    config: TrainConfig,
    workers: int,
    use_gpu: bool = False,
    resume: bool = False,
    storage_path: str | None = None,
    cpus_per_worker: float = 1.0,
    gpus_per_worker: float | None = None,
    max_failures: int = DEFAULT_MAX_FAILURES,
    name: str | None = None,
    callbacks: list | None = None,
    placement_strategy: str = "PACK",
    loop=worker_loop,
):
    """A ``TorchTrainer`` running :func:`clustergan.train.loop.train_func` on ``workers`` workers.

    ``config`` must already be prepared (:func:`clustergan.train.builders.prepare_run`). The Ray run is named
    ``name`` (default ``config.name``), without a timestamp, so a restart with the same storage restores it.
    ``storage_path`` (a folder or a URI Ray's storage supports) defaults to ``<run dir>/ray``.
    ``placement_strategy`` "SPREAD" puts the workers on different nodes where it can, "STRICT_SPREAD" on
    different nodes or not at all (waits for enough nodes), "PACK" fills one node first.
    """
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    if workers < 1:
        raise ClusterganError(f"--workers {workers}: Ray Train needs at least one worker (0 = the local mode)")
    if use_gpu and workers > 1 and gpus_per_worker is not None and gpus_per_worker < 1:
        raise ClusterganError(
            f"{workers} GPU workers with {gpus_per_worker:g} GPU each: DDP over NCCL needs a whole GPU per worker "
            "(NCCL >= 2.5 refuses two ranks on one GPU); give each worker 1 GPU, or use 1 worker per trial when "
            "trials share GPUs"
        )
    resume_from = latest_checkpoint(config.run_dir / "checkpoints") if resume else None
    resources: dict[str, float] = {"CPU": float(cpus_per_worker)}
    if use_gpu:
        resources["GPU"] = float(gpus_per_worker or 1.0)
    threads = config.train.threads or max(1, int(cpus_per_worker))
    return TorchTrainer(
        loop,
        train_loop_config={
            "config": config.to_dict(),
            "threads": threads,
            "resume_from": str(resume_from) if resume_from else None,
            "inputs": describe_inputs(config),
        },
        torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo"),
        scaling_config=ScalingConfig(
            num_workers=workers, use_gpu=use_gpu, resources_per_worker=resources, placement_strategy=placement_strategy
        ),
        run_config=RunConfig(
            name=name or config.name,
            storage_path=storage_path or str(Path(config.run_dir).resolve() / "ray"),
            failure_config=FailureConfig(max_failures=max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=2),
            callbacks=callbacks,
        ),
    )


def check_gpus(workers: int, cluster_gpus: float) -> None:
    """Refuse, instead of waiting forever for resources, a GPU run that asks for more GPUs than the Ray
    cluster has. ``CLUSTERGAN_SKIP_GPU_CHECK=1`` skips it (an autoscaling cluster that adds GPU nodes)."""
    if os.environ.get("CLUSTERGAN_SKIP_GPU_CHECK") == "1" or workers <= cluster_gpus:
        return
    where = "this Ray cluster has no GPU" if cluster_gpus == 0 else f"this Ray cluster has {cluster_gpus:g}"
    hint = f"use --workers {int(cluster_gpus)}" if cluster_gpus >= 1 else "drop --gpu (gloo on the CPUs)"
    raise ClusterganError(
        f"--workers {workers} --gpu needs {workers} GPUs (one per worker), but {where}; {hint}, or set "
        "CLUSTERGAN_SKIP_GPU_CHECK=1 on an autoscaling cluster that will add GPU nodes"
    )


def train_with_ray(
    config: TrainConfig,
    workers: int,
    use_gpu: bool = False,
    resume: bool = False,
    storage_path: str | None = None,
    cpus_per_worker: float = 1.0,
    gpus_per_worker: float | None = None,
    max_failures: int = DEFAULT_MAX_FAILURES,
    name: str | None = None,
    callbacks: list | None = None,
    placement_strategy: str = "PACK",
):
    """Train ``config`` (already prepared) on ``workers`` Ray Train workers; returns the ``ray.train.Result``.

    Connects to a running cluster (``RAY_ADDRESS``) or starts a local one. A worker that dies restarts the
    run from its last reported checkpoint, up to ``max_failures`` times. ``name`` and ``callbacks`` go to
    :func:`make_trainer` (a sweep trial names each seed's run and reports through Tune's callback).
    """
    import ray

    if not ray.is_initialized():
        ray.init()
    if use_gpu:
        check_gpus(workers, float(ray.cluster_resources().get("GPU", 0.0)))
    previous = Path(config.run_dir).resolve() / "ray" / config.name
    if not resume and storage_path is None and previous.is_dir():
        # Ray Train restores a run from its storage when the name repeats: a fresh start must not
        print(f"starting from scratch: removing the previous Ray run state {previous} (use --resume to continue)")
        shutil.rmtree(previous)
    trainer = make_trainer(
        config,
        workers,
        use_gpu=use_gpu,
        resume=resume,
        storage_path=storage_path,
        cpus_per_worker=cpus_per_worker,
        gpus_per_worker=gpus_per_worker,
        max_failures=max_failures,
        name=name,
        callbacks=callbacks,
        placement_strategy=placement_strategy,
    )
    result = trainer.fit()
    if result.error is not None:
        raise result.error
    fetch_final_checkpoint(result, config.run_dir)
    return result


def fetch_final_checkpoint(result, run_dir: Path) -> Path | None:
    """Make sure the run's last checkpoint is in ``<run_dir>/checkpoints`` on *this* node. Rank 0 writes it
    there on its own node; when that is another machine without a shared filesystem, the copy Ray reported
    to the run's storage (a folder or a URI) is downloaded, so that evaluation and sampling here find it."""
    if result.checkpoint is None:
        return None
    folder = Path(run_dir) / "checkpoints"
    with result.checkpoint.as_directory() as reported:
        src = _last_epoch_file(reported, result.checkpoint)
        dest = folder / src.name
        if not dest.is_file():
            folder.mkdir(parents=True, exist_ok=True)
            part = dest.with_name(f".{dest.name}.part{os.getpid()}")
            shutil.copyfile(src, part)  # streamed, then renamed: never a half-written checkpoint
            os.replace(part, dest)
            print(f"rank 0 ran on another node: its last checkpoint was fetched from Ray's storage to {dest}")
    return dest
