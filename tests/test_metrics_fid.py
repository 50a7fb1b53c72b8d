"""FID: converted weights against their TorchScript source, identical sets, caching, bad input, and the
evaluation runner with every registered metric. (Agreement with pytorch-fid's CLI: test_metrics_fid_cli.py.)

Each Frechet distance costs ~13 s here (scipy's sqrtm of a 2048 x 2048 matrix), so this file computes one.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from threadpoolctl import threadpool_limits

from clustergan.cache import cache_dir
from clustergan.errors import ClusterganError
from clustergan.metrics import METRICS, Protocol, evaluate, fid, frechet, real_statistics
from clustergan.metrics.frechet import inception_features, torchscript_path

torch.set_num_threads(1)


@pytest.fixture(scope="module", autouse=True)
def _cache(tmp_path_factory):
    # One cache for the module: the weights are converted once (a few seconds), not per test.
    # One BLAS thread: on a busy 2-core machine a second thread makes sqrtm about twice as slow.
    with pytest.MonkeyPatch.context() as mp, threadpool_limits(1):
        mp.setenv("CLUSTERGAN_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


def smooth_images(n: int, size: int = 32, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 8, 8, generator=g) * 1.6 - 0.8
    return F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)


def test_converted_weights_reproduce_the_torchscript_features():
    images = smooth_images(2, size=64, seed=1)
    ours = inception_features(images)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        source = torch.jit.load(str(torchscript_path()), map_location="cpu").eval()
    # The TorchScript module is the bare network: feed it pytorch-fid's preprocessing by hand.
    x = F.interpolate((images + 1) / 2, size=(299, 299), mode="bilinear", align_corners=False) * 2 - 1
    with torch.no_grad():
        reference = source(x).double().numpy()
    assert ours.shape == reference.shape == (2, 2048)
    assert np.abs(ours - reference).max() < 1e-4
    assert reference.std() > 0.05  # real features, not a degenerate network


def test_fid_of_identical_sets_is_zero():
    x = smooth_images(6)
    assert abs(fid(x, x)) < 1e-3


def test_real_features_are_cached_by_their_content(monkeypatch):
    x = smooth_images(3, seed=2)
    mu, sigma = real_statistics(x)
    assert len(list(cache_dir("fid").glob("real_features_*.npy"))) == 1 and sigma.shape == (2048, 2048)
    monkeypatch.setattr(frechet, "inception_features", lambda *a, **k: pytest.fail("recomputed a cached set"))
    again = real_statistics(x.clone())  # the same pixels, another tensor: the cache
    assert np.array_equal(again[0], mu) and np.array_equal(again[1], sigma)
    edited = x.clone()
    edited[0, 0, 0, 0] += 0.5
    with pytest.raises(pytest.fail.Exception, match="recomputed a cached set"):
        real_statistics(edited)  # one pixel differs: not the cached set


def test_kid_is_the_unbiased_polynomial_mmd():
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(30, 6)), rng.normal(0.5, 1.0, size=(30, 6))

    def k(a, b):
        return (a @ b.T / a.shape[1] + 1) ** 3

    # equal sizes: every subset is the whole of both sets (reordered), so the mean is the estimator itself
    kid, kid_std, size = frechet.kernel_inception_distance(real, fake, seed=0)
    m = 30
    kxx, kyy, kxy = k(real, real), k(fake, fake), k(real, fake)
    by_hand = ((kxx.sum() - np.trace(kxx)) + (kyy.sum() - np.trace(kyy))) / (m * (m - 1)) - 2 * kxy.mean()
    assert size == m and kid == pytest.approx(by_hand, rel=1e-5) and kid_std == pytest.approx(0, abs=1e-5)
    assert frechet.kernel_inception_distance(real[:20], fake, seed=0)[2] == 20  # the smaller set's size
    # two draws of one distribution: about 0 (unbiased; it may be slightly negative)
    same, _, _ = frechet.kernel_inception_distance(rng.normal(size=(200, 6)), rng.normal(size=(200, 6)))
    assert abs(same) < 0.1 * kid


def test_fid_bad_inputs():
    x = smooth_images(4)
    with pytest.raises(ClusterganError, match=r"^fid: fake images: got 1, at least 2 are needed$"):
        fid(x, x[:1])
    bad = x.clone()
    bad[2, 1, 3, 3] = float("nan")
    with pytest.raises(ClusterganError, match=r"^fid: real images: image 2 contains NaN or Inf values$"):
        fid(bad, x)
    mixed = [x[0], x[1], F.interpolate(x[2:3], size=(16, 16))[0]]
    with pytest.raises(
        ClusterganError,
        match=r"^fid: real images have different sizes: image 0 is 3x32x32, "
        r"image 2 is 3x16x16; resize them to one size first$",
    ):
        fid(mixed, x)
    with pytest.raises(
        ClusterganError,
        match=r"^fid: fake images must have shape \[N, 3, H, W\], "
        r"got \[4, 1, 32, 32\]$",
    ):
        fid(x, x[:, :1])


def test_evaluate_runs_every_registered_metric(monkeypatch):
    # Samples that reproduce the training set exactly: NDB 0, JSD 0, full mode coverage, and the FID metric
    # compares the real statistics with themselves (the distance itself is tested above; here a stand-in
    # saves a second 13 s sqrtm and records what it was given).
    train = smooth_images(8, seed=5)
    protocol = Protocol(
        name="identity",
        samples_per_input=2,
        lpips_pairs=1,
        ndb_bins=2,
        ndb_resolution=8,
        ndb_standardize=True,
        ndb_space="pixels",
        ndb_queries_per_input=2,
        metrics=tuple(METRICS),
        fid_samples_per_input=2,
        cluster_choice="target",
    )
    sources = torch.zeros(4, 3, 32, 32)

    def replay(batch, n_samples, generator):
        start = replay.next
        replay.next += batch.shape[0]
        return train[start * 2 : (start + batch.shape[0]) * 2].view(batch.shape[0], n_samples, 3, 32, 32)

    replay.next = 0
    seen = []

    def recording_distance(mu1, sigma1, mu2, sigma2):
        seen.append((mu1, sigma1, mu2, sigma2))
        return 0.125

    monkeypatch.setattr(frechet, "frechet_distance", recording_distance)
    statistics_of, real_statistics = [], frechet.feature_statistics

    def recording_statistics(features, name=""):
        statistics_of.append(features)
        return real_statistics(features, name)

    monkeypatch.setattr(frechet, "feature_statistics", recording_statistics)
    first_half = lambda images: (torch.arange(len(images)) % 2).long()  # noqa: E731  two "modes" per input
    result = evaluate(
        replay,
        sources,
        train,
        protocol,
        mode_classifier=first_half,
        num_modes=2,
        batch_size=3,
        test_targets=train[0::2],
    )  # input a's samples are train[2a], train[2a + 1]; its target train[2a]
    assert set(METRICS) == {"fid", "ndb", "lpips", "mode_coverage", "cond_gain"}
    assert set(METRICS) <= set(result["details"])
    # FID of all 8 samples, then at the floor's N: the first sample of each of the 4 inputs
    assert result["fid"] == result["fid_n_inputs"] == 0.125 and len(seen) == 2
    real, everything, first = statistics_of[-3:]  # real: the features of train[0..7], in order
    assert everything.shape[0] == 8 and np.allclose(everything, real)  # input-major: a0 s0, a0 s1, a1 s0, ...
    assert np.allclose(first, real[0::2])  # the first sample of every input: train[0], train[2], ...
    assert result["details"]["fid"]["n_fake_fid_n_inputs"] == 4
    assert result["protocol_hash"] == protocol.digest
    mu_real, sigma_real, mu_fake, sigma_fake = seen[0]
    assert np.allclose(mu_real, mu_fake, atol=1e-6) and np.allclose(sigma_real, sigma_fake, atol=1e-6)
    assert (result["ndb"], result["jsd"], result["mode_coverage"]) == (0, 0.0, 1.0)
    assert result["lpips"] > 0
    assert result["details"]["fid"]["n_fake"] == 8 and result["details"]["fid"]["n_real"] == 8
    assert result["details"]["cond_gain"]["samples_per_input"] == 2 and result["details"]["cond_gain"]["inputs"] == 4
    assert 0 < result["details"]["cond_gain"]["own_lpips"] < result["details"]["cond_gain"]["other_lpips"]
