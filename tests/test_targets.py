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
        k: {"label": k.upper(), "seeds": {i: {"metrics": {"fid": x}} for i, x in enumerate(v)}}
        for k, v in values.items()
    }


def test_pooled_std_and_its_chi_square_interval_golden():
    s, df = pooled_std([[1.0, 2.0, 3.0, 4.0, 5.0], [0.0, 2.0], [5.0]])  # variances 2.5 (df 4) and 2 (df 1)
    assert df == 5 and s == pytest.approx(((4 * 2.5 + 1 * 2.0) / 5) ** 0.5)  # 2.4, not the unweighted 2.25
    assert pooled_std([[5.0]]) == (None, 0) and std_interval(None, 0) is None
    lo, hi = std_interval(1.0, 4)  # chi-square quantiles at df 4: 9.4877 and 0.7107
    assert lo == pytest.approx((4 / 9.4877) ** 0.5, rel=1e-4) and hi == pytest.approx((4 / 0.7107) ** 0.5, rel=1e-4)


def test_mean_target_t_interval_golden_and_pending_until_every_seed():
    t = Target("mean <= 2.5", "mean_at_most", "fid", ("a",), 2.5)
    r = check(t, _rows(a=[1.0, 2.0, 3.0]), 3)["rows"]["a"]
    assert r["value"] == 2.0  # t(0.95, 2) = 2.92 x se 0.577 = 1.686
    assert r["lo"] == pytest.approx(2 - 1.6859, abs=1e-4) and r["hi"] == pytest.approx(2 + 1.6859, abs=1e-4)
    assert check(t, _rows(a=[1.0, 2.0, 3.0]), 3)["status"] == "met"
    assert check(t, _rows(a=[1.0, 2.0, 5.0]), 3)["status"] == "not met"
    assert check(t, _rows(a=[1.0, 2.0]), 3)["status"] == "pending"


def test_every_seed_target_fails_on_one_seed_even_with_seeds_to_come():
    t = Target("m >= 0.02 in every seed", "every_seed_at_least", "fid", ("a", "b"), 0.02)
    assert check(t, _rows(a=[0.03, 0.019], b=[0.05]), 3)["status"] == "not met"
    assert check(t, _rows(a=[0.03, 0.021], b=[0.05]), 3)["status"] == "pending"
    assert check(t, _rows(a=[0.03, 0.021, 0.02], b=[0.05, 0.04, 0.03]), 3)["status"] == "met"
    assert check(t, _rows(a=[0.03, 0.021, 0.02]), 3)["status"] == "pending"  # row b has no runs yet


def test_pooled_std_target_status_and_the_baseline_column():
    t = Target("pooled std <= 1.2", "pooled_std_at_most", "fid", ("a", "b"), 1.2)
    now = _rows(a=[1.0, 2.0, 3.0], b=[2.0, 3.0, 4.0])  # pooled std 1
    assert check(t, now, 3)["status"] == "met"
    assert check(t, _rows(a=[1.0, 2.0, 3.0], b=[2.0, 4.0, 6.0]), 3)["status"] == "not met"
    lines, results = targets_section((t,), now, 3, baseline=("old", _rows(a=[1.0, 2.0, 3.0], b=[2.0, 4.0, 6.0])))
    row = next(line for line in lines if line.startswith("| pooled std"))
    assert "pooled: A; B | 6 | 1 (df 4) |" in row and "**met** | 1.581 (df 4) [" in row
    assert results[0]["status"] == "met"


def test_a_finished_run_without_a_finite_value_is_not_measured_never_pending_or_met():
    nan = float("nan")
    every = Target("m >= 0.02 in every seed", "every_seed_at_least", "fid", ("a",), 0.02)
    assert check(every, _rows(a=[nan, 0.01, 0.04]), 3)["status"] == "not met"  # 0.01 decides, whatever the NaN
    assert check(every, _rows(a=[nan, 0.03, 0.04]), 3)["status"] == "not measured"
    mean = Target("mean <= 2.5", "mean_at_most", "fid", ("a",), 2.5)
    r = check(mean, _rows(a=[1.0, nan, 1.0]), 3)
    assert r["status"] == "not measured" and r["rows"]["a"]["value"] == 1.0 and r["rows"]["a"]["seeds"] == 2
    rows = _rows(a=[1.0, 2.0, 3.0])
    del rows["a"]["seeds"][2]["metrics"]["fid"]  # finished, but the metric was not computed
    assert check(mean, rows, 3)["status"] == "not measured"
    pooled = Target("pooled std <= 1.2", "pooled_std_at_most", "fid", ("a",), 1.2)
    assert check(pooled, _rows(a=[1.0, nan, 3.0]), 3)["status"] == "not measured"
    lines, results = targets_section((every,), _rows(a=[nan]), 3)
    assert results[0]["rows"]["a"] == {"value": None, "lo": None, "hi": None, "seeds": 0}  # JSON null, not NaN


def test_a_target_naming_no_row_or_an_unknown_kind_or_metric_is_an_error():
    with pytest.raises(ConfigError, match="unknown kind 'median'"):
        Target("x", "median", "fid", ("a",), 1.0)
    with pytest.raises(ConfigError, match="unknown metric 'FID'"):
        Target("x", "mean_at_most", "FID", ("a",), 1.0)
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
    assert {t.metric: t.keys for t in study.targets} == {
        "fid": ("clustergan_ms0.1",),
        "cond_gain": ("pix2pix", "msgan_ms0.1", "clustergan_ms0.1"),
        "jsd": ("msgan_ms0.1", "clustergan_ms0.1"),
    }
    assert study.baseline == "cpu" and get_preset(study.baseline)  # a known preset, else the column vanishes


def test_cpu80_is_cpu50_at_80_epochs_read_beside_cpu50():
    cpu50, cpu80 = get_preset("cpu50").studies[0], get_preset("cpu80").studies[0]
    assert set(cpu80.overrides) - set(cpu50.overrides) == {"train.epochs=40", "train.epochs_decay=40"}
    assert set(cpu50.overrides) - set(cpu80.overrides) == {"train.epochs=25", "train.epochs_decay=25"}
    assert (cpu80.methods, cpu80.seeds, cpu80.protocol, cpu80.targets) == (
        cpu50.methods,
        cpu50.seeds,
        cpu50.protocol,
        cpu50.targets,
    )
    assert cpu80.baseline == "cpu50" and get_preset("cpu80").page == "results/cpu80.md"
