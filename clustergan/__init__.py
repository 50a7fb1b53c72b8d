"""clustergan: cluster-conditioned GANs for diverse image-to-image translation, with sweeps on Ray."""

__version__ = "0.1.0"
