"""Paired image datasets in the pix2pix layout, a synthetic dataset with known modes, and downloads.

- :mod:`.paired`: ``root/{train,test}/*.jpg|png`` A|B images -> ``{"source", "target", "index"}``.
- :mod:`.synth`: a procedural dataset whose targets come in ``num_modes`` known modes, with a fixed rule
  (:func:`classify_mode`) to measure which modes generated images cover.
- :mod:`.fetch`: download and verify a public dataset (facades).
"""

from clustergan.data.fetch import DATASETS, DatasetSource, fetch_dataset
from clustergan.data.paired import (
    DIRECTIONS,
    IMAGE_EXTENSIONS,
    PairedImageDataset,
    dataset_fingerprint,
    default_load_size,
    list_images,
    load_sources,
    load_targets,
    read_source_image,
    to_model_input,
)
from clustergan.data.synth import classify_mode, make_synth, read_modes, read_num_modes

__all__ = [
    "DATASETS",
    "DIRECTIONS",
    "IMAGE_EXTENSIONS",
    "DatasetSource",
    "PairedImageDataset",
    "classify_mode",
    "dataset_fingerprint",
    "default_load_size",
    "fetch_dataset",
    "list_images",
    "load_sources",
    "load_targets",
    "read_source_image",
    "to_model_input",
    "make_synth",
    "read_modes",
    "read_num_modes",
]
