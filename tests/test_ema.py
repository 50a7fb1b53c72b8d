"""The EMA generator (train.ema): the update's golden numbers, its wiring into the training step, checkpoints
and resume, and evaluation / sampling using it by default (the raw G on request, or with a note when a
checkpoint has none)."""

import json
from pathlib import Path

import pytest
import torch

from clustergan.cli import main
from clustergan.train.checkpoint import load_checkpoint
from clustergan.train.ema import GeneratorEMA, ema_beta

REPO = Path(__file__).resolve().parents[1]
DEBUG = str(REPO / "sweeps" / "debug.yaml")
# 16 training images in batches of 8 (2 steps an epoch), no clusters: no encoder, the cheapest real run
TINY = [
    "data.synth.n_train=16",
    "data.synth.n_test=4",
    "data.synth.size=32",
    "train.batch_size=8",
    "cluster.k=0",
    "loss.lambda_kl1=0",
    "loss.lambda_km=0",
]
EMA = ["train.ema.half_life_images=16", "train.ema.rampup=null"]  # beta 0.5 ** (8 / 16) per step: G_ema != G


def _train(out, *extra):
    return main(["train", "--config", DEBUG, f"out={out}", *TINY, *extra])


class _One(torch.nn.Module):
    """One float64 parameter and one buffer: the update's numbers can be checked exactly."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
        self.register_buffer("count", torch.zeros(1, dtype=torch.float64))


def test_ema_update_golden_numbers():
    # half-life 100 images, batches of 10, ramp-up 0.05: the half-life is min(100, 0.05 * images_seen)
    assert ema_beta(100, 0.05, 0, 10) == 0.0  # the first step copies G (half-life 0)
    assert ema_beta(100, 0.05, 10, 10) == 0.5**20 == 9.5367431640625e-07  # half-life 0.5 images
    assert ema_beta(100, 0.05, 20, 10) == 0.5**10  # half-life 1 image
    assert ema_beta(100, 0.05, 4000, 10) == ema_beta(100, None, 0, 10) == 0.5**0.1 == 0.9330329915368074

    G = _One()
    ema = GeneratorEMA(G, half_life_images=100, rampup=0.05, batch_images=10)
    assert not any(p.requires_grad for p in ema.module.parameters()) and not ema.module.training
    for images_seen, value, expected in ((0, 1.0, 1.0), (10, 3.0, 2.999998092651367), (20, 5.0, 4.998046873137355)):
        with torch.no_grad():
            G.w.fill_(value)
            G.count.fill_(images_seen)
        ema.update(G, images_seen)
        # ema = beta * ema + (1 - beta) * param: 3 - 2 * 2**-20, then 5 - (5 - 2.999998...) * 2**-10
        assert float(ema.module.w) == pytest.approx(expected, rel=1e-15, abs=0)
        assert float(ema.module.count) == images_seen  # buffers are copied, not averaged
    assert float(G.w.detach()) == 5.0  # G itself is left alone

    # without ramp-up: after one half-life (10 batches of 10 images) half the weight is on the new value
    G = _One()
    ema = GeneratorEMA(G, half_life_images=100, rampup=None, batch_images=10)
    with torch.no_grad():
        G.w.fill_(1.0)
    for step in range(10):
        assert ema.update(G, 10 * step) == 0.9330329915368074
    assert float(ema.module.w) == pytest.approx(0.5, rel=1e-14)


def test_ema_is_off_by_default_and_for_configs_without_the_key():
    from clustergan.config import ConfigError, TrainConfig, load_config

    cfg = load_config(DEBUG)
    assert cfg.train.ema.half_life_images == 0 and cfg.train.ema.rampup == 0.05
    old = cfg.to_dict()
    del old["train"]["ema"]  # a run saved before train.ema existed keeps meaning "no EMA"
    assert TrainConfig.model_validate(old).train.ema.half_life_images == 0
    for bad in ("train.ema.half_life_images=-1", "train.ema.rampup=0", "train.ema.beta=0.9"):
        with pytest.raises(ConfigError, match="train.ema"):
            load_config(DEBUG, [bad])


def test_training_step_updates_the_ema_of_the_global_batch(tmp_path):
    # the Trainer folds G in after each opt_G.step(), counting the images of the steps before (all ranks')
    from clustergan.config import load_config
    from clustergan.train.builders import prepare_run
    from clustergan.train.dist import LocalContext
    from clustergan.train.loop import Trainer

    cfg = prepare_run(
        load_config(DEBUG, [f"out={tmp_path / 'run'}", *TINY, "train.ema.half_life_images=16", "train.ema.rampup=0.5"])
    )
    trainer = Trainer(cfg, LocalContext(device="cpu"))
    trainer.epoch = 0
    assert trainer.ema.batch_images == 8
    G = trainer.G
    reference = [p.detach().double().clone() for p in G.parameters()]
    batches = list(trainer.loader) * 2
    for k, batch in enumerate(batches[:3]):
        trainer.step(batch)
        beta = 0.5 ** (8 / max(min(16, 8 * k * 0.5), 1e-8))  # 0, 0.25, 0.5
        pairs = zip(reference, G.parameters(), strict=True)
        reference = [beta * r + (1 - beta) * p.detach().double() for r, p in pairs]
    pairs = zip(trainer.ema.module.parameters(), reference, strict=True)
    worst = max(float((e.double() - r).abs().max()) for e, r in pairs)
    assert worst < 1e-6, worst
    assert any(not torch.equal(e, p) for e, p in zip(trainer.ema.module.parameters(), G.parameters(), strict=False))

    class TwoRanks(LocalContext):
        world_size = 2

    assert Trainer(cfg, TwoRanks(device="cpu")).ema.batch_images == 16  # batch_size * world size
    off = prepare_run(load_config(DEBUG, [f"out={tmp_path / 'off'}", *TINY]))
    trainer = Trainer(off, LocalContext(device="cpu"))
    assert trainer.ema is None and "G_ema" not in trainer.state_dict(0)


def test_checkpoint_holds_g_ema_and_resume_restores_it(tmp_path, capsys):
    assert _train(tmp_path / "full", *EMA, "train.epochs=2") == 0
    assert _train(tmp_path / "cut", *EMA, "train.epochs=1") == 0
    first = load_checkpoint(tmp_path / "cut" / "checkpoints" / "epoch_0001.pt")
    assert set(first["G_ema"]) == set(first["G"])
    assert any(not torch.equal(first["G_ema"][k], first["G"][k]) for k in first["G"])
    assert _train(tmp_path / "cut", *EMA, "train.epochs=2", "--resume") == 0
    full = load_checkpoint(tmp_path / "full" / "checkpoints" / "epoch_0002.pt")
    cut = load_checkpoint(tmp_path / "cut" / "checkpoints" / "epoch_0002.pt")
    for name, tensor in full["G_ema"].items():  # the average went on from the checkpoint's, as uninterrupted
        assert torch.equal(tensor, cut["G_ema"][name]), name

    # EMA turned on when resuming a run trained without it: the average starts from the checkpoint's G
    assert _train(tmp_path / "plain", "train.epochs=1") == 0
    assert "G_ema" not in load_checkpoint(tmp_path / "plain" / "checkpoints" / "epoch_0001.pt")
    capsys.readouterr()
    assert _train(tmp_path / "plain", *EMA, "train.epochs=2", "--resume") == 0
    assert "checkpoint has no EMA generator (G_ema): the EMA starts from its G" in capsys.readouterr().out
    assert "G_ema" in load_checkpoint(tmp_path / "plain" / "checkpoints" / "epoch_0002.pt")


def test_eval_and_sample_use_the_ema_generator_by_default(tmp_path, capsys):
    import clustergan
    from clustergan.train.sampling import load_generator

    run, plain = tmp_path / "ema", tmp_path / "plain"
    assert _train(run, *EMA, "train.epochs=1") == 0
    assert _train(plain, "train.epochs=1") == 0
    state = load_checkpoint(run / "checkpoints" / "epoch_0001.pt")

    def weights(model):
        return model.G.state_dict()

    for model in (load_generator(run), clustergan.load_generator(run, "cpu")):  # the public API, positional
        assert model.generator == "ema" and model.generator_note is None
        assert all(torch.equal(v, state["G_ema"][k]) for k, v in weights(model).items())
    raw = load_generator(run, "cpu", generator="raw")
    assert raw.generator == "raw" and raw.generator_note is None
    assert all(torch.equal(v, state["G"][k]) for k, v in weights(raw).items())
    fallback = load_generator(plain)
    assert fallback.generator == "raw" and "checkpoint has no EMA generator" in fallback.generator_note

    eval_args = ["--protocol", "sweep", "--ndb-bins", "4"]
    assert main(["eval", "--run", str(run), *eval_args]) == 0
    assert main(["eval", "--run", str(run), *eval_args, "--generator", "raw", "--out", str(tmp_path / "raw.json")]) == 0
    assert main(["eval", "--run", str(plain), *eval_args]) == 0
    ema_m = json.loads((run / "metrics.json").read_text())
    raw_m = json.loads((tmp_path / "raw.json").read_text())
    plain_m = json.loads((plain / "metrics.json").read_text())
    assert ema_m["generator"] == "ema" and "generator_note" not in ema_m
    assert raw_m["generator"] == "raw" and "generator_note" not in raw_m
    assert ema_m["lpips"] != raw_m["lpips"]  # other weights, other images
    assert plain_m["generator"] == "raw"
    assert plain_m["generator_note"] == (
        "checkpoint has no EMA generator (train.ema.half_life_images=0); using the raw G"
    )
    assert "using the raw G" in capsys.readouterr().out  # said, not only recorded

    test_inputs = Path(state["config"]["data"]["root"]) / "test"
    for name, extra in (("ema", []), ("raw", ["--generator", "raw"])):
        assert (
            main(
                [
                    "sample",
                    "--run",
                    str(run),
                    "--input",
                    str(test_inputs),
                    "--num-z",
                    "1",
                    "--out",
                    str(tmp_path / name),
                    *extra,
                ]
            )
            == 0
        )
    assert (tmp_path / "ema" / "grid.png").read_bytes() != (tmp_path / "raw" / "grid.png").read_bytes()
    assert (
        main(
            [
                "sample",
                "--run",
                str(plain),
                "--input",
                str(test_inputs),
                "--num-z",
                "1",
                "--out",
                str(tmp_path / "plain_samples"),
            ]
        )
        == 0
    )
    assert "using the raw G" in capsys.readouterr().out
    with pytest.raises(SystemExit):  # argparse refuses other names
        main(["eval", "--run", str(run), "--generator", "best"])
