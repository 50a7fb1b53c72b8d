"""The ``clustergan`` command: thin wrappers over the library. User mistakes print one line, exit 2.

:mod:`~clustergan.cli.parser` declares the arguments, :mod:`~clustergan.cli.runs` and
:mod:`~clustergan.cli.experiments` hold the commands; ``python -m clustergan.cli`` runs :func:`main`."""

from __future__ import annotations

import sys

from clustergan.cli.parser import build_parser
from clustergan.errors import ClusterganError


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except ClusterganError as e:
        print(f"clustergan: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("clustergan: interrupted", file=sys.stderr)
        return 130
    return 0
