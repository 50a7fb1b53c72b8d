"""Shared fixtures: a per-session cache folder (features and converted weights computed once) and the
facades location (tests that need it skip when it is absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
FACADES = Path(os.environ.get("CLUSTERGAN_FACADES", REPO.parent / "shared" / "datasets" / "facades"))


@pytest.fixture(scope="session", autouse=True)
def _session_defaults(tmp_path_factory):
    torch.set_num_threads(min(2, torch.get_num_threads()))
    if "CLUSTERGAN_CACHE" not in os.environ:
        os.environ["CLUSTERGAN_CACHE"] = str(tmp_path_factory.mktemp("clustergan-cache"))
    yield


@pytest.fixture
def facades_root() -> Path:
    if not (FACADES / "train").is_dir():
        pytest.skip(f"facades not found at {FACADES} (set CLUSTERGAN_FACADES to its folder)")
    return FACADES
