"""Losses: golden values on hand-made tensors, Mahalanobis against an independent numpy computation."""

import math

import numpy as np
import pytest
import torch

from clustergan.errors import ConfigError
from clustergan.losses import ClusterTargets, GANLoss, l1_reconstruction, mode_seeking_loss

torch.set_num_threads(1)


def test_lsgan_golden():
    loss = GANLoss("lsgan")
    preds = torch.full((2, 1, 3, 3), 0.5)
    assert loss(preds, True).item() == pytest.approx(0.25)
    assert loss(torch.full((2, 1, 3, 3), 0.2), False).item() == pytest.approx(0.04)


def test_vanilla_golden():
    loss = GANLoss("vanilla")
    assert loss(torch.zeros(2, 1, 4, 4), True).item() == pytest.approx(math.log(2))
    assert loss(torch.zeros(2, 1, 4, 4), False).item() == pytest.approx(math.log(2))
    # -log(sigmoid(2)) for a real target
    assert loss(torch.full((1, 1, 2, 2), 2.0), True).item() == pytest.approx(math.log1p(math.exp(-2.0)))


def test_gan_loss_sums_scales_of_different_sizes():
    loss = GANLoss("lsgan")
    preds = [torch.full((1, 1, 30, 30), 0.5), torch.zeros(1, 1, 14, 14)]
    # mean per scale, summed: 0.25 + 1.0
    assert loss(preds, True).item() == pytest.approx(1.25)


def test_gan_loss_bad_mode():
    with pytest.raises(ConfigError, match=r"loss.gan_mode: unknown value 'wgan'; use one of lsgan, vanilla"):
        GANLoss("wgan")


def test_l1_reconstruction():
    assert l1_reconstruction(torch.tensor([1.0, -1.0, 0.5]), torch.tensor([0.0, 0.0, 0.0])).item() == pytest.approx(
        2.5 / 3
    )


def test_mode_seeking_golden():
    fake1 = torch.zeros(2, 1, 1, 2)
    fake2 = torch.tensor([0.2, 0.4, 0.0, 0.2]).view(2, 1, 1, 2)  # mean |diff| = 0.2
    z1 = torch.zeros(2, 2)
    z2 = torch.tensor([[1.0, 3.0], [0.0, 0.0]])  # mean |diff| = 1.0: batch-wide, not per sample
    assert mode_seeking_loss(fake1, fake2, z1, z2).item() == pytest.approx(1 / (0.2 + 1e-5))


def test_mode_seeking_gradient_pushes_fakes_apart():
    fake2 = torch.tensor([0.1, 0.2]).requires_grad_()
    loss = mode_seeking_loss(torch.zeros(2), fake2, torch.zeros(2), torch.ones(2))
    loss.backward()
    assert (fake2.grad < 0).all()  # increasing the distance lowers the loss


def _random_stats(k=3, d=5, seed=0):
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(k, d))
    sigmas, chols = [], []
    for _ in range(k):
        a = rng.normal(size=(d, d))
        sigma = a @ a.T + 0.5 * np.eye(d)  # SPD
        sigmas.append(sigma)
        chols.append(np.linalg.cholesky(np.linalg.inv(sigma)))  # inv(Sigma) = L L^T
    return means, np.stack(sigmas), np.stack(chols)


def test_kl1_golden():
    targets = ClusterTargets(np.array([[0.0, 0.0], [1.0, 2.0]]), np.stack([np.eye(2)] * 2))
    f = torch.tensor([[1.0, -1.0], [1.0, 0.0]])
    # |0-1| + |0+1| and |1-1| + |2-0| over 4 elements
    assert targets.kl1(f, torch.tensor([0, 1])).item() == pytest.approx(4.0 / 4)


def test_mahalanobis_matches_numpy():
    means, sigmas, chols = _random_stats()
    targets = ClusterTargets(means, chols)
    assert targets.means.dtype == torch.float32 and targets.precision_cholesky.dtype == torch.float32
    rng = np.random.default_rng(1)
    f = rng.normal(size=(4, 5))
    ids = np.array([2, 0, 2, 1])
    expected = np.mean(
        [np.sqrt((f[b] - means[i]) @ np.linalg.inv(sigmas[i]) @ (f[b] - means[i])) for b, i in enumerate(ids)]
    )
    got = targets.mahalanobis(torch.tensor(f, dtype=torch.float32), torch.tensor(ids))
    assert got.item() == pytest.approx(expected, rel=1e-4)


def test_mahalanobis_grouped_rows_equal_the_per_row_gather_with_gradients():
    """The CPU path groups rows by cluster; every row must get its own cluster's L_i^T d, back in its own
    place, with the same gradient as the per-row gather (the CUDA path)."""
    means, _, chols = _random_stats()
    targets = ClusterTargets(means, chols)
    diff = torch.randn(7, 5, generator=torch.Generator().manual_seed(3))
    ids = torch.tensor([2, 0, 2, 1, 0, 2, 1])
    want = np.stack([chols[i].T @ diff[b].numpy() for b, i in enumerate(ids.tolist())])
    results = {}
    for grouped in (True, False):
        d = diff.clone().requires_grad_(True)
        y = targets._whiten(d, ids, grouped=grouped)
        (y * torch.arange(1.0, 6.0)).sum().backward()  # an asymmetric weight, so a row swap would show
        results[grouped] = (y.detach(), d.grad)
        np.testing.assert_allclose(y.detach().numpy(), want, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(results[True][1], results[False][1])
    assert targets._whiten(torch.zeros(0, 5), torch.zeros(0, dtype=torch.long)).shape == (0, 5)


def test_mahalanobis_gradient_flows_and_is_finite_at_mean():
    means, _, chols = _random_stats()
    targets = ClusterTargets(torch.tensor(means), torch.tensor(chols))
    f = torch.tensor(means[[0, 1]], dtype=torch.float32).requires_grad_()
    f.data[1] += 0.3
    loss = targets.mahalanobis(f, torch.tensor([0, 1])) + targets.kl1(f, torch.tensor([0, 1]))
    loss.backward()
    assert torch.isfinite(f.grad).all()
    assert f.grad[1].abs().sum() > 0


def test_cluster_targets_buffers_and_errors():
    means, _, chols = _random_stats()
    targets = ClusterTargets(means, chols)
    assert set(targets.state_dict()) == {"means", "precision_cholesky"}
    assert targets.num_clusters == 3 and targets.dim == 5
    with pytest.raises(ValueError, match=r"features have shape \(2, 4\), expected \[B, 5\]"):
        targets.kl1(torch.zeros(2, 4), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"precision_cholesky \(3, 4, 4\) must be \[k, D, D\]"):
        ClusterTargets(means, chols[:, :4, :4])
