"""The one JSON reader and writer: atomic writes; an absent file may have a default, a damaged one never."""

from __future__ import annotations

import pytest

from clustergan.errors import ClusterganError
from clustergan.jsonio import read_json, write_json


def test_round_trip_and_absent_file(tmp_path):
    path = write_json(tmp_path / "a" / "x.json", {"b": 1, "a": [1.5, None], "p": tmp_path})
    assert read_json(path) == {"b": 1, "a": [1.5, None], "p": str(tmp_path)}
    assert path.read_text().endswith("}\n") and not list(path.parent.glob(".*tmp*"))
    assert read_json(tmp_path / "missing.json", {}) == {}
    with pytest.raises(ClusterganError, match=r"missing.json: file not found"):
        read_json(tmp_path / "missing.json")


def test_a_damaged_file_is_an_error_even_with_a_default(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"half": ')
    with pytest.raises(ClusterganError, match=r"bad.json: not readable JSON .*; delete or restore it"):
        read_json(bad, {})
