"""One registry type for everything chosen by name: encoders, metrics, cluster backends.

A :class:`Registry` is a plain dict (name -> entry) with a ``register(name)`` decorator that refuses a name
registered twice, and a ``lookup(name)`` whose error for an unknown name lists the known ones. Registries
really decide what runs: the config's ``encoder.name``, a protocol's ``metrics`` and ``cluster.backend`` are
looked up here and nowhere else, and the contract tests iterate over every entry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from clustergan.errors import ConfigError

T = TypeVar("T")


class Registry(dict, Generic[T]):
    """``{name: entry}`` of one kind of thing (``kind`` names it in errors, e.g. ``"encoder"``)."""

    def __init__(self, kind: str, hint: str = ""):
        super().__init__()
        self.kind, self.hint = kind, hint

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator adding the decorated function or class under ``name``."""

        def decorate(entry: T) -> T:
            if name in self:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self[name] = entry
            return entry

        return decorate

    def lookup(self, name: str) -> T:
        """The entry ``name``; :class:`ConfigError` listing the registered names if there is none."""
        if name not in self:
            known = ", ".join(sorted(self)) or "none registered"
            raise ConfigError(f"unknown {self.kind} {name!r}; available: {known}{self.hint}")
        return self[name]
