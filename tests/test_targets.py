"""A preset's targets: golden intervals, and the status each kind gives as seeds arrive."""

from __future__ import annotations

import dataclasses

import pytest

from clustergan.errors import ConfigError
from clustergan.reproduce.presets import get_preset
from clustergan.reproduce.targets import Target, check, pooled_std, std_interval, targets_section


def _rows(**values: list[float]) -> dict:
    """Rows shaped like :func:`clustergan.reproduce.results.collect`'s, one metric ``m``."""
    return {
        k: {"label": k.upper(), "seeds": {i: {"metrics": {"m": x}} for i, x in enumerate(v)}} for k, v in values.items()
    }


def test_pooled_std_and_its_chi_square_interval_golden():
    s, df = pooled_std([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [5.0]])  # variances 1 and 4; a lone seed adds no df
    assert df == 4 and s == pytest.approx(2.5**0.5)
    lo, hi = std_interval(1.0, 4)  # chi-square quantiles at df 4: 9.4877 and 0.7107
    assert lo == pytest.approx((4 / 9.4877) ** 0.5, rel=1e-4) and hi == pytest.approx((4 / 0.7107) ** 0.5, rel=1e-4)


def test_mean_target_t_interval_golden_and_pending_until_every_seed():
    t = Target("mean <= 2.5", "mean_at_most", "m", ("a",), 2.5)
    r = check(t, _rows(a=[1.0, 2.0, 3.0]), 3)["rows"]["a"]
    assert r["value"] == 2.0  # t(0.95, 2) = 2.92 x se 0.577 = 1.686
    assert r["lo"] == pytest.approx(2 - 1.6859, abs=1e-4) and r["hi"] == pytest.approx(2 + 1.6859, abs=1e-4)
    assert check(t, _rows(a=[1.0, 2.0, 3.0]), 3)["status"] == "met"
    assert check(t, _rows(a=[1.0, 2.0, 5.0]), 3)["status"] == "not met"
    assert check(t, _rows(a=[1.0, 2.0]), 3)["status"] == "pending"


def test_every_seed_target_fails_on_one_seed_even_with_seeds_to_come():
    t = Target("m >= 0.02 in every seed", "every_seed_at_least", "m", ("a", "b"), 0.02)
    assert check(t, _rows(a=[0.03, 0.019], b=[0.05]), 3)["status"] == "not met"
    assert check(t, _rows(a=[0.03, 0.021], b=[0.05]), 3)["status"] == "pending"
    assert check(t, _rows(a=[0.03, 0.021, 0.02], b=[0.05, 0.04, 0.03]), 3)["status"] == "met"
    assert check(t, _rows(a=[0.03, 0.021, 0.02]), 3)["status"] == "pending"  # row b has no runs yet


def test_pooled_std_target_status_and_the_baseline_column():
    t = Target("pooled std <= 1.2", "pooled_std_at_most", "m", ("a", "b"), 1.2)
    now = _rows(a=[1.0, 2.0, 3.0], b=[2.0, 3.0, 4.0])  # pooled std 1
    assert check(t, now, 3)["status"] == "met"
    assert check(t, _rows(a=[1.0, 2.0, 3.0], b=[2.0, 4.0, 6.0]), 3)["status"] == "not met"
    lines, results = targets_section((t,), now, 3, baseline=("old", _rows(a=[1.0, 2.0, 3.0], b=[2.0, 4.0, 6.0])))
    row = next(line for line in lines if line.startswith("| pooled std"))
    assert "pooled: A; B | 6 | 1 (df 4) |" in row and "**met** | 1.581 (df 4) [" in row
    assert results[0]["status"] == "met"


def test_a_target_naming_no_row_or_an_unknown_kind_is_an_error():
    with pytest.raises(ConfigError, match="unknown kind 'median'"):
        Target("x", "median", "m", ("a",), 1.0)
    study = get_preset("cpu50").studies[0]
    bad = Target("x", "mean_at_most", "fid", ("clustergan_ms01",), 1.0)
    with pytest.raises(ConfigError, match=r"no method \['clustergan_ms01'\]"):
        dataclasses.replace(study, targets=(bad,))


def test_cpu50_carries_the_issues_targets():
    study = get_preset("cpu50").studies[0]
    assert {(t.kind, t.metric, t.bound) for t in study.targets} == {
        ("mean_at_most", "fid", 130.0),
        ("every_seed_at_least", "cond_gain", 0.02),
        ("pooled_std_at_most", "jsd", 0.025),
    }
    assert study.baseline == "cpu"
