"""The sweep's typed trial records and the committed ledger, without Ray: ``clustergan report`` on a copy of
``docs/sweeps/facades_search`` regenerates its ranking byte for byte; the records are strict (an unknown key
names itself), versioned (a newer version is refused, an old record is upgraded and migrated); the ledger
restores and seeds a study under the sweep's current configuration; ``clustergan.tune`` imports point down."""

from __future__ import annotations

import ast
import json
import re
import shutil
from pathlib import Path

import pytest

from clustergan.errors import ClusterganError, ConfigError
from clustergan.tune import records
from clustergan.tune.records import SCHEMA_VERSION, TrialRecord, TrialSpec, parse_record, read_record, write_record

REPO = Path(__file__).resolve().parents[1]
LEDGER = REPO / "docs" / "sweeps" / "facades_search"


def _record(**changes) -> dict:
    data = {
        "schema_version": SCHEMA_VERSION,
        "trial_id": "t1",
        "trial_name": "run_trial_t1",
        "kind": "search",
        "params": {"cluster.k": 4, "loss.lambda_ms": 0.5},
        "status": "finished",
        "seeds": [0],
        "started": 1.0,
        "per_seed": {
            "0": {
                "ndb": 3.0,
                "jsd": 0.2,
                "lpips": 0.1,
                "cond_gain": 0.02,
                "sample_grid": None,
                "run_dir": "/x/trials/t1/seed0",
            }
        },
        "sampled": {"cluster.k:off": 0.7, "cluster.k": 4, "loss.lambda_ms": 0.5},
        "metrics": {"ndb": 3.0, "jsd": 0.2, "lpips": 0.1, "cond_gain": 0.02},
        "finished": 2.0,
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


# ------------------------------------------------------------------------------------ the committed ledger


def test_report_of_the_committed_ledger_regenerates_its_ranking_byte_for_byte(tmp_path):
    from clustergan.cli import main

    copy = tmp_path / "facades_search"
    shutil.copytree(LEDGER, copy)
    for name in ("ranking.csv", "ranking.md", "pareto.png", "best_config.yaml"):
        (copy / name).unlink()
    assert main(["report", str(copy)]) == 0
    assert (copy / "ranking.csv").read_bytes() == (LEDGER / "ranking.csv").read_bytes()
    # the Markdown and the best configuration differ only in the folder they name
    for name in ("ranking.md", "best_config.yaml"):
        assert (copy / name).read_text().replace(str(copy), "docs/sweeps/facades_search") == (
            LEDGER / name
        ).read_text(), name


def test_the_committed_records_are_at_the_current_schema_version():
    assert len(records.record_files(REPO / "docs" / "sweeps")) >= 14
    assert records.migrate(REPO / "docs" / "sweeps", write=False) == []  # `--migrate` has nothing left to do
    for path in records.record_files(REPO / "docs" / "sweeps"):
        assert json.loads(path.read_text())["schema_version"] == SCHEMA_VERSION


def test_the_committed_ledger_restores_and_seeds_a_study_under_the_current_sweep(tmp_path):
    import optuna

    from clustergan.tune.ledger import ledger_trials, restore, restored_trials, seed_study
    from clustergan.tune.sweep_config import load_sweep

    sweep, base = load_sweep(REPO / "sweeps" / "facades_search.yaml")
    ledger = tmp_path / "ledger"
    shutil.copytree(LEDGER, ledger)
    restored = restore(ledger, tmp_path / "exp", base)  # no trial trained under another configuration
    assert len(restored) == 14 and len(restored_trials(tmp_path / "exp")) == 14
    assert {r.kind for r in restored} == {"search", "baseline:pix2pix", "baseline:msgan"}
    assert all(Path(r.sample_grid).is_file() for r in restored_trials(tmp_path / "exp"))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(directions=["minimize", "minimize", "maximize"])
    assert seed_study(study, sweep.space, ledger_trials(ledger)) == 12 == len(study.trials)


def test_a_key_the_ledger_predates_is_compared_at_its_default(tmp_path):
    """The committed trials ran before ``train.ema`` existed: at the key's default they match; a sweep that
    turns EMA on trains something else, and restoring them there is refused, naming the key."""
    from clustergan.tune.ledger import restore
    from clustergan.tune.sweep_config import load_sweep, with_values

    assert all(
        "ema" not in r["train_config"]["train"]
        for r in (json.loads(p.read_text()) for p in LEDGER.glob("trials/*/trial.json"))
    )
    _, base = load_sweep(REPO / "sweeps" / "facades_search.yaml")
    with pytest.raises(ClusterganError, match=r"train\.ema\.half_life_images: 0 in the ledger, 500 now"):
        restore(LEDGER, tmp_path / "exp", with_values(base, {"train.ema.half_life_images": 500}))
    assert not (tmp_path / "exp").exists()


# ------------------------------------------------------------------------------------------- the records


def test_an_unknown_key_is_an_error_naming_it(tmp_path):
    path = tmp_path / "trial.json"
    path.write_text(json.dumps(_record(colour="blue")))
    with pytest.raises(ClusterganError, match=r"trial.json: invalid trial record:\n  unknown key `colour`"):
        read_record(path)
    bad_seed = _record()
    bad_seed["per_seed"]["0"]["ndb_typo"] = 1.0
    with pytest.raises(ClusterganError, match=r"unknown key `per_seed.0.ndb_typo`"):
        parse_record(bad_seed)
    with pytest.raises(ClusterganError, match=r"`params.cluster.k`: '4' is not a number"):
        parse_record(_record(params={"cluster.k": "4"}))
    with pytest.raises(ClusterganError, match=r"kind 'grid': expected 'search', 'baseline:<name>' or 'control:<name>'"):
        parse_record(_record(kind="grid"))
    with pytest.raises(ClusterganError, match=r"a finished trial's metrics need ndb, jsd, lpips"):
        parse_record(_record(metrics={"ndb": 1.0}))


def test_the_schema_version_is_checked():
    with pytest.raises(
        ClusterganError,
        match=rf"schema_version 9 is newer than this clustergan's "
        rf"\({SCHEMA_VERSION}\); update clustergan",
    ):
        parse_record(_record(schema_version=9))
    with pytest.raises(ClusterganError, match=r"schema_version '2' is not a record version"):
        parse_record(_record(schema_version="2"))
    with pytest.raises(ValueError, match=r"version 1; this clustergan reads and writes version 2"):
        TrialRecord.model_validate(_record(schema_version=1))  # the model itself takes the current one only
    with pytest.raises(ValueError, match=r"Extra inputs are not permitted"):
        TrialSpec(
            name="x",
            base={},
            space={},
            seeds=[0],
            protocol="sweep",
            workers=0,
            cpus_per_worker=1.0,
            gpus_per_worker=0.0,
            report_every_s=1.0,
            storage="/x",
            cluster_dirs={},
            extra_key=1,
        )


def test_an_old_record_is_upgraded_on_read_and_migrated_on_disk(tmp_path, capsys):
    old = _record(schema_version=None, restored_from="docs/sweeps/x")
    old["per_seed"]["1"] = "pending"  # version 1 tolerated non-objects there
    assert "schema_version" not in old
    path = tmp_path / "exp" / "trials" / "t1" / "trial.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(old))
    record = read_record(path)
    assert record.schema_version == SCHEMA_VERSION and list(record.per_seed) == ["0"]
    assert record.params == {"cluster.k": 4, "loss.lambda_ms": 0.5} and isinstance(record.params["cluster.k"], int)
    assert records.main([str(tmp_path)]) == 0 and "1 to migrate" in capsys.readouterr().out
    assert "schema_version" not in json.loads(path.read_text())  # checking writes nothing
    assert records.main(["--migrate", str(tmp_path)]) == 0 and "1 migrated" in capsys.readouterr().out
    data = json.loads(path.read_text())
    assert data["schema_version"] == SCHEMA_VERSION and list(data)[:2] == ["schema_version", "trial_id"]
    assert read_record(path) == record and records.migrate(tmp_path) == []


def test_write_and_read_round_trip_without_none_fields(tmp_path):
    record = parse_record(_record())
    record.error = None
    path = write_record(tmp_path / "trials" / "t1" / "trial.json", record)
    data = json.loads(path.read_text())
    assert "error" not in data and "sample_grid" not in data["per_seed"]["0"]
    assert read_record(path) == record and not list(path.parent.glob(".*tmp*"))
    record.status = "exploded"  # a field set since the record was built is checked when written
    with pytest.raises(ClusterganError, match=r"`status` = 'exploded': Input should be 'running', 'finished' or"):
        write_record(path, record)
    assert read_record(path).status == "finished"
    with pytest.raises(ClusterganError, match=r"missing.json: file not found"):
        read_record(tmp_path / "missing.json")


def test_seed_means_average_the_metrics_every_seed_has():
    record = parse_record(
        _record(
            seeds=[0, 1],
            per_seed={
                "0": {"ndb": 2.0, "jsd": 0.2, "lpips": 0.1, "fid": 50.0, "run_dir": "a"},
                "1": {"ndb": 4.0, "jsd": 0.4, "lpips": 0.3, "run_dir": "b"},
            },
        )
    )
    assert record.seed_means() == pytest.approx({"ndb": 3.0, "jsd": 0.3, "lpips": 0.2})


# --------------------------------------------------------------------------------- typed configs, layering


def test_trial_parameters_go_into_the_config_typed():
    from clustergan.tune.space import baseline_params, build_trial_config
    from clustergan.tune.sweep_config import load_sweep, with_values

    _, base = load_sweep(REPO / "sweeps" / "debug_sweep.yaml")
    config = build_trial_config(base, {"cluster.k": 3, "loss.lambda_ms": 1e-05}, 2, "/tmp/out")
    assert (config.cluster.k, config.loss.lambda_ms, config.seed, config.out) == (3, 1e-05, 2, "/tmp/out")
    off = build_trial_config(base, {"cluster.k": 0, "loss.lambda_kl1": 2.0}, 0, "/tmp/out")
    assert off.loss.lambda_kl1 == 0.0  # no clusters: no cluster losses
    assert baseline_params("msgan", with_values(base, {"model.nz": 0}))["model.nz"] == 8
    assert with_values({"a": {"b": 1}}, {"a.c": "1.0"}) == {"a": {"b": 1, "c": "1.0"}}  # a string stays one
    with pytest.raises(ConfigError, match=r"`a.b.c`: `b` is not a section"):
        with_values({"a": {"b": 1}}, {"a.b.c": 2})


def _layers() -> dict[str, int]:
    import clustergan.tune

    rows = re.findall(r"^(\d)\s+``(\w+)``", clustergan.tune.__doc__, flags=re.M)
    return {name: int(layer) for layer, name in rows}


def test_tune_imports_point_down_the_documented_layers():
    layers = _layers()
    folder = REPO / "clustergan" / "tune"
    assert set(layers) == {p.stem for p in folder.glob("*.py")} - {"__init__"}
    for name, layer in layers.items():
        tree = ast.parse((folder / f"{name}.py").read_text())
        top = set(tree.body)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("clustergan.tune"):
                targets = (
                    [node.module.removeprefix("clustergan.tune").lstrip(".")]
                    if node.module != "clustergan.tune"
                    else [a.name for a in node.names]
                )
            elif isinstance(node, ast.Import):
                targets = [
                    a.name.removeprefix("clustergan.tune.") for a in node.names if a.name.startswith("clustergan.tune.")
                ]
            else:
                continue
            for target in targets:
                assert node in top, f"{name}.py imports clustergan.tune.{target} inside a function"
                assert layers[target] < layer, f"{name}.py (layer {layer}) imports {target} (layer {layers[target]})"


# ----------------------------------------------------------------------- controls, best config as extends


def test_a_control_is_a_fixed_trial_with_its_own_kind_and_cluster_statistics(tmp_path):
    from clustergan.tune.space import cluster_ks, fixed_kind, fixed_trials
    from clustergan.tune.sweep_config import load_sweep
    from clustergan.tune.trial import new_record

    sweep, base = load_sweep(REPO / "sweeps" / "demo_sweep.yaml")
    assert fixed_trials(sweep) == ["pix2pix", "msgan", "control:clustergan"]
    assert [fixed_kind(v) for v in fixed_trials(sweep)] == ["baseline:pix2pix", "baseline:msgan", "control:clustergan"]
    spec = TrialSpec(
        name="demo",
        base=base,
        space=sweep.space,
        controls={"ctl": {"cluster.k": 9}},
        seeds=[0],
        protocol="sweep",
        workers=0,
        cpus_per_worker=1.0,
        gpus_per_worker=0.0,
        report_every_s=1.0,
        storage=str(tmp_path),
        cluster_dirs={},
    )
    record = new_record({"baseline": "control:ctl"}, spec, "t1", None)
    assert record.kind == "control:ctl" and record.params == {"cluster.k": 9} and not record.is_search
    assert 9 in cluster_ks(sweep.model_copy(update={"controls": {"ctl": {"cluster.k": 9}}}), base)

    bad = tmp_path / "bad.yaml"
    bad.write_text(f"base: {REPO / 'sweeps' / 'debug.yaml'}\ncontrols:\n  mine: {{loss.lambda_typo: 1.0}}\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: controls.mine: invalid config:\n  .*lambda_typo"):
        load_sweep(bad)


def test_best_config_is_the_base_config_extended_by_what_differs(tmp_path):
    from clustergan.config import load_config
    from clustergan.tune.report import write_report
    from clustergan.tune.space import build_trial_config
    from clustergan.tune.sweep_config import load_sweep

    _, base = load_sweep(REPO / "sweeps" / "demo_sweep.yaml")
    params = {"cluster.k": 3, "loss.lambda_ms": 0.25, "loss.lambda_kl1": 2.0, "loss.lambda_km": 0.01}
    trained = build_trial_config(base, params, 0, tmp_path / "exp" / "trials" / "t1" / "seed0")
    exp = tmp_path / "exp"
    write_record(records.record_path(exp, "t1"), parse_record(_record(params=params, train_config=trained.to_dict())))
    (exp / "sweep_state.json").write_text(
        json.dumps({"status": "finished", "name": "demo", "base_config": str(REPO / "sweeps" / "debug.yaml")})
    )
    write_report(exp)
    text = (exp / "best_config.yaml").read_text()
    assert "\nextends: ../../../../" in text and "  lambda_km: 0.01\n" in text and "  lr: 0.0008\n" in text
    assert "ngf" not in text and "direction" not in text  # only what differs from debug.yaml
    rebuilt = load_config(exp / "best_config.yaml").to_dict()
    expected = trained.to_dict()
    for key in ("name", "out"):
        rebuilt.pop(key), expected.pop(key)
    assert rebuilt == expected
