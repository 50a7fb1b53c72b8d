"""Ray Train on a 2-node cluster simulated with ``ray.cluster_utils.Cluster`` (one worker per node), and a
worker killed mid-training: the run restarts from its last checkpoint and finishes.

One simulated cluster (2 nodes x 2 CPUs) is shared by the tests of this module.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

ray = pytest.importorskip("ray")

pytestmark = pytest.mark.xdist_group("ray")  # one worker runs every Ray module: see tests/conftest.py


@pytest.fixture(scope="module")
def two_nodes():
    from ray.cluster_utils import Cluster

    # the session's cache folder (conftest) is already in the environment, so the workers share it
    saved = {k: os.environ.get(k) for k in ("RAY_AUTH_MODE",)}
    os.environ["RAY_AUTH_MODE"] = "disabled"  # before the nodes start, so that the workers inherit it
    if ray.is_initialized():
        ray.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2})
    cluster.add_node(num_cpus=2)
    ray.init(address=cluster.address)
    cluster.wait_for_nodes()
    yield cluster
    ray.shutdown()
    cluster.shutdown()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def _recording_loop(loop_config):
    """The real worker loop, after writing ``<pids>/rank<r>-<pid>`` = "<node id> <restored?>"."""
    import ray.train

    from clustergan.tune.train_ray import worker_loop

    rank = ray.train.get_context().get_world_rank()
    node = ray.get_runtime_context().get_node_id()
    restored = ray.train.get_checkpoint() is not None
    folder = Path(loop_config["config"]["out"]) / "pids"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"rank{rank}-{os.getpid()}").write_text(f"{node} {int(restored)}")
    worker_loop(loop_config)


def _config(out: Path, epochs: int):
    from clustergan.config import load_config
    from clustergan.train.builders import prepare_run

    overrides = ["cluster.k=0", "model.nz=0", "loss.lambda_ms=0.0", "loss.lambda_kl1=0.0", "loss.lambda_km=0.0",
                 f"train.epochs={epochs}", "train.batch_size=4", "train.threads=1", "data.synth.n_train=32",
                 "data.synth.n_test=4", "data.synth.size=32", f"out={out}"]
    return prepare_run(load_config(REPO / "sweeps" / "debug.yaml", overrides))


def _pid_records(out: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted((out / "pids").glob("rank*"))}


def test_two_node_run_places_one_worker_per_node(two_nodes, tmp_path):
    import ray.cloudpickle

    from clustergan.tune.train_ray import make_trainer

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    config = _config(tmp_path / "run", epochs=1)
    trainer = make_trainer(config, workers=2, storage_path=str(tmp_path / "ray"), name="two-nodes",
                           placement_strategy="SPREAD", loop=_recording_loop)
    result = trainer.fit()
    assert result.error is None and result.metrics["epoch"] == 1
    nodes = {text.split()[0] for text in _pid_records(config.run_dir).values()}
    assert len(nodes) == 2  # rank 0 and rank 1 ran on different nodes
    assert (config.run_dir / "checkpoints" / "epoch_0001.pt").is_file()


def test_killed_worker_restarts_from_the_last_checkpoint(two_nodes, tmp_path):
    import ray.cloudpickle

    from clustergan.train.checkpoint import load_checkpoint
    from clustergan.tune.train_ray import make_trainer

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    config = _config(tmp_path / "run", epochs=4)
    killed: list[int] = []

    # kill once Ray's controller has registered a checkpoint (its snapshot file), not merely once rank 0
    # wrote one: the controller takes the reports in its ~2 s poll
    snapshot = tmp_path / "ray" / "fault" / "checkpoint_manager_snapshot.json"

    def kill_rank1_after_epoch_2():
        deadline = time.time() + 120
        while time.time() < deadline and not (
            snapshot.is_file() and (config.run_dir / "checkpoints" / "epoch_0002.pt").is_file()
        ):
            time.sleep(0.2)
        pids = [int(name.split("-")[1]) for name in _pid_records(config.run_dir) if name.startswith("rank1-")]
        if pids:
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])

    killer = threading.Thread(target=kill_rank1_after_epoch_2, daemon=True)
    killer.start()
    trainer = make_trainer(config, workers=2, storage_path=str(tmp_path / "ray"), name="fault",
                           placement_strategy="SPREAD", max_failures=2, loop=_recording_loop)
    result = trainer.fit()
    killer.join(timeout=5)
    assert killed, "the worker was never killed (no epoch 2 checkpoint?)"
    assert result.error is None and result.metrics["epoch"] == 4
    records = _pid_records(config.run_dir)
    assert len(records) >= 4  # the worker group was started twice
    assert any(text.endswith(" 1") for text in records.values())  # the second start found a checkpoint
    # the restarted run continued (epoch 4 reached through the restored state, not from scratch)
    final = load_checkpoint(config.run_dir / "checkpoints" / "epoch_0004.pt")
    assert final["epoch"] == 4 and final["global_step"] == 4 * 4
