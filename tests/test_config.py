"""Config: strict keys and types with errors naming the file and dotted key; extends; overrides; presets."""

from pathlib import Path

import pytest

from clustergan.config import TrainConfig, load_config
from clustergan.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
PRESETS = ["pix2pix", "msgan", "clustergan", "debug"]


@pytest.mark.parametrize("name", PRESETS)
def test_presets_load(name):
    config = load_config(REPO / "sweeps" / f"{name}.yaml")
    assert config.name == name
    assert config.encoder.name == "efficientnet_lite0"
    assert Path(config.out).is_absolute() and config.out.endswith(f"runs/{name}")


def test_preset_meanings():
    p2p, ms, cg = (load_config(REPO / "sweeps" / f"{n}.yaml") for n in ("pix2pix", "msgan", "clustergan"))
    assert (p2p.model.nz, p2p.cluster.k, p2p.loss.lambda_ms, p2p.model.dropout) == (0, 0, 0.0, 0.5)
    assert (ms.model.nz, ms.cluster.k, ms.loss.lambda_ms) == (8, 0, 1.0)
    assert cg.cluster.k > 0 and cg.loss.lambda_kl1 > 0 and cg.loss.lambda_km > 0 and cg.loss.lambda_ms == 1.0
    for c in (p2p, ms, cg):
        assert c.data.direction == "BtoA" and c.data.root.endswith("shared/datasets/facades")


def test_unknown_key_names_file_and_dotted_key(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("loss:\n  lambda_kml: 1.0\n")
    with pytest.raises(ConfigError) as e:
        load_config(f)
    assert str(f) in str(e.value) and "unknown key `loss.lambda_kml`" in str(e.value)


def test_wrong_type_names_value(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("train:\n  epochs: two\n")
    with pytest.raises(ConfigError, match=r"`train.epochs` = 'two': Input should be a valid integer"):
        load_config(f)


def test_extends_and_overrides(tmp_path):
    (tmp_path / "base.yaml").write_text("seed: 3\nloss:\n  lambda_l1: 5.0\ntrain:\n  epochs: 4\n")
    (tmp_path / "child.yaml").write_text("extends: base.yaml\ntrain:\n  batch_size: 2\n")
    c = load_config(tmp_path / "child.yaml", ["train.epochs=7", "loss.gan_mode=vanilla", "data.root=null"])
    assert (c.seed, c.loss.lambda_l1, c.train.epochs, c.train.batch_size, c.loss.gan_mode) == (3, 5.0, 7, 2, "vanilla")
    assert c.name == "child" and c.data.root is None


def test_extends_cycle(tmp_path):
    (tmp_path / "a.yaml").write_text("extends: b.yaml\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_config(tmp_path / "a.yaml")


def test_inconsistent_lambdas():
    with pytest.raises(ConfigError, match="lambda_kl1 / loss.lambda_km need clusters"):
        load_config(REPO / "sweeps" / "pix2pix.yaml", ["loss.lambda_km=1"])
    with pytest.raises(ConfigError, match="loss.lambda_ms needs noise"):
        load_config(REPO / "sweeps" / "pix2pix.yaml", ["loss.lambda_ms=1"])


def test_bad_override_syntax_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="expected key=value"):
        load_config(REPO / "sweeps" / "debug.yaml", ["train.epochs"])
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_yaml_is_loaded_safely(tmp_path):
    f = tmp_path / "evil.yaml"
    f.write_text("seed: !!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(f)


def test_round_trip_plain_dict():
    c = load_config(REPO / "sweeps" / "clustergan.yaml")
    assert TrainConfig.model_validate(c.to_dict()) == c


@pytest.mark.parametrize("name", ["facades_best", "facades_best4"])
def test_the_sweep_best_rows_load_with_a_relative_dataset_and_differ(name):
    # the reproduction's sweep-best rows train these files; a stale key or an absolute path breaks them
    text = (REPO / "sweeps" / f"{name}.yaml").read_text()
    assert text.count("\nextends: clustergan.yaml\n") == 1 and "root:" not in text  # the dataset comes from the base
    config = load_config(REPO / "sweeps" / f"{name}.yaml")
    assert config.data.root == str((REPO.parent / "shared" / "datasets" / "facades").resolve())
    assert config.loss.lambda_l1 == 100.0 and config.train.epochs == config.train.epochs_decay == 5
    assert config.cluster.k == {"facades_best": 2, "facades_best4": 15}[name]
