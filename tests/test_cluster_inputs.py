"""The encoder's input size, the weights' identity and when cluster statistics may be reused.

Cluster statistics describe one feature space of one dataset: a run whose size, direction, dataset, k-means
seed, encoder, weights or encoder input size differ must not train against them. These tests pin that
every one of those recomputes the run's own statistics, and that a folder the user names is refused with
the reason when it does not fit.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from clustergan.clustering import ClusterStats, cached_features
from clustergan.config import load_config
from clustergan.encoders import FrozenEncoder, build_encoder
from clustergan.encoders.efficientnet import lite0_package_file
from clustergan.errors import ClusterganError, ConfigError
from clustergan.train import builders

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CLUSTERGAN_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def tiny_synth(tmp_path_factory):
    from clustergan.data.synth import make_synth

    return make_synth(tmp_path_factory.mktemp("data") / "tiny", num_modes=2, n_train=10, n_test=2, size=32, seed=3)


@pytest.fixture()
def recomputed(monkeypatch):
    """The output folders ``compute_clusters`` was called for, in order."""
    calls: list[Path] = []
    original = builders.compute_clusters

    def counting(config, out_dir):
        calls.append(Path(out_dir))
        return original(config, out_dir)

    monkeypatch.setattr(builders, "compute_clusters", counting)
    return calls


def tiny_config(root: Path, out: Path, *overrides: str):
    return load_config(
        REPO / "sweeps" / "debug.yaml",
        [f"data.root={root}", f"out={out}", "cluster.k=2", "cluster.backend=sklearn", *overrides],
    )


# ------------------------------------------------------------------------------------------ input size


def test_input_size_resizes_before_the_network_and_is_validated():
    native = build_encoder("efficientnet_lite0", "random")
    small = build_encoder("efficientnet_lite0", "random", 64)
    assert (native.input_size, native.native_input_size) == (224, 224)
    assert (small.input_size, small.native_input_size) == (64, 224)
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    assert small.preprocess(images).shape == (2, 3, 64, 64)
    with torch.no_grad():
        a, b = native(images), small(images)
    assert a.shape == b.shape == (2, 1280) and not torch.allclose(a, b, atol=1e-3)
    with pytest.raises(ValueError, match="input size 16 is below 32"):
        build_encoder("efficientnet_lite0", "random", 16)
    with pytest.raises(ConfigError, match=r"`encoder.input_size` = 16"):
        load_config(REPO / "sweeps" / "debug.yaml", ["encoder.input_size=16"])


def test_features_are_cached_per_input_size(tiny_synth, monkeypatch):
    seen = []
    original = FrozenEncoder.forward
    monkeypatch.setattr(FrozenEncoder, "forward", lambda self, x: seen.append(self.input_size) or original(self, x))
    a = cached_features(tiny_synth, "BtoA", 32, "efficientnet_lite0", "random", input_size=64)
    b = cached_features(tiny_synth, "BtoA", 32, "efficientnet_lite0", "random", input_size=64)
    c = cached_features(tiny_synth, "BtoA", 32, "efficientnet_lite0", "random")
    assert seen == [64, 224] and np.array_equal(a, b) and not np.allclose(a, c)


# ------------------------------------------------------------------------------------------ weights identity


def test_the_same_weights_at_another_path_are_the_same_weights(tiny_synth, tmp_path, monkeypatch):
    copy = tmp_path / "elsewhere" / "lite0.pth"
    copy.parent.mkdir()
    shutil.copy(lite0_package_file(), copy)
    packaged, copied = build_encoder("efficientnet_lite0"), build_encoder("efficientnet_lite0", str(copy))
    assert packaged.weights_source != copied.weights_source
    assert packaged.weights_id == copied.weights_id
    assert build_encoder("efficientnet_lite0", "random").weights_id != packaged.weights_id
    # so the feature cache is shared: the copy's features come from the packaged weights' entry
    first = cached_features(tiny_synth, "BtoA", 32, "efficientnet_lite0", None)
    monkeypatch.setattr(FrozenEncoder, "forward", lambda self, x: pytest.fail("the encoder ran again"))
    assert np.array_equal(first, cached_features(tiny_synth, "BtoA", 32, "efficientnet_lite0", str(copy)))


# ------------------------------------------------------------------------------------------ stale statistics


@pytest.mark.filterwarnings("ignore:cluster .* is singular")
def test_run_statistics_are_reused_only_for_the_same_inputs(tiny_synth, tmp_path, recomputed, capsys):
    out = tmp_path / "run"
    config = builders.prepare_run(tiny_config(tiny_synth, out, "encoder.weights=random"))
    stats = ClusterStats.load(Path(config.cluster.stats_dir))
    assert stats.inputs["k"] == 2 and stats.inputs["input_size"] == 32 and stats.inputs["size"] == 32
    assert len(recomputed) == 1
    builders.prepare_run(tiny_config(tiny_synth, out, "encoder.weights=random"))
    assert len(recomputed) == 1  # the same run again: kept
    changes = {
        "data.size=16": "size: recorded 32, this run 16",
        "data.direction=AtoB": "direction: recorded 'BtoA', this run 'AtoB'",
        "seed=1": "seed: recorded 0, this run 1",
        "encoder.input_size=64": "input_size: recorded 32, this run 64",
        "encoder.weights=null": "weights_id: recorded",
    }
    for change, reason in changes.items():
        capsys.readouterr()
        builders.prepare_run(tiny_config(tiny_synth, out, "encoder.weights=random", change))
        assert reason in capsys.readouterr().out, change
        # back to the first inputs, so that the next change is compared with them
        builders.prepare_run(tiny_config(tiny_synth, out, "encoder.weights=random"))
    assert len(recomputed) == 1 + 2 * len(changes)


@pytest.mark.filterwarnings("ignore:cluster .* is singular")
def test_another_dataset_recomputes(tiny_synth, tmp_path, recomputed, capsys):
    from clustergan.data.synth import make_synth

    other = make_synth(tmp_path / "other", num_modes=2, n_train=10, n_test=2, size=32, seed=4)
    out = tmp_path / "run"
    builders.prepare_run(tiny_config(tiny_synth, out, "encoder.weights=random"))
    builders.prepare_run(tiny_config(other, out, "encoder.weights=random"))
    assert len(recomputed) == 2 and "dataset_fingerprint: recorded" in capsys.readouterr().out


@pytest.mark.filterwarnings("ignore:cluster .* is singular")
def test_a_named_statistics_folder_that_does_not_fit_is_refused(tiny_synth, tmp_path):
    stats_dir = Path(
        builders.prepare_run(tiny_config(tiny_synth, tmp_path / "a", "encoder.weights=random")).cluster.stats_dir
    )
    named = f"cluster.stats_dir={stats_dir}"
    # its own k-means seed is the folder's choice: another training seed may use it
    builders.prepare_run(tiny_config(tiny_synth, tmp_path / "b", "encoder.weights=random", named, "seed=3"))
    with pytest.raises(ClusterganError, match=r"do not fit this run: size: recorded 32, this run 16"):
        builders.prepare_run(tiny_config(tiny_synth, tmp_path / "c", "encoder.weights=random", named, "data.size=16"))
    meta = json.loads((stats_dir / "cluster_stats.json").read_text())
    del meta["inputs"]
    (stats_dir / "cluster_stats.json").write_text(json.dumps(meta))
    with pytest.raises(ClusterganError, match=r"record none of their inputs \(written by an older clustergan\)"):
        builders.prepare_run(tiny_config(tiny_synth, tmp_path / "d", "encoder.weights=random", named))


@pytest.mark.filterwarnings("ignore:cluster .* is singular")
def test_a_sweeps_statistics_follow_its_base(tiny_synth, tmp_path, recomputed):
    from clustergan.tune.sweep import prepare_clusters

    base = tiny_config(tiny_synth, tmp_path / "x", "encoder.weights=random").to_dict()
    prepare_clusters(base, [2], tmp_path / "exp")
    prepare_clusters(base, [2], tmp_path / "exp")
    assert len(recomputed) == 1
    base["encoder"]["input_size"] = 64
    prepare_clusters(base, [2], tmp_path / "exp")
    assert len(recomputed) == 2
    assert ClusterStats.load(tmp_path / "exp" / "clusters" / "k2").inputs["input_size"] == 64
