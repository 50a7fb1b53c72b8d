"""The one same-training check and budget check behind every ``--adopt`` (clustergan.train.adopt)."""

from __future__ import annotations

import json

from clustergan.config import validate
from clustergan.train.adopt import copy_training, not_the_same, short_of_budget


def _run(folder, epochs, config):
    (folder / "checkpoints").mkdir(parents=True)
    for epoch in epochs:
        (folder / "checkpoints" / f"epoch_{epoch:04d}.pt").write_bytes(b"x")
    (folder / "config.json").write_text(json.dumps({"config": config}))
    return folder


def test_short_of_budget_names_the_last_epoch_and_passes_a_finished_run(tmp_path):
    config = validate({}).to_dict()
    assert short_of_budget(_run(tmp_path / "done", [45, 50], config), 50) is None
    assert short_of_budget(tmp_path / "done", 40) is None  # past the budget is finished too
    assert short_of_budget(_run(tmp_path / "cut", [5, 10], config), 50) == (
        "its last checkpoint is at epoch 10, not the budget's last epoch 50"
    )
    assert short_of_budget(_run(tmp_path / "none", [], config), 50) == (
        f"it has no checkpoint in {tmp_path / 'none' / 'checkpoints'}, and the budget ends at epoch 50"
    )


def test_not_the_same_ignores_the_run_folder_and_names_a_training_difference(tmp_path):
    mine = validate({"out": str(tmp_path / "here"), "loss": {"lambda_ms": 0.1}}).to_dict()
    source = _run(tmp_path / "there", [1], {**mine, "out": str(tmp_path / "there")})
    assert not_the_same(source, mine) is None
    other = validate({"loss": {"lambda_ms": 1.0}}).to_dict()
    assert not_the_same(source, other) == "loss.lambda_ms: 0.1 there, 1.0 here"
    assert not_the_same(tmp_path, mine) == f"no config.json in {tmp_path}"
    copy_training(source, tmp_path / "copy")
    assert sorted(p.name for p in (tmp_path / "copy" / "checkpoints").iterdir()) == ["epoch_0001.pt"]
    assert (source / "checkpoints" / "epoch_0001.pt").is_file()  # the source is left as it was


def _stats(folder, ids):
    import numpy as np

    from clustergan.clustering import ClusterStats

    k, d = 2, 3
    ClusterStats(
        k=k,
        means=np.arange(k * d, dtype=np.float32).reshape(k, d),
        precision_cholesky=np.stack([np.eye(d, dtype=np.float32)] * k),
        shrinkage=np.zeros(k),
        sizes=np.bincount(ids, minlength=k),
        cluster_ids=np.asarray(ids),
        silhouette=float("nan"),
        encoder="test",
        weights_source="test",
        backend="sklearn",
    ).save(folder)
    return str(folder)


def test_other_clusters_compares_the_statistics_wherever_they_are_kept(tmp_path):
    from clustergan.train.adopt import other_clusters

    theirs = _stats(tmp_path / "there" / "k2", [0, 1, 1])
    config = validate({"cluster": {"k": 2, "stats_dir": theirs}}).to_dict()
    source = _run(tmp_path / "run", [1], config)
    assert other_clusters(source, _stats(tmp_path / "here" / "k2", [0, 1, 1])) is None  # a copy elsewhere
    assert not_the_same(source, config, _stats(tmp_path / "here" / "k2", [0, 1, 1])) is None
    mine = _stats(tmp_path / "other" / "k2", [1, 0, 0])
    assert other_clusters(source, mine) == f"its cluster statistics ({theirs}) are not these ({mine})"
    assert not_the_same(source, config, mine) == f"its cluster statistics ({theirs}) are not these ({mine})"
    gone = _run(tmp_path / "gone", [1], {**config, "cluster": {"k": 2, "stats_dir": str(tmp_path / "nowhere")}})
    assert other_clusters(gone, mine) == (
        f"its cluster statistics ({tmp_path / 'nowhere'}) are not on this machine to compare with these ({mine})"
    )


def test_sweep_check_refuses_an_unfinished_seed_and_a_control_trained_on_other_clusters(tmp_path):
    """`sweep --adopt control:<name>=FOLDER`: the driver's two checks, before anything is written (the
    training and its last epoch) and once the sweep's statistics are computed (the clusters)."""
    import pytest

    from clustergan.errors import ClusterganError
    from clustergan.train.builders import with_data_root
    from clustergan.tune.space import build_trial_config, fixed_params
    from clustergan.tune.sweep_adopt import check, check_clusters
    from clustergan.tune.sweep_config import SweepConfig

    # the base config's stats_dir is not what the trials train with: check() leaves it alone
    stale = str(tmp_path / "stale")
    base = validate({"train": {"epochs": 2, "epochs_decay": 1}, "cluster": {"stats_dir": stale}}).to_dict()
    control = {"cluster.k": 2, "loss.lambda_ms": 0.1}
    sweep = SweepConfig.model_validate(
        {"name": "s", "base": "x.yaml", "space": {}, "seeds": [0, 1], "baselines": False, "controls": {"c": control}}
    )
    folder = tmp_path / "shelf"
    theirs = _stats(tmp_path / "there" / "k2", [0, 1, 1])
    config = build_trial_config(base, fixed_params("control:c", sweep.controls, base), 0, folder / "seed0")
    config = with_data_root(config)  # the procedural dataset's root, as the run that trained it filled in
    config.cluster.stats_dir = theirs
    _run(folder / "seed0", [1, 3], config.to_dict())
    adopt = {"control:c": str(folder)}

    assert check(adopt, sweep, base) == [
        f"control:c seed 0: adopted from {folder / 'seed0'}, evaluated under protocol 'sweep'",
        f"control:c seed 1: not in {folder}, trained",
    ]
    check_clusters(adopt, sweep, base, {2: _stats(tmp_path / "here" / "k2", [0, 1, 1])})  # the same clusters
    mine = _stats(tmp_path / "mine" / "k2", [1, 1, 0])
    with pytest.raises(ClusterganError) as err:
        check_clusters(adopt, sweep, base, {2: mine})
    assert str(err.value) == (
        f"--adopt control:c={folder}: seed0 is not the training the sweep runs (its cluster statistics "
        f"({theirs}) are not these ({mine})); leave it out to train it"
    )
    (folder / "seed0" / "checkpoints" / "epoch_0003.pt").unlink()
    with pytest.raises(ClusterganError) as err:
        check(adopt, sweep, base)
    assert str(err.value) == (
        f"--adopt control:c={folder}: seed0 is not finished: its last checkpoint is at epoch 1, not the "
        "budget's last epoch 3; leave it out to train it"
    )


def test_a_retried_trial_still_knows_its_training_was_adopted(tmp_path):
    """`take` in a trial whose adopted checkpoints came over before (the trial retried mid-evaluation)
    returns where they came from, so the seed stays marked adopted and out of the race's training pace."""
    from clustergan.tune.sweep_adopt import take

    config = validate({"out": str(tmp_path / "trial" / "seed0")})
    _run(config.run_dir, [3], config.to_dict())
    (config.run_dir / "adopted.json").write_text(json.dumps({"adopted_from": "/shelf/seed0"}))
    assert take({}, "baseline:pix2pix", config) == "/shelf/seed0"
    (config.run_dir / "adopted.json").unlink()
    assert take({}, "baseline:pix2pix", config) is None  # its own training
