"""Ray Train on a 2-node cluster simulated with ``ray.cluster_utils.Cluster`` (one worker per node), and a
worker killed mid-training: the run restarts from its last checkpoint and finishes; and a sweep of 8 trials
spread over both nodes that runs the encoder over the training set once (every worker process of its job
counts, through Ray's ``worker_process_setup_hook``).

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

    from clustergan.train.ray_train import worker_loop

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

    overrides = [
        "cluster.k=0",
        "model.nz=0",
        "loss.lambda_ms=0.0",
        "loss.lambda_kl1=0.0",
        "loss.lambda_km=0.0",
        f"train.epochs={epochs}",
        "train.batch_size=4",
        "train.threads=1",
        "data.synth.n_train=32",
        "data.synth.n_test=4",
        "data.synth.size=32",
        f"out={out}",
    ]
    return prepare_run(load_config(REPO / "sweeps" / "debug.yaml", overrides))


def _pid_records(out: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted((out / "pids").glob("rank*"))}


def test_two_node_run_places_one_worker_per_node(two_nodes, tmp_path):
    import ray.cloudpickle

    from clustergan.train.ray_train import make_trainer

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    config = _config(tmp_path / "run", epochs=1)
    trainer = make_trainer(
        config,
        workers=2,
        storage_path=str(tmp_path / "ray"),
        name="two-nodes",
        placement_strategy="SPREAD",
        loop=_recording_loop,
    )
    result = trainer.fit()
    assert result.error is None and result.metrics["epoch"] == 1
    nodes = {text.split()[0] for text in _pid_records(config.run_dir).values()}
    assert len(nodes) == 2  # rank 0 and rank 1 ran on different nodes
    assert (config.run_dir / "checkpoints" / "epoch_0001.pt").is_file()


def test_killed_worker_restarts_from_the_last_checkpoint(two_nodes, tmp_path):
    import ray.cloudpickle

    from clustergan.train.checkpoint import load_checkpoint
    from clustergan.train.ray_train import make_trainer

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    config = _config(tmp_path / "run", epochs=4)
    killed: list[int] = []

    # kill once Ray's controller has registered a checkpoint (its snapshot file), not merely once rank 0
    # wrote one: the controller takes the reports in its ~2 s poll
    snapshot = tmp_path / "ray" / "fault" / "checkpoint_manager_snapshot.json"

    fit_returned = threading.Event()

    def kill_rank1_after_epoch_2():
        # no fixed deadline: on a loaded machine starting the worker group alone took over 2 min; the wait
        # ends with the run (then nothing is killed, and the assertion below says so)
        while not fit_returned.is_set() and not (
            snapshot.is_file() and (config.run_dir / "checkpoints" / "epoch_0002.pt").is_file()
        ):
            time.sleep(0.2)
        pids = [int(name.split("-")[1]) for name in _pid_records(config.run_dir) if name.startswith("rank1-")]
        if pids and not fit_returned.is_set():
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])

    import tempfile

    def restored() -> set[Path]:  # the copies of Ray's checkpoint a restarted worker loads its state from
        return set(Path(tempfile.gettempdir()).glob("clustergan-restore-*"))

    before = restored()
    killer = threading.Thread(target=kill_rank1_after_epoch_2, daemon=True)
    killer.start()
    trainer = make_trainer(
        config,
        workers=2,
        storage_path=str(tmp_path / "ray"),
        name="fault",
        placement_strategy="SPREAD",
        max_failures=2,
        loop=_recording_loop,
    )
    try:
        result = trainer.fit()
    finally:
        fit_returned.set()
    killer.join(timeout=5)
    assert killed, "the worker was never killed (no epoch 2 checkpoint?)"
    assert result.error is None and result.metrics["epoch"] == 4
    records = _pid_records(config.run_dir)
    assert len(records) >= 4  # the worker group was started twice
    assert any(text.endswith(" 1") for text in records.values())  # the second start found a checkpoint
    # the restarted run continued (epoch 4 reached through the restored state, not from scratch)
    final = load_checkpoint(config.run_dir / "checkpoints" / "epoch_0004.pt")
    assert final["epoch"] == 4 and final["global_step"] == 4 * 4
    assert restored() <= before, "a restarted worker left its restored checkpoint copy behind"


# ------------------------------------------------------------- a sweep of 8 trials on the 2 nodes


def _passes_file() -> Path:
    return Path(os.environ["CLUSTERGAN_TEST_PASSES"])


def _record(line: str) -> None:
    with _passes_file().open("a") as f:  # one short append per event: whole lines from every process
        f.write(line + "\n")


def _count_in_worker() -> None:
    """Every Ray worker process of the job (``worker_process_setup_hook``): record each pass of the encoder
    over a set of images and each trial's evaluation, with the process and the node."""
    import ray

    import clustergan.clustering as clustering
    import clustergan.clustering.features as features
    import clustergan.train.evaluate as evaluate

    encode, evaluate_run = features.extract_features, evaluate.evaluate_run

    def counted_encode(encoder, images, *a, **k):
        _record(f"encode {ray.get_runtime_context().get_node_id()} {os.getpid()} {len(images)}")
        return encode(encoder, images, *a, **k)

    def counted_evaluate(*a, **k):
        _record(f"evaluate {ray.get_runtime_context().get_node_id()} {os.getpid()}")
        return evaluate_run(*a, **k)

    features.extract_features = clustering.extract_features = counted_encode
    evaluate.evaluate_run = counted_evaluate


