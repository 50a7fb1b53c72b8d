"""One training step's wiring, with every term of the method on: which cluster index G and D receive, that
both MSGAN fakes share it, and that the generator loss is exactly the weighted sum of its terms, each term
recomputed here from what G produced.

The Mahalanobis term is checked against the float64 per-row reference in ``tests/helpers.py``, independent of
the grouped product the loss uses.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from clustergan.config import load_config
from clustergan.train.builders import prepare_run
from clustergan.train.dist import LocalContext
from clustergan.train.loop import Trainer
from tests.helpers import mahalanobis_reference

REPO = Path(__file__).resolve().parents[1]
LAMBDAS = {"lambda_l1": 7.0, "lambda_ms": 0.3, "lambda_kl1": 2.0, "lambda_km": 0.05}


class Recorder(torch.nn.Module):
    """Calls the wrapped network and keeps what it was given and what it returned."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net, self.calls = net, []

    def forward(self, *args):
        out = self.net(*args)
        # G returns one tensor, D one map per scale
        kept = out.detach().clone() if torch.is_tensor(out) else [o.detach().clone() for o in out]
        self.calls.append(([a.detach().clone() if torch.is_tensor(a) else a for a in args], kept))
        return out


@pytest.mark.filterwarnings("ignore:cluster .* is singular")
def test_one_step_wiring_with_every_term_on(tmp_path):
    config = prepare_run(
        load_config(
            REPO / "sweeps" / "debug.yaml",
            [
                f"out={tmp_path / 'run'}",
                "cluster.k=3",
                "cluster.backend=sklearn",
                "data.synth.n_train=12",
                "data.synth.n_test=4",
                "train.batch_size=4",
                "train.threads=1",
                *(f"loss.{k}={v}" for k, v in LAMBDAS.items()),
            ],
        )
    )
    trainer = Trainer(config, LocalContext())
    trainer.epoch = 0
    trainer.G, trainer.D = Recorder(trainer.G), Recorder(trainer.D)
    batch = next(iter(trainer.loader))
    own = torch.as_tensor(trainer.stats.cluster_ids)[batch["index"]]  # each training target's own cluster
    assert len(set(own.tolist())) > 1, "the batch should hold targets of several clusters"
    losses = trainer.step(batch)

    ((g_args, fake),) = trainer.G.calls  # both fakes in one call: [2B]
    x, z, ids = g_args
    B = batch["source"].shape[0]
    assert torch.equal(ids, own.repeat(2))  # G gets the target's own cluster, the same for both fakes
    assert torch.equal(x, batch["source"].repeat(2, 1, 1, 1)) and not torch.equal(z[:B], z[B:])
    # D: the real pair, the detached fakes (D's step), the fakes again (G's adversarial term)
    (real_args, _), (fake_args, _), (adv_args, _) = trainer.D.calls
    assert torch.equal(real_args[1], batch["target"]) and torch.equal(real_args[2], own)
    assert torch.equal(fake_args[1], fake) and torch.equal(fake_args[2], own.repeat(2))
    assert torch.equal(adv_args[1], fake) and torch.equal(adv_args[2], own.repeat(2))

    # every term recomputed from G's output, then the total as their weighted sum
    y = batch["target"]
    fake1, fake2 = fake[:B], fake[B:]
    l1 = (fake1 - y).abs().mean()
    ratio = (fake2 - fake1).abs().mean() / (z[B:] - z[:B]).abs().mean()
    ms = 1.0 / (ratio + 1e-5)
    with torch.no_grad():
        feats = trainer.encoder(fake)
    means = trainer.stats.means
    kl1 = (torch.as_tensor(means)[ids] - feats).abs().mean()
    km = mahalanobis_reference(feats.numpy(), means, trainer.stats.precision_cholesky, ids.numpy()).mean()
    assert float(losses["G_l1"]) == pytest.approx(float(l1), rel=1e-5)
    assert float(losses["G_ms"]) == pytest.approx(float(ms), rel=1e-5)
    assert float(losses["G_kl1"]) == pytest.approx(float(kl1), rel=1e-4)
    assert float(losses["G_km"]) == pytest.approx(float(km), rel=1e-4)
    weighted = (
        losses["G_gan"]
        + LAMBDAS["lambda_l1"] * losses["G_l1"]
        + LAMBDAS["lambda_ms"] * losses["G_ms"]
        + LAMBDAS["lambda_kl1"] * losses["G_kl1"]
        + LAMBDAS["lambda_km"] * losses["G_km"]
    )
    assert float(losses["G_total"]) == pytest.approx(float(weighted), rel=1e-6)


def _one_step(tmp_path: Path, order: str) -> tuple[Trainer, list]:
    config = prepare_run(
        load_config(
            REPO / "sweeps" / "debug.yaml",
            [
                f"out={tmp_path / order}",
                "data.synth.n_train=8",
                "data.synth.n_test=4",
                "train.batch_size=4",
                "train.threads=1",
                "cluster.k=0",
                "loss.lambda_kl1=0",
                "loss.lambda_km=0",
                f"train.update_order={order}",
            ],
        )
    )
    trainer = Trainer(config, LocalContext())
    trainer.epoch = 0
    trainer.D = Recorder(trainer.D)
    torch.manual_seed(123)  # the same noise draws for both orders
    trainer.step(next(iter(trainer.loader)))
    return trainer, trainer.D.calls


def test_the_update_order_decides_which_discriminator_scores_the_generator(tmp_path):
    d_first, d_calls = _one_step(tmp_path, "d_first")
    g_first, g_calls = _one_step(tmp_path, "g_first")
    # D learns from the same real pair and the same fakes either way, so its step is the same
    for a, b in zip(d_first.D.net.parameters(), g_first.D.net.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6)
    # the order of D's calls: real, fakes (D's step), fakes (G's term) / G's term first under g_first
    assert [len(c[0][1]) for c in d_calls] == [4, 8, 8] and [len(c[0][1]) for c in g_calls] == [8, 4, 8]
    # g_first scores G with D before its step (the logits of its first call are those of D's fake call,
    # which sees the same D and the same fakes); d_first scores G with the stepped D
    assert all(torch.equal(a, b) for a, b in zip(g_calls[0][1], g_calls[2][1], strict=True))
    assert not all(torch.allclose(a, b) for a, b in zip(d_calls[1][1], d_calls[2][1], strict=True))
    moved = [not torch.allclose(a, b) for a, b in zip(d_first.G.parameters(), g_first.G.parameters(), strict=True)]
    assert any(moved)
