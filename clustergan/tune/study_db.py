"""The Optuna study's database, wherever the sweep is resumed.

Ray Tune pickles the search algorithm into its experiment (``tuner.pkl``, the searcher's state), and the
Optuna storage with it. An ``RDBStorage`` pickles its URL: the SQLite path in the local copy of the machine
the sweep started on, which it opens as soon as it is unpickled. A sweep resumed on another machine, or with
another ``--local``, then fails before a trial runs ("unable to open database file"). :class:`LocalCopyStorage`
pickles no path: unpickled, it opens ``optuna.db`` in the local copy of the driver running now
(:func:`use_local_copy`, which the driver calls before Tune restores), the one it pulled from the storage URI.
"""

from __future__ import annotations

from pathlib import Path

import optuna

from clustergan.errors import ClusterganError
from clustergan.tune.storage import OPTUNA_DB

_here: list[Path] = []  # the driver's local copy; set once per driver by use_local_copy


def db_url(local: str | Path) -> str:
    return f"sqlite:///{Path(local) / OPTUNA_DB}"


def use_local_copy(local: str | Path) -> None:
    """This driver's experiment copy: where a restored study's database is opened."""
    _here[:] = [Path(local)]


class LocalCopyStorage(optuna.storages.RDBStorage):
    """The study's SQLite database in the driver's local copy; pickled without its path (see the module)."""

    def __init__(self, local: str | Path):
        super().__init__(db_url(local))

    def __reduce__(self):
        return (_reopen, ())


def _reopen() -> LocalCopyStorage:
    if not _here:
        raise ClusterganError(
            "a pickled Optuna study was opened outside a sweep driver: run `clustergan sweep --resume` to "
            "continue the sweep"
        )
    return LocalCopyStorage(_here[0])