def test_sweep_of_8_trials_on_two_nodes_runs_the_encoder_once(two_nodes, tmp_path, monkeypatch):
    """6 searched trials + the 2 baselines, 4 at a time on the 2 nodes: the driver encodes the training set
    once, before the trials; no trial process on either node runs the encoder over it again."""
    import ray.cloudpickle
    import yaml

    import clustergan.clustering.features as features
    from clustergan.tune.sweep import run_sweep

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    passes = tmp_path / "passes.txt"
    passes.touch()
    monkeypatch.setenv("CLUSTERGAN_TEST_PASSES", str(passes))
    # a dataset of its own (synth seed 7): its features are in no cache yet, so the driver must encode it
    sweep_yaml = tmp_path / "eight.yaml"
    sweep_yaml.write_text(
        yaml.safe_dump(
            {
                "name": "eight",
                "base": str(REPO / "sweeps" / "debug.yaml"),
                "overrides": {
                    "train.epochs": 1,
                    "train.max_steps": 2,
                    "train.threads": 1,
                    "data.synth.seed": 7,
                    "data.synth.n_train": 40,
                    "data.synth.n_test": 6,
                },
                "space": {
                    "cluster.k": {"type": "int", "low": 2, "high": 4},
                    "loss.lambda_ms": {"type": "loguniform", "low": 0.1, "high": 10.0, "zero_allowed": 0.2},
                    "loss.lambda_kl1": {"type": "loguniform", "low": 0.1, "high": 10.0},
                    "loss.lambda_km": {"type": "loguniform", "low": 0.001, "high": 0.1},
                },
                "num_trials": 6,
                "seeds": [0],
                "workers": 0,
                "cpus_per_worker": 1,
                "max_concurrent": 4,
                "protocol": "sweep",
                "baselines": True,
            }
        )
    )
    original = features.extract_features
    # a cold feature cache, so that the encoder has to run (a warm one from an earlier session would skip it)
    cold = tmp_path / "feature-cache"
    monkeypatch.setattr(
        features, "cache_dir", lambda sub: (cold / sub).mkdir(parents=True, exist_ok=True) or cold / sub
    )
    driver_node = ray.get_runtime_context().get_node_id()
    monkeypatch.setattr(
        features,
        "extract_features",
        lambda encoder, images, *a, **k: (
            _record(f"encode {driver_node} {os.getpid()} {len(images)}") or original(encoder, images, *a, **k)
        ),
    )
    ray.shutdown()  # the same cluster, a job whose worker processes count
    ray.init(
        address=two_nodes.address,
        runtime_env={
            "worker_process_setup_hook": _count_in_worker,
            "env_vars": {"CLUSTERGAN_TEST_PASSES": str(passes)},
        },
    )
    try:
        exp = run_sweep(sweep_yaml, storage=tmp_path / "exp")
    finally:
        ray.shutdown()
        ray.init(address=two_nodes.address)
    events = [line.split() for line in passes.read_text().splitlines()]
    encodes = [e for e in events if e[0] == "encode"]
    evaluations = [e for e in events if e[0] == "evaluate"]
    assert encodes == [["encode", driver_node, str(os.getpid()), "40"]]  # once, in the driver, all 40 targets
    assert len(evaluations) == 8 and len({e[1] for e in evaluations}) == 2  # 8 trials, on both nodes
    import csv

    rows = list(csv.DictReader((exp / "ranking.csv").open()))
    assert len(rows) == 8 and all(r["status"] == "finished" for r in rows)
    assert sorted(p.name for p in (exp / "clusters").iterdir()) == ["k2", "k3", "k4"]
