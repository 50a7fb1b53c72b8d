"""clustergan: cluster-conditioned GANs for diverse image-to-image translation, with sweeps on Ray."""

__version__ = "0.1.0"


def load_generator(run_dir, device="cpu", generator="ema"):
    """Load a trained generator from a run folder or checkpoint: its EMA generator by default, ``generator=
    "raw"`` for G (see :mod:`clustergan.train.sampling`)."""
    from clustergan.train.sampling import load_generator as _load

    return _load(run_dir, device, generator)
