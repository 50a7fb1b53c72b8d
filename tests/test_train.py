"""End-to-end: every CLI command on tiny procedural data; resume equals an uninterrupted run; a NaN loss
stops the run with a clear message and keeps the last good checkpoint."""

from pathlib import Path

import torch

from clustergan.cli import main
from clustergan.train.checkpoint import latest_checkpoint, load_checkpoint

REPO = Path(__file__).resolve().parents[1]
DEBUG = str(REPO / "sweeps" / "debug.yaml")
TINY = ["data.synth.n_train=16", "data.synth.n_test=4", "data.synth.size=32", "train.batch_size=8"]
MSGAN_TINY = TINY + ["cluster.k=0", "loss.lambda_kl1=0", "loss.lambda_km=0"]


def _train(out, *extra):
    return main(["train", "--config", DEBUG, f"out={out}", *TINY, *extra])


def test_train_sample_eval_cluster_end_to_end(tmp_path, capsys):
    run = tmp_path / "run"
    assert _train(run, "train.epochs=1") == 0
    for rel in (
        "config.yaml",
        "config.json",
        "clusters/cluster_stats.npz",
        "clusters/report.json",
        "clusters/clusters.png",
        "samples/epoch_0001.png",
        "checkpoints/epoch_0001.pt",
    ):
        assert (run / rel).is_file(), rel
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    state = load_checkpoint(run / "checkpoints" / "epoch_0001.pt")
    assert state["config"]["cluster"]["k"] == 4 and state["provenance"]["git_commit"]
    assert abs(sum(state["cluster_frequencies"]) - 1.0) < 1e-9

    from clustergan.train.sampling import load_generator

    model = load_generator(run)
    x = torch.zeros(2, 3, 32, 32)
    a = model.generate(x, torch.tensor([0, 0]), torch.Generator().manual_seed(1))
    b = model.generate(x, torch.tensor([0, 0]), torch.Generator().manual_seed(1))
    assert a.shape == (2, 3, 32, 32) and torch.equal(a, b)

    data_root = Path(state["config"]["data"]["root"])
    out = tmp_path / "samples"
    assert (
        main(
            [
                "sample",
                "--run",
                str(run),
                "--input",
                str(data_root / "test"),
                "--cluster",
                "all",
                "--num-z",
                "2",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert (out / "grid.png").is_file() and len(list(out.glob("*_cluster3_z1.png"))) == 4

    assert main(["eval", "--run", str(run), "--protocol", "sweep", "--ndb-bins", "4"]) == 0
    import json

    metrics = json.loads((run / "metrics.json").read_text())
    for key in ("ndb", "jsd", "lpips", "mode_coverage", "protocol", "provenance"):
        assert key in metrics, key
    assert metrics["protocol"]["cluster_choice"] == "frequency" and metrics["protocol"]["ndb_bins"] == 4
    assert 0.0 <= metrics["mode_coverage"] <= 1.0 and metrics["lpips"] >= 0.0

    assert main(["cluster", "--config", DEBUG, *TINY, "cluster.k=2", "--out", str(tmp_path / "k2")]) == 0
    assert (tmp_path / "k2" / "montage_cluster_1.png").is_file()


def test_periodic_evaluation_in_training(tmp_path, capsys):
    import json

    run = tmp_path / "run"
    assert (
        _train(
            run, *MSGAN_TINY[4:], "train.epochs=1", "train.eval_every=1", "train.eval_ndb_bins=4", "loss.lambda_l1=0"
        )
        == 0
    )
    result = json.loads((run / "eval" / "metrics_epoch_0001.json").read_text())
    assert result["protocol"]["name"] == "sweep" and result["protocol"]["ndb_bins"] == 4
    out = capsys.readouterr().out
    assert "G_ms=" in out and "G_l1=" not in out  # lambda_l1=0 skips the L1 term entirely
    assert 0 <= result["ndb"] <= 4 and result["lpips"] > 0
    # the monitor's TensorBoard scalars: the epoch's losses and the evaluation, both at step 1 (epoch 1)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "tensorboard")).Reload()
    tags = events.Tags()["scalars"]
    assert {"train/G_ms", "train/D", "eval/ndb", "eval/lpips"} <= set(tags)
    (ndb,) = events.Scalars("eval/ndb")
    assert ndb.step == 1 and ndb.value == result["ndb"]
    assert [e.step for e in events.Scalars("train/D")] == [1]


def test_resume_matches_uninterrupted(tmp_path):
    assert _train(tmp_path / "full", *MSGAN_TINY[4:], "train.epochs=2") == 0
    assert _train(tmp_path / "cut", *MSGAN_TINY[4:], "train.epochs=1") == 0
    assert _train(tmp_path / "cut", *MSGAN_TINY[4:], "train.epochs=2", "--resume") == 0
    full = load_checkpoint(tmp_path / "full" / "checkpoints" / "epoch_0002.pt")
    cut = load_checkpoint(tmp_path / "cut" / "checkpoints" / "epoch_0002.pt")
    assert full["global_step"] == cut["global_step"] == 4
    for name, tensor in full["G"].items():
        assert torch.equal(tensor, cut["G"][name]), name


def test_unconditional_discriminator_lever(tmp_path):
    # model.d_condition=none: G still gets the cluster index and the cluster losses, D gets none (no embedding)
    assert _train(tmp_path / "run", "cluster.k=2", "model.d_condition=none", "train.max_steps=1") == 0
    state = load_checkpoint(latest_checkpoint(tmp_path / "run" / "checkpoints"))
    assert state["config"]["model"]["d_condition"] == "none"
    assert not any("embedding" in name for name in state["D"])
    assert any("emb" in name for name in state["G"])  # the generator is still cluster-conditioned
    assert _train(tmp_path / "proj", "cluster.k=2", "train.max_steps=1") == 0
    proj = load_checkpoint(latest_checkpoint(tmp_path / "proj" / "checkpoints"))
    assert [name for name in proj["D"] if "embedding" in name] == [
        "scales.0.embedding.weight",
        "scales.1.embedding.weight",
    ]


def test_nan_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch, capsys):
    import clustergan.train.loop as loop

    real = loop.mode_seeking_loss
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        value = real(*args, **kwargs)
        return value * float("nan") if calls["n"] >= 3 else value

    monkeypatch.setattr(loop, "mode_seeking_loss", flaky)
    code = _train(tmp_path / "run", *MSGAN_TINY[4:], "train.epochs=3")
    assert code == 2
    err = capsys.readouterr().err
    assert "loss G_ms, G_total became NaN/Inf at epoch 1, step 2; the last good checkpoint is kept" in err
    assert latest_checkpoint(tmp_path / "run" / "checkpoints").name == "epoch_0001.pt"


def test_cli_user_errors_have_no_traceback(tmp_path, capsys):
    assert main(["train", "--config", str(tmp_path / "missing.yaml")]) == 2
    assert "config file not found" in capsys.readouterr().err
    assert main(["train", "--config", DEBUG, "loss.lambda_kml=1"]) == 2
    assert "unknown key `loss.lambda_kml`" in capsys.readouterr().err
    assert main(["sample", "--run", str(tmp_path), "--input", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "no checkpoint found" in capsys.readouterr().err
    assert main(["train", "--config", DEBUG, "data.root=" + str(tmp_path / "nodata")]) == 2
    assert str(tmp_path / "nodata") in capsys.readouterr().err


def test_pix2pix_dropout_samples_are_fixed_by_the_generator_and_leave_the_global_rng_alone(tmp_path):
    # pix2pix's only noise is test-time dropout; it must follow the sampling generator like z does, or the
    # same evaluation seed gives different pix2pix metrics on every call
    from clustergan.config import load_config
    from clustergan.train.builders import build_generator
    from clustergan.train.sampling import TrainedGenerator

    cfg = load_config(
        DEBUG,
        [
            "model.nz=0",
            "model.dropout=0.5",
            "cluster.k=0",
            "loss.lambda_ms=0",
            "loss.lambda_kl1=0",
            "loss.lambda_km=0",
            f"out={tmp_path}",
        ],
    )
    torch.manual_seed(0)
    state = {"config": cfg.to_dict(), "G": build_generator(cfg).state_dict(), "epoch": 0}
    model = TrainedGenerator(state, tmp_path / "x.pt")
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = model.generate(x, None, torch.Generator().manual_seed(1))
    assert torch.equal(torch.get_rng_state(), before)
    torch.manual_seed(456)  # another global state: the same images
    assert torch.equal(model.generate(x, None, torch.Generator().manual_seed(1)), a)
    assert not torch.equal(model.generate(x, None, torch.Generator().manual_seed(2)), a)  # dropout is live


def test_training_uses_fused_adam_which_takes_the_loop_adams_steps(tmp_path):
    # train.fused_adam (default true) swaps torch's per-tensor Adam loop for its fused kernel: ~5x less time
    # in the optimizer on CPU. It must be the same optimizer: with the same gradients the weights agree to
    # float rounding, not just "close" (a lost beta or lr would move them by ~lr per step).
    from clustergan.config import load_config
    from clustergan.train.builders import prepare_run
    from clustergan.train.dist import LocalContext
    from clustergan.train.loop import Trainer

    def trainer(*extra):
        cfg = load_config(DEBUG, [f"out={tmp_path / 'run'}", *MSGAN_TINY, "train.beta2=0.99", *extra])
        return Trainer(prepare_run(cfg), LocalContext(device="cpu"))

    fused, loop = trainer(), trainer("train.fused_adam=false")
    assert fused.opt_G.defaults["fused"] and fused.opt_D.defaults["fused"]
    assert not loop.opt_G.defaults["fused"] and not loop.opt_D.defaults["fused"]
    loop.G.load_state_dict(fused.G.state_dict())
    start = {k: v.clone() for k, v in fused.G.state_dict().items()}
    g = torch.Generator().manual_seed(0)
    for _ in range(4):
        for pf, pl in zip(fused.G.parameters(), loop.G.parameters(), strict=False):
            pf.grad = torch.randn(pf.shape, generator=g) * 1e-3
            pl.grad = pf.grad.clone()
        fused.opt_G.step()
        loop.opt_G.step()
    after_f, after_l = fused.G.state_dict(), loop.G.state_dict()
    worst = max(float((after_f[k] - after_l[k]).abs().max()) for k in after_f)
    moved = max(float((after_f[k] - start[k]).abs().max()) for k in after_f)
    assert worst < 1e-8, worst
    assert moved > 3 * fused.config.train.lr  # 4 Adam steps of ~lr each


def test_eval_assigns_target_clusters_in_the_statistics_feature_space(monkeypatch):
    # Cluster means are the targets' own features at encoder.input_size 64: every target is nearest its own
    # mean only when eval encodes at that size too (at the network's 224 px the features are another space).
    from types import SimpleNamespace

    from clustergan.clustering import ClusterStats, extract_features
    from clustergan.config import TrainConfig
    from clustergan.encoders import build_encoder
    from clustergan.train.evaluate import _target_clusters

    torch.manual_seed(0)
    targets = torch.rand(6, 3, 32, 32) * 2 - 1
    means = extract_features(build_encoder("efficientnet_lite0", "random", 64), targets)
    monkeypatch.setattr(ClusterStats, "load", classmethod(lambda cls, path: SimpleNamespace(means=means)))
    config = TrainConfig.model_validate(
        {
            "encoder": {"name": "efficientnet_lite0", "weights": "random", "input_size": 64},
            "cluster": {"k": 6, "stats_dir": "stats"},
        }
    )
    assert _target_clusters(SimpleNamespace(config=config), targets).tolist() == list(range(6))


def test_a_run_keeps_its_newest_checkpoints_and_resumes_from_them(tmp_path):
    def kept(run):
        return sorted(p.name for p in (run / "checkpoints").iterdir())

    short = [*MSGAN_TINY[4:], "train.epochs_decay=0"]
    assert _train(tmp_path / "two", *short, "train.epochs=3") == 0  # the default keeps 2
    assert kept(tmp_path / "two") == ["epoch_0002.pt", "epoch_0003.pt"]
    assert _train(tmp_path / "two", *short, "train.epochs=4", "--resume") == 0
    assert kept(tmp_path / "two") == ["epoch_0003.pt", "epoch_0004.pt"]
    assert load_checkpoint(tmp_path / "two" / "checkpoints" / "epoch_0004.pt")["global_step"] == 8
    assert _train(tmp_path / "all", *short, "train.epochs=3", "train.keep_checkpoints=null") == 0
    assert kept(tmp_path / "all") == ["epoch_0001.pt", "epoch_0002.pt", "epoch_0003.pt"]
