"""Ray Train and Ray Tune: distributed equivalence, sweeps, ranking report, resume.

One Ray session per module (``ray.init(num_cpus=4)``: 2 workers x 1 CPU + a trial driver never schedule on 2 CPUs
otherwise) is shared by every test in this file. The sweep experiment is built once per test session, as a
submitted job (``smoke_job`` in ``tests/conftest.py``), and reused by the report, resume and ledger tests.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from tests.helpers import biases_before_instance_norm

REPO = Path(__file__).resolve().parents[1]

ray = pytest.importorskip("ray")

pytestmark = pytest.mark.xdist_group("ray")  # one worker runs every Ray module: see tests/conftest.py


@pytest.fixture(scope="module")
def ray_session():
    # the session's cache folder (conftest) is already in the environment, so the workers share it
    saved = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"  # set before ray.init so that the worker processes inherit it
    if not ray.is_initialized():
        ray.init(num_cpus=4, include_dashboard=True, configure_logging=False)
    yield
    ray.shutdown()
    if saved is None:
        os.environ.pop("RAY_AUTH_MODE", None)
    else:
        os.environ["RAY_AUTH_MODE"] = saved


# ------------------------------------------------------------------------------------------ Ray Train


def _pix2pix_config(out: Path, batch_size: int):
    from clustergan.config import load_config
    from clustergan.train.builders import prepare_run

    overrides = [
        "cluster.k=0",
        "model.nz=0",
        "model.dropout=0.0",
        "loss.lambda_ms=0.0",
        "loss.lambda_kl1=0.0",
        "loss.lambda_km=0.0",
        "model.norm=instance",
        "train.epochs=1",
        "train.max_steps=3",
        f"train.batch_size={batch_size}",
        "train.threads=1",
        f"out={out}",
    ]
    return prepare_run(load_config(REPO / "sweeps" / "debug.yaml", overrides))


def test_two_workers_match_one_worker_with_double_batch(ray_session, tmp_path):
    # the real worker loop, random crop and flip included: the augmented items are drawn per (seed, epoch,
    # index), so they are the same whichever rank loads them (tests/test_data.py)
    from clustergan.train.checkpoint import load_checkpoint
    from clustergan.train.dist import LocalContext
    from clustergan.train.loop import train_func
    from clustergan.train.ray_train import make_trainer

    b = 4
    two = _pix2pix_config(tmp_path / "two", b)
    trainer = make_trainer(two, workers=2, storage_path=str(tmp_path / "ray"), name="equivalence")
    result = trainer.fit()
    assert result.error is None
    assert result.checkpoint is not None and result.metrics["step"] == 3

    one = _pix2pix_config(tmp_path / "one", 2 * b)
    train_func(one.to_dict(), LocalContext(device="cpu"))

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
    # steps (m / sqrt(v)) turn that noise into +-lr. Those biases are compared by their bound instead. (With
    # them excluded, augmentation on: worst other difference 5.2e-6; they alone reached 8.1e-4.)
    noise_only = biases_before_instance_norm(model)
    assert noise_only  # the U-Net has some; if it stops having them, this exclusion can go
    diffs = {k: float((g_two[k].float() - g_one[k].float()).abs().max()) for k in g_two}
    worst = max(v for k, v in diffs.items() if k not in noise_only)
    # Elementwise 1e-5 held on an AVX2 CPU (worst 5.2e-6). On an AVX-512 CPU 2.4 % of the
    # elements differed by more than 1e-5 (worst 5.2e-4, within Adam's +-lr per step), with the same code.
    # The gradients themselves match to ~2e-6 relative (tests/test_ddp_gradients.py), so the drift is Adam's
    # sign-like first steps amplifying rounding-level differences (oneDNN's kernels differ with the batch
    # size). A sharding or averaging bug moves most elements, so this test bounds the share and the size.
    off = sum(int(((g_two[k].float() - g_one[k].float()).abs() > 1e-5).sum()) for k in g_two if k not in noise_only)
    share = off / sum(g_two[k].numel() for k in g_two if k not in noise_only)
    assert share < 0.05, f"{share:.1%} of G's weights differ by > 1e-5 between 2 workers x b and 1 x 2b"
    assert worst <= 3 * 2 * init.train.lr, f"max |G_2workers - G_1worker| = {worst}"
    assert max(diffs[k] for k in noise_only) <= 3 * 2 * init.train.lr  # 3 steps of at most +-lr each
    # and training did move the weights (the comparison is not trivially between two initialisations)
    moved = max(float((g_one[k].float() - g0[k].float()).abs().max()) for k in g0 if g0[k].is_floating_point())
    assert moved > 1e-4


def test_gpu_run_without_enough_gpus_is_refused_instead_of_hanging(ray_session, tmp_path):
    from clustergan.errors import ClusterganError
    from clustergan.train.ray_train import check_gpus, make_trainer, train_with_ray

    config = _pix2pix_config(tmp_path / "gpu", 2)
    with pytest.raises(ClusterganError) as err:  # the module's Ray session has CPUs only
        train_with_ray(config, workers=1, use_gpu=True)
    assert str(err.value) == (
        "--workers 1 --gpu needs 1 GPUs (one per worker), but this Ray cluster has no GPU; drop --gpu (gloo on "
        "the CPUs), or set CLUSTERGAN_SKIP_GPU_CHECK=1 on an autoscaling cluster that will add GPU nodes"
    )
    with pytest.raises(
        ClusterganError,
        match=r"^--workers 4 --gpu needs 4 GPUs \(one per worker\), but this Ray "
        r"cluster has 2; use --workers 2,",
    ):
        check_gpus(4, 2.0)
    check_gpus(2, 2.0)
    with pytest.raises(ClusterganError) as err:
        make_trainer(config, workers=2, use_gpu=True, gpus_per_worker=0.5)
    assert str(err.value) == (
        "2 GPU workers with 0.5 GPU each: DDP over NCCL needs a whole GPU per worker (NCCL >= 2.5 refuses two "
        "ranks on one GPU); give each worker 1 GPU, or use 1 worker per trial when trials share GPUs"
    )


# ------------------------------------------------------------------------------------- sweep config


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_sweep_config_rejects_unknown_keys_and_bad_spaces(tmp_path):
    from clustergan.errors import ConfigError
    from clustergan.tune.sweep_config import load_sweep

    base = f"base: {REPO / 'sweeps' / 'debug.yaml'}\n"
    with pytest.raises(ConfigError, match=r"unknown key `num_trial`"):
        load_sweep(_write(tmp_path / "a.yaml", base + "num_trial: 3\n"))
    with pytest.raises(ConfigError, match=r"space key `loss.lambda_typo` is not a training config key"):
        load_sweep(_write(tmp_path / "b.yaml", base + "space: {loss.lambda_typo: {type: float, low: 0, high: 1}}\n"))
    with pytest.raises(ConfigError, match=r"a loguniform range needs low > 0 \(got 0.0\)"):
        load_sweep(
            _write(tmp_path / "c.yaml", base + "space: {loss.lambda_ms: {type: loguniform, low: 0.0, high: 1}}\n")
        )
    with pytest.raises(ConfigError, match=r"`cpus_per_worker` = '1': Input should be a valid number"):
        load_sweep(_write(tmp_path / "d.yaml", base + "cpus_per_worker: '1'\n"))
    with pytest.raises(
        ConfigError,
        match=r"gpus_per_worker 0.5 with workers 2: DDP over NCCL needs a whole GPU per "
        r"worker; use gpus_per_worker 1, or workers 1",
    ):
        load_sweep(_write(tmp_path / "g.yaml", base + "workers: 2\ngpus_per_worker: 0.5\n"))
    assert (
        load_sweep(_write(tmp_path / "h.yaml", base + "workers: 1\ngpus_per_worker: 0.5\n"))[0].gpus_per_worker == 0.5
    )
    sweep, cfg = load_sweep(_write(tmp_path / "e.yaml", base + "cpus_per_worker: 0.5\noverrides: {train.epochs: 3}\n"))
    assert sweep.cpus_per_worker == 0.5 and cfg["train"]["epochs"] == 3 and sweep.name == "e"


def test_zero_allowed_switches_a_parameter_off_with_its_probability():
    import optuna

    from clustergan.tune.space import SpaceSampler, trial_params
    from clustergan.tune.sweep_config import ParamSpace

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = {
        "cluster.k": ParamSpace(type="int", low=2, high=8, zero_allowed=0.3),
        "loss.lambda_ms": ParamSpace(type="loguniform", low=0.1, high=10.0),
    }
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    sampler = SpaceSampler(space)
    ks = []
    for _ in range(400):
        trial = study.ask()
        sampler(trial)
        params = trial_params(space, trial.params)
        assert 0.1 <= params["loss.lambda_ms"] <= 10.0
        ks.append(params["cluster.k"])
        study.tell(trial, 0.0)
    off = sum(k == 0 for k in ks) / len(ks)
    assert 0.22 < off < 0.38 and set(ks) - {0} <= set(range(2, 9))


# ------------------------------------------------------------------------------------------- report


def _trial(root: Path, tid: str, status: str, metrics=None, kind="search", **extra):
    from clustergan.tune.records import TrialRecord, record_path, write_record

    record = TrialRecord(
        trial_id=tid,
        kind=kind,
        status=status,
        params={"cluster.k": 2},
        seeds=[0],
        started=0.0,
        train_config={"name": tid, "cluster": {"k": 2, "stats_dir": "/somewhere"}},
        metrics=metrics,
        **extra,
    )
    write_record(record_path(root, tid), record)


def test_report_ranks_by_pareto_front_then_tie_break(tmp_path):
    import csv
    import json

    from clustergan.tune.report import write_report

    (tmp_path / "sweep_state.json").write_text(
        json.dumps(
            {"status": "finished", "name": "t", "protocol": "sweep", "fid_ceiling": 100.0, "cond_gain_floor": 0.01}
        )
    )
    _trial(tmp_path, "a", "finished", {"ndb": 2, "jsd": 0.1, "lpips": 0.30, "cond_gain": 0.05})  # front
    _trial(tmp_path, "b", "finished", {"ndb": 1, "jsd": 0.2, "lpips": 0.10})  # front, lower ndb -> first
    _trial(tmp_path, "c", "finished", {"ndb": 3, "jsd": 0.3, "lpips": 0.05})  # dominated by a and b
    _trial(tmp_path, "d", "finished", {"ndb": 0, "jsd": 0.0, "lpips": 0.9, "fid": 150.0})  # above the ceiling
    _trial(tmp_path, "g", "finished", {"ndb": 0, "jsd": 0.0, "lpips": 0.95, "cond_gain": 0.001})  # ignores its input
    _trial(tmp_path, "e", "running")  # the sweep finished without its final report: stopped early
    _trial(tmp_path, "f", "failed", error="TrainingDiverged: loss G_total became NaN/Inf")
    table = write_report(tmp_path)
    rows = list(csv.DictReader((tmp_path / "ranking.csv").open()))
    assert [r["trial"] for r in rows] == ["b", "a", "c", "g", "d", "e", "f"]
    assert [r["pareto_rank"] for r in rows] == ["1", "1", "2", "", "", "", ""]
    assert [r["rank"] for r in rows] == ["1", "2", "3", "", "", "", ""]
    assert [r["status"] for r in rows] == ["finished"] * 3 + ["infeasible"] * 2 + ["stopped early", "failed"]
    assert [r["cond_gain"] for r in rows][:4] == ["", "0.05", "", "0.001"]  # b has none: not held to the floor
    assert "below the conditional-gain floor (0.01: outputs that ignore their input)" in table
    assert "- f: TrainingDiverged: loss G_total became NaN/Inf" in table
    assert (tmp_path / "pareto.png").stat().st_size > 1000
    assert "trial b" in (tmp_path / "best_config.yaml").read_text().splitlines()[0]


def test_best_config_is_the_best_searched_trial_even_below_a_baseline(tmp_path):
    import json

    from clustergan.tune.report import write_report

    (tmp_path / "sweep_state.json").write_text(json.dumps({"status": "finished", "name": "t", "protocol": "sweep"}))
    _trial(tmp_path, "p", "finished", {"ndb": 0, "jsd": 0.0, "lpips": 0.5}, kind="baseline:pix2pix")  # dominates
    write_report(tmp_path)
    assert not (tmp_path / "best_config.yaml").exists()  # no searched configuration finished: no answer yet
    _trial(tmp_path, "s", "finished", {"ndb": 3, "jsd": 0.3, "lpips": 0.1})
    write_report(tmp_path)
    header = (tmp_path / "best_config.yaml").read_text().splitlines()
    assert header[0].startswith("# Best configuration of sweep t (trial s, search): ndb=3 ")
    assert header[1] == (
        "# Ranked above it: baseline:pix2pix (the best searched configuration is not the best point of the ranking)"
    )
    (tmp_path / "trials" / "s" / "trial.json").unlink()
    write_report(tmp_path)
    assert not (tmp_path / "best_config.yaml").exists()  # a stale answer is not left behind


def test_report_labels_the_scale_and_names_ties(tmp_path):
    import json

    from clustergan.tune.report import write_report

    (tmp_path / "sweep_state.json").write_text(
        json.dumps(
            {"status": "finished", "name": "t", "protocol": "sweep", "smoke_test": True, "note": "32 px, 12 steps"}
        )
    )
    _trial(tmp_path, "a", "finished", {"ndb": 20, "jsd": 0.5, "lpips": 0.0})
    _trial(tmp_path, "b", "finished", {"ndb": 20, "jsd": 0.5, "lpips": 0.0})
    _trial(tmp_path, "c", "finished", {"ndb": 19, "jsd": 0.5, "lpips": 0.0})
    _trial(tmp_path, "d", "failed", error="boom")  # unranked: never part of a tie
    table = write_report(tmp_path)
    lines = table.splitlines()
    assert lines[2].startswith("**Smoke test** (`--smoke-test`: a few steps per trial)")
    assert lines[4] == "**Note:** 32 px, 12 steps"
    assert (
        "- a, b tie on NDB, JSD and LPIPS: their order is only the trial-id tie-break, nothing separates them"
    ) in lines
    assert sum("tie on" in line for line in lines) == 1  # c is not tied with anything
    (tmp_path / "sweep_state.json").write_text(json.dumps({"status": "finished", "name": "t", "protocol": "sweep"}))
    (tmp_path / "trials" / "b" / "trial.json").unlink()
    table = write_report(tmp_path)
    assert "Smoke test" not in table and "Note:" not in table and "Ties:" not in table


def test_report_of_a_partial_sweep_names_it_and_its_interrupted_trial(tmp_path):
    """A slice or an interrupted sweep ends "partial": its header says how many of the planned trials ran, and
    a trial left "running" is listed as stopped, apart from the ranked ones; while the driver runs it stays
    "running"."""
    import json

    from clustergan.tune.report import write_report

    _trial(tmp_path, "a", "finished", {"ndb": 2, "jsd": 0.1, "lpips": 0.30})
    _trial(tmp_path, "b", "running")
    for status, shown in (("running", "running"), ("partial: 2 of 6 trials", "stopped early")):
        (tmp_path / "sweep_state.json").write_text(json.dumps({"status": status, "name": "t", "protocol": "sweep"}))
        table = write_report(tmp_path)
        assert table.splitlines()[0] == f"# Sweep `t` ({status}): 2 trials"
        row = next(line for line in table.splitlines() if "| b |" in line)
        assert f"| {shown} |" in row


# -------------------------------------------------------------------------------------- smoke sweep


@pytest.fixture(scope="module")
def smoke_sweep(smoke_job, ray_session):
    """The debug sweep with --smoke-test, as the submitted job ran it (the resume and ledger tests drive it
    again from this module's Ray session)."""
    if "STATUS SUCCEEDED" not in smoke_job["stdout"]:
        pytest.fail("the submitted smoke sweep failed:\n" + smoke_job["stdout"][-3000:] + smoke_job["stderr"][-3000:])
    return smoke_job["exp"]


def test_the_driver_encodes_the_training_set_once_for_every_k(tmp_path, monkeypatch):
    """Before any trial, the driver computes the clusters of every k the space allows from one pass of the
    encoder over the training set (the trials only read them: ``test_smoke_sweep_...`` finds them in the
    experiment), and a second call finds them there."""
    from clustergan.clustering import features
    from clustergan.tune.space import cluster_ks
    from clustergan.tune.sweep import prepare_clusters
    from clustergan.tune.sweep_config import load_sweep

    # the session's cache (dataset, weights) with an empty features folder: the features are not cached yet
    monkeypatch.setattr(
        features,
        "cache_dir",
        lambda sub: (tmp_path / "cache" / sub).mkdir(parents=True, exist_ok=True) or tmp_path / "cache" / sub,
    )
    passes = []
    original = features.extract_features
    monkeypatch.setattr(
        features,
        "extract_features",
        lambda encoder, images, *a, **k: passes.append(len(images)) or original(encoder, images, *a, **k),
    )
    sweep, base = load_sweep(REPO / "sweeps" / "debug_sweep.yaml")
    assert cluster_ks(sweep, base) == [2, 3, 4]
    dirs = prepare_clusters(base, cluster_ks(sweep, base), tmp_path / "exp")
    assert passes == [96]  # one pass of the encoder over the 96 training images
    assert sorted(dirs) == [2, 3, 4] and all((Path(d) / "cluster_stats.json").is_file() for d in dirs.values())
    assert prepare_clusters(base, [2, 3, 4], tmp_path / "exp") == dirs and passes == [96]  # already there


def test_smoke_sweep_ranks_baselines_and_search_trials(smoke_sweep):
    import csv

    from clustergan.config import load_config

    rows = list(csv.DictReader((smoke_sweep / "ranking.csv").open()))
    kinds = sorted(r["kind"] for r in rows)
    assert kinds == ["baseline:msgan", "baseline:pix2pix", "search", "search"]
    assert all(r["status"] == "finished" and r["pareto_rank"] for r in rows)
    assert all(Path(r["sample_grid"]).is_file() for r in rows)
    md = (smoke_sweep / "ranking.md").read_text()
    assert "protocol `sweep`: 10 samples per test input x 24 inputs" in md
    assert md.splitlines()[2].startswith("**Smoke test**") and "**Note:** smoke scale" in md
    assert (smoke_sweep / "optuna.db").is_file() and (smoke_sweep / "pareto.png").is_file()
    # clusters were computed by the driver for every k of the space, before the trials
    assert sorted(p.name for p in (smoke_sweep / "clusters").iterdir()) == ["k2", "k3", "k4"]
    best = load_config(smoke_sweep / "best_config.yaml")
    assert best.name == "debug_sweep-smoke-best" and best.cluster.stats_dir is None
    import optuna

    study = optuna.load_study(study_name="debug_sweep-smoke", storage=f"sqlite:///{smoke_sweep / 'optuna.db'}")
    assert len(study.directions) == 3 and len(study.trials) == 2


def test_report_regenerates_the_same_ranking(smoke_sweep):
    from clustergan.cli import main

    before = (smoke_sweep / "ranking.csv").read_text()
    for name in ("ranking.csv", "ranking.md", "best_config.yaml", "pareto.png"):
        (smoke_sweep / name).unlink()
    assert main(["report", str(smoke_sweep)]) == 0
    assert (smoke_sweep / "ranking.csv").read_text() == before
    assert (smoke_sweep / "best_config.yaml").is_file() and (smoke_sweep / "pareto.png").is_file()


def test_resume_of_a_finished_sweep_reruns_nothing(smoke_sweep):
    from clustergan.errors import ClusterganError
    from clustergan.tune.sweep import run_sweep

    records = {p: p.read_text() for p in (smoke_sweep / "trials").glob("*/trial.json")}
    with pytest.raises(ClusterganError, match=r"this sweep already ran here; pass --resume"):
        run_sweep(REPO / "sweeps" / "debug_sweep.yaml", storage=smoke_sweep, smoke_test=True)
    run_sweep(REPO / "sweeps" / "debug_sweep.yaml", storage=smoke_sweep, smoke_test=True, resume=True)
    after = {p: p.read_text() for p in (smoke_sweep / "trials").glob("*/trial.json")}
    assert after == records


def test_ledger_carries_finished_trials_to_a_new_machine(smoke_sweep, tmp_path):
    """A sweep that outlives one machine: its finished trials go to a ledger folder, a new experiment (a fresh
    machine) restores them, reruns neither baselines nor finished search trials, gives Optuna the finished
    draws, runs only the missing trial, and writes the ledger back."""
    import shutil

    import optuna

    from clustergan.errors import ClusterganError
    from clustergan.tune.ledger import archive, ledger_trials
    from clustergan.tune.sweep import run_sweep

    ledger = tmp_path / "ledger"
    assert archive(smoke_sweep, ledger, expected=4) == 4
    assert "# Sweep `debug_sweep-smoke` (finished): 4 trials" in (ledger / "ranking.md").read_text()
    assert not list(ledger.rglob("*.pt")) and len(list(ledger.glob("trials/*/grid.png"))) == 4
    search = sorted((r for r in ledger_trials(ledger) if r.kind == "search"), key=lambda r: r.trial_id)
    assert all(set(r.sampled) >= {"cluster.k:off", "loss.lambda_kl1"} for r in search)  # Optuna's raw draws
    shutil.rmtree(ledger / "trials" / search[1].trial_id)  # as if the machine went before that trial

    with pytest.raises(
        ClusterganError,
        match=r"already holds a sweep, and the ledger restores into a new "
        r"experiment folder only",
    ):
        run_sweep(REPO / "sweeps" / "debug_sweep.yaml", storage=smoke_sweep, smoke_test=True, ledger=ledger)

    # the sweep's configuration changed since the ledger was written: its trials do not compare, refuse them
    from clustergan.tune.ledger import restore
    from clustergan.tune.sweep import SMOKE_OVERRIDES
    from clustergan.tune.sweep_config import load_sweep, with_values

    base = with_values(load_sweep(REPO / "sweeps" / "debug_sweep.yaml")[1], SMOKE_OVERRIDES)
    first = ledger_trials(ledger)[0]
    with pytest.raises(
        ClusterganError,
        match=rf"^--ledger {ledger}: trial {first.trial_id} \({first.kind}\) "
        r"was trained under another configuration than this sweep's "
        r"\(loss.lambda_l1: 10.0 in the ledger, 50.0 now\)\. The ledger belongs",
    ):
        restore(ledger, tmp_path / "changed", with_values(base, {"loss.lambda_l1": 50.0}))
    assert not (tmp_path / "changed").exists()

    # a slice capped at one trial runs the missing baseline (baselines come first) and leaves the search
    # trial for the next slice
    pix2pix = next(r for r in ledger_trials(ledger) if r.kind == "baseline:pix2pix")
    shutil.rmtree(ledger / "trials" / pix2pix.trial_id)
    with pytest.raises(ClusterganError, match=r"^--max-trials 0: give at least 1"):
        run_sweep(
            REPO / "sweeps" / "debug_sweep.yaml", storage=tmp_path / "s0", smoke_test=True, ledger=ledger, max_trials=0
        )
    capped = tmp_path / "slice"
    run_sweep(REPO / "sweeps" / "debug_sweep.yaml", storage=capped, smoke_test=True, ledger=ledger, max_trials=1)
    ran = [json.loads(p.read_text()) for p in capped.glob("trials/*/trial.json")]
    assert sorted(r["kind"] for r in ran if "restored_from" not in r) == ["baseline:pix2pix"]
    assert not (capped / "search").exists() and len(ledger_trials(ledger)) == 3
    # the slice ran what it was given, not the whole sweep: its experiment says so, not "finished"
    assert json.loads((capped / "sweep_state.json").read_text())["status"] == "partial: 3 of 4 trials"
    assert "# Sweep `debug_sweep-smoke` (partial: 3 of 4 trials): 3 trials" in (capped / "ranking.md").read_text()

    exp = tmp_path / "new_machine"
    run_sweep(REPO / "sweeps" / "debug_sweep.yaml", storage=exp, smoke_test=True, ledger=ledger)
    records = [json.loads(p.read_text()) for p in exp.glob("trials/*/trial.json")]
    assert sorted(r["kind"] for r in records) == ["baseline:msgan", "baseline:pix2pix", "search", "search"]
    new = [r for r in records if "restored_from" not in r]
    assert [r["kind"] for r in new] == ["search"] and new[0]["status"] == "finished"  # only the missing one ran
    assert not (exp / "baselines").exists()  # the baselines came from the ledger
    study = optuna.load_study(study_name="debug_sweep-smoke", storage=f"sqlite:///{exp / 'optuna.db'}")
    assert [t.params for t in study.trials[:1]] == [search[0].sampled]  # the ledger's draw, then the new one
    assert len(study.trials) == 2 and study.trials[0].values == [search[0].metrics[m] for m in ("ndb", "jsd", "lpips")]
    # a new draw, not one of the first run's draws again (a sampler seeded as that run's replays its draws)
    assert study.trials[1].params not in [r.sampled for r in search]
    assert len(ledger_trials(ledger)) == 4  # written back: the sweep is complete again
    assert "(finished): 4 trials" in (ledger / "ranking.md").read_text()


def _dataset_with_truncated_training_images(root: Path) -> Path:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", 4), ("test", 2)):
        (root / split).mkdir(parents=True)
        for i in range(n):
            path = root / split / f"{i}.jpg"
            Image.fromarray(rng.integers(0, 255, (32, 64, 3), dtype=np.uint8)).save(path, quality=90)
            if split == "train":  # keep the header, cut the data: passes the header check, fails to decode
                path.write_bytes(path.read_bytes()[:300])
    return root


def test_failed_trials_are_marked_and_the_sweep_continues(ray_session, tmp_path):
    import csv

    from clustergan.tune.sweep import run_sweep

    data = _dataset_with_truncated_training_images(tmp_path / "bad")
    sweep = _write(
        tmp_path / "bad_sweep.yaml",
        f"""
base: {REPO / "sweeps" / "debug.yaml"}
overrides: {{data.root: {data}, cluster.k: 0, loss.lambda_kl1: 0.0, loss.lambda_km: 0.0, train.max_steps: 2}}
space: {{loss.lambda_ms: {{type: float, low: 0.5, high: 1.0}}}}
num_trials: 2
baselines: false
""",
    )
    exp = run_sweep(sweep, storage=tmp_path / "exp")
    rows = list(csv.DictReader((exp / "ranking.csv").open()))
    assert [r["status"] for r in rows] == ["failed", "failed"]  # both ran: the first failure did not stop it
    assert all(
        r["error"].startswith("DataError: cannot read image ") and "replace or remove the file" in r["error"]
        for r in rows
    )
    assert not (exp / "best_config.yaml").exists()


def test_asha_scheduler_stops_worse_trials_and_ranks_them_apart(ray_session, tmp_path):
    """ASHA on a per-epoch training loss: G_total grows with lambda_l1 (searched over 1-100), so a trial whose
    lambda_l1 is above the median of the ones before it is stopped at the first rung. The Optuna sampler is
    seeded, so which trials stop is fixed; the test checks that some stopped, that they trained fewer epochs
    than the finished ones, and that the report ranks them apart."""
    import csv

    from clustergan.tune.sweep import run_sweep

    sweep = _write(
        tmp_path / "asha.yaml",
        f"""
base: {REPO / "sweeps" / "debug.yaml"}
overrides: {{cluster.k: 0, loss.lambda_kl1: 0.0, loss.lambda_km: 0.0, data.synth.n_train: 24, data.synth.n_test: 4,
            train.epochs: 4, train.threads: 1, train.checkpoint_every: 4, train.sample_every: 4}}
space: {{loss.lambda_l1: {{type: loguniform, low: 1.0, high: 100.0}}}}
num_trials: 4
baselines: false
scheduler: {{type: asha, metric: G_total, mode: min, grace_period: 1, reduction_factor: 2}}
""",
    )
    exp = run_sweep(sweep, storage=tmp_path / "exp")
    rows = list(csv.DictReader((exp / "ranking.csv").open()))
    statuses = [r["status"] for r in rows]
    assert len(rows) == 4 and set(statuses) == {"finished", "stopped early"}, statuses
    assert statuses == sorted(statuses, key=lambda s: s != "finished")  # finished first, stopped ones apart
    epochs = {}
    for path in (exp / "trials").glob("*/trial.json"):
        record = json.loads(path.read_text())
        ckpts = sorted((path.parent / "seed0" / "checkpoints").glob("epoch_*.pt"))
        epochs[record["status"]] = epochs.get(record["status"], []) + [len(ckpts)]
    # finished trials wrote their epoch-4 checkpoint; a trial stopped at the first rung never got there
    assert set(epochs["finished"]) == {1} and set(epochs["running"]) == {0}, epochs


# ------------------------------------------------------------------------------------ a sweep at a URI


def test_sweep_stored_at_a_uri_is_mirrored_there_and_resumes_from_it_alone(ray_session, tmp_path):
    """``--storage URI`` (``file://`` here; ``s3://`` and ``gs://`` take the same pyarrow calls): Ray Tune's
    state and all our files land at the URI, the report in the driver's local copy; a driver on a new machine
    (an empty local copy) resumes from the URI alone and reruns nothing."""
    import csv

    from clustergan.cli import main
    from clustergan.errors import ClusterganError
    from clustergan.tune.sweep import run_sweep

    bucket = tmp_path / "bucket" / "exp"
    uri = f"file://{bucket}"
    sweep = _write(
        tmp_path / "uri_sweep.yaml",
        f"""
name: uri_sweep
base: {REPO / "sweeps" / "debug.yaml"}
overrides: {{cluster.k: 2, data.synth.n_train: 24, data.synth.n_test: 4, train.epochs: 1, train.max_steps: 2,
            train.threads: 1}}
space: {{loss.lambda_ms: {{type: float, low: 0.5, high: 1.0}}}}
num_trials: 2
baselines: false
""",
    )
    local = run_sweep(sweep, storage=uri, local=tmp_path / "laptop")
    assert local == (tmp_path / "laptop").resolve()
    rows = list(csv.DictReader((local / "ranking.csv").open()))
    assert [r["kind"] for r in rows] == ["search", "search"]
    assert all(r["status"] == "finished" and Path(r["sample_grid"]).is_file() for r in rows)

    # at the URI: Tune's experiment, the driver's files, the report, the clusters, every trial's folder
    for name in ("search", "optuna.db", "sweep.yaml", "ranking.csv", "ranking.md", "pareto.png", "best_config.yaml"):
        assert (bucket / name).exists(), name
    assert json.loads((bucket / "sweep_state.json").read_text())["status"] == "finished"
    assert sorted(p.name for p in (bucket / "clusters").iterdir()) == ["k2"]
    records = {p.parent.name: json.loads(p.read_text()) for p in bucket.glob("trials/*/trial.json")}
    assert len(records) == 2 and all(r["status"] == "finished" for r in records.values())
    assert all(list((bucket / "trials" / t).glob("seed0/checkpoints/*.pt")) for t in records)

    with pytest.raises(ClusterganError, match=r"exp: this sweep already ran here; pass --resume"):
        run_sweep(sweep, storage=uri, local=tmp_path / "new_machine")
    with pytest.raises(
        ClusterganError,
        match=r"holds the local copy of another sweep \(sweep_state.json: remote "
        r"None\); give this one its own --local folder",
    ):
        (tmp_path / "other").mkdir()
        (tmp_path / "other" / "sweep_state.json").write_text('{"status": "finished"}')
        run_sweep(sweep, storage=uri, local=tmp_path / "other", resume=True)

    # the first machine's copy is gone (another machine): Tune's restored searcher must open the new copy's
    # optuna.db, not the path the sweep started with
    (tmp_path / "laptop").rename(tmp_path / "laptop-gone")
    again = run_sweep(sweep, storage=uri, local=tmp_path / "new_machine", resume=True)
    after = {p.parent.name: json.loads(p.read_text()) for p in bucket.glob("trials/*/trial.json")}
    assert {t: r["metrics"] for t, r in after.items()} == {t: r["metrics"] for t, r in records.items()}
    assert {t: r["finished"] for t, r in after.items()} == {t: r["finished"] for t, r in records.items()}
    new_rows = list(csv.DictReader((again / "ranking.csv").open()))
    assert [(r["trial"], r["ndb"], r["lpips"]) for r in new_rows] == [(r["trial"], r["ndb"], r["lpips"]) for r in rows]
    assert all(Path(r["sample_grid"]).is_file() and r["sample_grid"].startswith(str(again)) for r in new_rows)

    # `clustergan report URI` into a third copy
    (bucket / "ranking.md").unlink()
    assert main(["report", uri, "--local", str(tmp_path / "reader")]) == 0
    assert (bucket / "ranking.md").is_file() and (tmp_path / "reader" / "pareto.png").is_file()
    # the page in the reader's copy shows the grids and the cluster overview pulled from the URI
    page = (tmp_path / "reader" / "report.html").read_text()
    assert 'src="clusters/k2/clusters.png"' in page and (tmp_path / "reader" / "clusters/k2/clusters.png").is_file()
    assert page.count('src="trials/') == 2 and "not there yet" not in page
    assert (bucket / "report.html").is_file() and (bucket / "hparams").is_dir()


def test_a_trial_on_another_node_pulls_the_cluster_statistics_into_its_scratch(tmp_path, monkeypatch):
    from clustergan.errors import ClusterganError
    from clustergan.tune import storage as st
    from clustergan.tune.records import TrialSpec
    from clustergan.tune.remote_fs import Remote

    stats = tmp_path / "bucket" / "clusters" / "k3"
    stats.mkdir(parents=True)
    (stats / "cluster_stats.npz").write_bytes(b"arrays")
    (stats / "cluster_stats.json").write_text("{}")
    monkeypatch.setattr(st.tempfile, "gettempdir", lambda: str(tmp_path / "node_b_tmp"))
    spec = TrialSpec(
        name="exp",
        base={},
        space={},
        seeds=[0],
        protocol="sweep",
        workers=0,
        cpus_per_worker=1.0,
        gpus_per_worker=0.0,
        report_every_s=30.0,
        storage=str(tmp_path / "driver"),
        cluster_dirs={3: str(tmp_path / "driver" / "clusters" / "k3")},
        remote=f"file://{tmp_path / 'bucket'}",
        driver_node="A",
    )
    driver = st.trial_storage(spec, "A")
    assert driver.local == tmp_path / "driver"  # the driver's node: the driver's own copy
    assert st.cluster_dir(spec, 3, driver) == spec.cluster_dirs[3]
    node_b = st.trial_storage(spec, "B")
    root = node_b.local
    assert root == tmp_path / "node_b_tmp" / "clustergan-sweeps" / "exp"
    assert st.cluster_dir(spec, 3, node_b) == str(root / "clusters" / "k3")
    assert (root / "clusters" / "k3" / "cluster_stats.npz").read_bytes() == b"arrays"
    assert [p.name for p in (root / "clusters").iterdir()] == ["k3"]  # no half-copied folder left beside it
    with pytest.raises(
        ClusterganError,
        match=r"bucket/clusters/k5: the driver's cluster statistics for k=5 are "
        r"missing at the sweep's storage URI",
    ):
        st.cluster_dir(spec, 5, node_b)
    with pytest.raises(
        ClusterganError,
        match=r"--storage nope://x: pyarrow cannot open this URI \(Unrecognized "
        r"filesystem type in URI: nope://x\)",
    ):
        Remote("nope://x")


def test_a_folder_push_uploads_changed_and_small_files_only(tmp_path):
    """A trial pushes its folder after every seed: earlier checkpoints (large, unchanged) are not uploaded
    again; records (small) always are; a large file that changed is."""
    import clustergan.tune.remote_fs as rm

    trial = tmp_path / "trial"
    (trial / "seed0" / "checkpoints").mkdir(parents=True)
    big = trial / "seed0" / "checkpoints" / "epoch_0005.pt"
    big.write_bytes(b"w" * rm.SMALL)
    (trial / "trial.json").write_text('{"status": "running"}')
    remote = rm.Remote(f"file://{tmp_path / 'bucket'}")
    assert remote.push(trial, "trials/t0") == 2
    assert (
        tmp_path / "bucket" / "trials" / "t0" / "seed0" / "checkpoints" / "epoch_0005.pt"
    ).read_bytes() == big.read_bytes()
    (trial / "seed1").mkdir()
    (trial / "seed1" / "epoch_0005.pt").write_bytes(b"v" * rm.SMALL)
    (trial / "trial.json").write_text('{"status": "finished"}')
    assert remote.push(trial, "trials/t0") == 2  # the new checkpoint and the record, not seed 0's checkpoint
    assert remote.read_json("trials/t0/trial.json") == {"status": "finished"}
    big.write_bytes(b"x" + b"w" * rm.SMALL)  # rewritten, another size
    assert remote.push(trial, "trials/t0") == 2
    assert (tmp_path / "bucket" / "trials" / "t0" / "seed0" / "checkpoints" / "epoch_0005.pt").read_bytes()[:1] == b"x"
    assert remote.push(tmp_path / "missing", "trials/t1") == 0


def test_the_last_checkpoint_is_fetched_from_ray_storage_when_rank0_ran_elsewhere(tmp_path):
    """Rank 0 on another node without a shared filesystem: the run folder here has no checkpoint; the copy
    Ray reported to the run's storage is fetched, so that evaluation here finds it."""
    from types import SimpleNamespace

    import ray.train

    from clustergan.errors import ClusterganError
    from clustergan.train.ray_train import fetch_final_checkpoint

    reported = tmp_path / "ray_storage" / "checkpoint_000001"
    reported.mkdir(parents=True)
    (reported / "epoch_0003.pt").write_bytes(b"weights")
    result = SimpleNamespace(checkpoint=ray.train.Checkpoint.from_directory(str(reported)))
    run = tmp_path / "run"
    assert fetch_final_checkpoint(result, run) == run / "checkpoints" / "epoch_0003.pt"
    assert (run / "checkpoints" / "epoch_0003.pt").read_bytes() == b"weights"
    (run / "checkpoints" / "epoch_0003.pt").write_bytes(b"rank 0 wrote it here")  # same node: left alone
    fetch_final_checkpoint(result, run)
    assert (run / "checkpoints" / "epoch_0003.pt").read_bytes() == b"rank 0 wrote it here"
    assert fetch_final_checkpoint(SimpleNamespace(checkpoint=None), run) is None
    (reported / "epoch_0003.pt").unlink()
    with pytest.raises(ClusterganError, match=r"checkpoint_000001 holds no epoch_\*\.pt file"):
        fetch_final_checkpoint(result, run)


def test_cli_train_with_two_ray_workers_end_to_end(ray_session, tmp_path):
    """``clustergan train --workers 2``: the CLI's Ray Train path (gloo), cluster-conditioned; rank 0 writes
    the checkpoint, the grid and the TensorBoard events into the run folder, and Ray keeps its run state."""
    from clustergan.cli import main
    from clustergan.train.checkpoint import load_checkpoint

    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--config",
                str(REPO / "sweeps" / "debug.yaml"),
                "--workers",
                "2",
                "cluster.k=2",
                "loss.lambda_kl1=0.0",
                "loss.lambda_km=0.0",  # cluster-conditioned, no encoder in the workers
                "data.synth.n_train=16",
                "data.synth.n_test=4",
                "train.epochs=1",
                "train.batch_size=4",
                "train.threads=1",
                f"out={run}",
                "name=cli2",
            ]
        )
        == 0
    )
    state = load_checkpoint(run / "checkpoints" / "epoch_0001.pt")
    assert state["epoch"] == 1 and state["global_step"] == 2  # 16 images / (2 workers x batch 4)
    assert (run / "samples" / "epoch_0001.png").is_file() and list((run / "tensorboard").glob("events.*"))
    assert (run / "ray" / "cli2").is_dir()  # Ray Train's storage for this run (checkpoint copies, state)


