"""A run's inputs on every node of a cluster that shares no filesystem.

The driver prepares a run on its own host (:func:`clustergan.train.builders.prepare_run`): the procedural
dataset in its cache, the cluster statistics in the run folder. A Ray Train worker on another host sees
neither. :func:`describe_inputs` (driver side) records what the workers need: the dataset's fingerprint,
whether it is the procedural one, and the cluster statistics' two files, put into Ray's object store.
:func:`localize_inputs` (worker side) returns the config with paths that hold on the worker's node:

- the procedural dataset is generated again where it is missing (it is seeded), and must have the driver's
  fingerprint;
- a dataset given by path must be at that path on every node, with the same fingerprint: else the worker
  stops and says so (copy the data to every node, or use a shared filesystem);
- the cluster statistics are written to a folder of the worker's own when the driver's is not there (the
  statistics are small beside the dataset: a [k, D, D] factor, ~20 MB at k = 3).
"""

from __future__ import annotations

import socket
import tempfile
from pathlib import Path
from typing import Any

from clustergan.config import TrainConfig
from clustergan.errors import ClusterganError

STATS_FILES = ("cluster_stats.npz", "cluster_stats.json")


def _fingerprint(root: str) -> str:
    from clustergan.data import dataset_fingerprint

    return dataset_fingerprint(root, "train") + dataset_fingerprint(root, "test")


def describe_inputs(config: TrainConfig) -> dict[str, Any]:
    """Driver side, on a prepared ``config``: what a worker on another node needs to find or rebuild the
    run's inputs. Needs Ray initialized when the run has cluster statistics (they go to the object store)."""
    from clustergan.train.builders import synth_root

    procedural = Path(config.data.root).resolve() == synth_root(config.model_copy(deep=True)).resolve()
    inputs: dict[str, Any] = {
        "procedural": procedural,
        "fingerprint": _fingerprint(config.data.root),
        "host": socket.gethostname(),
        "stats": None,
    }
    if config.cluster.k and config.cluster.stats_dir:
        import ray

        folder = Path(config.cluster.stats_dir)
        inputs["stats"] = ray.put({name: (folder / name).read_bytes() for name in STATS_FILES})
    return inputs


def localize_inputs(config_dict: dict[str, Any], inputs: dict[str, Any] | None) -> dict[str, Any]:
    """Worker side: ``config_dict`` with ``data.root`` and ``cluster.stats_dir`` valid on this node."""
    if not inputs:  # a run launched without a description (e.g. an older caller): the paths are used as given
        return config_dict
    config = TrainConfig.model_validate(config_dict)
    root = Path(config.data.root)
    if inputs["procedural"] and not (root / "modes.json").is_file():
        from clustergan.train.builders import synth_root

        config.data.root = str(synth_root(config))
    elif not root.is_dir():
        raise ClusterganError(
            f"data.root {root}: not on this node ({socket.gethostname()}; the driver ran on {inputs['host']}). "
            "Every node needs the dataset at the same path: copy it there, or use a shared filesystem"
        )
    found = _fingerprint(config.data.root)
    if found != inputs["fingerprint"]:
        what = "the procedural dataset generated here" if inputs["procedural"] else f"data.root {config.data.root}"
        raise ClusterganError(
            f"{what} on this node ({socket.gethostname()}) has fingerprint {found}, the driver's "
            f"({inputs['host']}) {inputs['fingerprint']}: the nodes hold different data at the same path. "
            "Copy the driver's dataset to every node"
        )
    if inputs["stats"] is not None and not all(
        (Path(config.cluster.stats_dir) / name).is_file() for name in STATS_FILES
    ):
        import ray

        files = ray.get(inputs["stats"])
        folder = Path(tempfile.mkdtemp(prefix="clustergan-clusters-"))
        for name, data in files.items():
            (folder / name).write_bytes(data)
        config.cluster.stats_dir = str(folder)
    return config.to_dict()