def test_sweep_adopt_evaluates_a_baseline_trained_elsewhere_and_refuses_another_training(smoke_sweep, tmp_path, capsys):
    """``clustergan sweep --adopt baseline:pix2pix=FOLDER``: a folder of seed<N>/ runs (as a reproduction lays
    them out) holding pix2pix's seed 0 stands for the sweep's pix2pix baseline: the trial copies its training,
    trains nothing (its checkpoints are the source's, untouched) and evaluates it under the sweep's protocol.
    An MSGAN run offered as pix2pix's, or a kind the sweep has no trial of, is refused before anything is
    written."""
    import shutil

    from clustergan.errors import ClusterganError
    from clustergan.tune.ledger import archive, ledger_trials
    from clustergan.tune.sweep import run_sweep

    ledger = tmp_path / "ledger"
    archive(smoke_sweep, ledger, expected=4)
    by_kind = {r.kind: r for r in ledger_trials(ledger)}
    shutil.rmtree(ledger / "trials" / by_kind["baseline:pix2pix"].trial_id)  # the baseline left to train
    shelf, wrong = tmp_path / "reproduction" / "pix2pix", tmp_path / "wrong"
    shutil.copytree(smoke_sweep / "trials" / by_kind["baseline:pix2pix"].trial_id / "seed0", shelf / "seed0")
    shutil.copytree(smoke_sweep / "trials" / by_kind["baseline:msgan"].trial_id / "seed0", wrong / "seed0")
    stamps = {p.name: p.stat().st_mtime_ns for p in (shelf / "seed0" / "checkpoints").iterdir()}
    sweep_yaml = REPO / "sweeps" / "debug_sweep.yaml"

    def run(storage, *adopt):
        return run_sweep(sweep_yaml, storage=storage, smoke_test=True, ledger=ledger, max_trials=1, adopt=list(adopt))

    with pytest.raises(ClusterganError) as err:
        run(tmp_path / "refused", f"baseline:pix2pix={wrong}")
    assert str(err.value).startswith(
        f"--adopt baseline:pix2pix={wrong}: seed0 is not the training the sweep runs (loss.lambda_ms: "
    )
    assert str(err.value).endswith("; leave it out to train it")
    with pytest.raises(ClusterganError) as err:
        run(tmp_path / "refused", f"control:hand={shelf}")
    assert str(err.value) == (
        f"--adopt 'control:hand={shelf}': 'control:hand' is not a fixed trial of sweep 'debug_sweep'; "
        "its fixed trials: ['baseline:pix2pix', 'baseline:msgan']"
    )
    assert not (tmp_path / "refused").exists()

    capsys.readouterr()
    exp = run(tmp_path / "adopting", f"baseline:pix2pix={shelf}")
    out = capsys.readouterr().out
    assert f"--adopt baseline:pix2pix seed 0: adopted from {shelf / 'seed0'}, evaluated under protocol 'sweep'" in out
    ran = [json.loads(p.read_text()) for p in exp.glob("trials/*/trial.json")]
    new = [r for r in ran if "restored_from" not in r]
    assert [(r["kind"], r["status"]) for r in new] == [("baseline:pix2pix", "finished")]
    seed0 = new[0]["per_seed"]["0"]
    assert seed0["adopted_from"] == str(shelf / "seed0")
    run_dir = Path(seed0["run_dir"])
    assert {p.name: p.stat().st_mtime_ns for p in (run_dir / "checkpoints").iterdir()} == stamps  # trained nothing
    assert json.loads((run_dir / "adopted.json").read_text())["adopted_from"] == str(shelf / "seed0")
    first = by_kind["baseline:pix2pix"].per_seed["0"]
    assert seed0["ndb"] == first.ndb and seed0["jsd"] == pytest.approx(first.jsd, abs=1e-6)
    assert len(ledger_trials(ledger)) == 4  # the adopted baseline went into the ledger like a trained one
