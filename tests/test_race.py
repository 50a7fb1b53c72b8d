"""``clustergan race`` on the smoke experiment (the submitted smoke sweep of ``tests/conftest.py``): the dry
run's plan, a whole race (every entrant on the same seeds, the explore stage's seed reused), a rerun that
trains nothing, a race stopped by its run budget that resumes without retraining a finished run, and the
error for a bad schedule; the same race with a round's runs as Ray tasks, and killed mid-round."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clustergan.cli import main
from clustergan.errors import ClusterganError

pytestmark = pytest.mark.xdist_group("ray")  # the smoke experiment is made by the Ray group's worker


@pytest.fixture
def experiment(smoke_job, tmp_path):
    if "STATUS SUCCEEDED" not in smoke_job["stdout"]:
        pytest.fail("the submitted smoke sweep failed:\n" + smoke_job["stdout"][-3000:])
    exp = tmp_path / "exp"
    shutil.copytree(smoke_job["exp"], exp, ignore=shutil.ignore_patterns("baselines", "search", "race"))
    return exp


def _search_trial(exp):
    rows = list(csv.DictReader((exp / "ranking.csv").open()))
    return next(r["trial"] for r in rows if r["kind"] == "search" and r["status"] == "finished")


def test_dry_run_prints_the_entrants_rounds_and_runs(experiment, capsys):
    assert main(["race", str(experiment), "--schedule", "2", "3", "--max-candidates", "1", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "race: 3 entrants (2 controls), seeds [0, 1, 2], t test, alpha 0.05, cond_gain floor " in out
    assert "round 1: 2 seeds each, at most 3 new runs" in out  # seed 0 of each comes from the explore stage
    assert "round 2: 3 seeds each, at most 3 new runs" in out
    assert "at most 6 runs in all" in out
    assert not (experiment / "race").exists()


def test_a_race_runs_every_entrant_on_the_same_seeds_and_a_rerun_trains_nothing(experiment, capsys):
    args = ["race", str(experiment), "--schedule", "2", "3", "--max-candidates", "1"]
    assert main(args) == 0
    out = capsys.readouterr().out
    race = experiment / "race"
    state = json.loads((race / "race.json").read_text())
    assert state["status"] == "finished"
    assert {name: sorted(runs) for name, runs in state["runs"].items()} == {
        name: ["0", "1", "2"] for name in state["runs"]
    } and len(state["runs"]) == 3
    search = _search_trial(experiment)
    assert search in state["runs"]
    # seed 0 was the explore stage's run: not trained again
    assert not list(race.glob("*/seed0")) and len(list(race.glob("*/seed*/metrics.json"))) == 6
    assert out.count("[race] ") == 6
    rows = list(csv.DictReader((race / "ranking.csv").open()))
    assert [r["seeds"] for r in rows] == ["3", "3", "3"]
    assert {"ndb_mean", "ndb_lo", "ndb_hi", "jsd_mean", "lpips_hi", "cond_gain_mean", "ndb_effect"} <= set(rows[0])
    assert "| candidate | kind | seeds | dropped |" in (race / "ranking.md").read_text()
    assert (race / "pareto.png").read_bytes().startswith(b"\x89PNG")  # the means with their intervals
    before = (race / "ranking.csv").read_bytes()
    assert main(args) == 0
    assert "[race] " not in capsys.readouterr().out  # every candidate x seed read back
    assert (race / "ranking.csv").read_bytes() == before


def test_a_race_out_of_runs_stops_and_resumes_without_retraining(experiment, capsys):
    args = ["race", str(experiment), "--schedule", "2", "3", "--max-candidates", "1"]
    # one run: the first entrant gets its seed 1, the second stops the race, the third never got a seed
    assert main([*args, "--max-runs", "1"]) == 0
    race = experiment / "race"
    state = json.loads((race / "race.json").read_text())
    assert state["status"] == "partial: --max-runs 1 spent"
    assert [len(state["runs"].get(name, {})) for name in state["runs"]] == [2, 1]
    assert len(list(csv.DictReader((race / "ranking.csv").open()))) == 3  # the unseeded one listed too
    assert (
        (race / "best_config.yaml")
        .read_text()
        .startswith("# Provisional leader of an unfinished race (partial: --max-runs 1 spent)")
    )
    done = sorted(experiment.glob("race/*/seed*/metrics.json"))
    assert len(done) == 1
    stamps = [p.stat().st_mtime_ns for p in done]
    capsys.readouterr()
    assert main([*args, "--dry-run"]) == 0
    assert "at most 5 runs in all" in capsys.readouterr().out  # the finished race run is not counted again
    assert main(args) == 0
    assert capsys.readouterr().out.count("[race] ") == 5  # the other 5 of the 6 runs
    assert [p.stat().st_mtime_ns for p in done] == stamps
    assert json.loads((race / "race.json").read_text())["status"] == "finished"
    assert (race / "best_config.yaml").read_text().startswith("# Race winner ")


def test_an_evaluation_without_finite_objectives_stops_the_race_naming_the_file(experiment, capsys, monkeypatch):
    import types

    import clustergan.train.evaluate
    import clustergan.train.launch

    def fake_training(cfg, resume):
        return types.SimpleNamespace(run_dir=cfg.out)

    def fake_evaluation(run_dir, protocol, seed, out):
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"protocol": {"name": protocol}, "ndb": 3, "jsd": float("nan"), "lpips": 0.2}))

    monkeypatch.setattr(clustergan.train.launch, "run_training", fake_training)
    monkeypatch.setattr(clustergan.train.evaluate, "evaluate_run", fake_evaluation)
    assert main(["race", str(experiment), "--schedule", "2", "3", "--max-candidates", "1"]) == 2
    err = capsys.readouterr().err
    assert f"{experiment / 'race'}/" in err and "/seed1/metrics.json: the sweep evaluation gave" in err
    assert "'jsd': nan" in err and "a race needs finite ndb, jsd, lpips" in err


def test_a_hand_set_control_enters_by_its_overrides_of_the_sweeps_base(experiment, capsys):
    """The race's own controls: built on the base config of the experiment's sweep.yaml, raced from seed 0
    (the explore stage never ran them); a control without a base to build on is refused."""
    import yaml

    from clustergan.tune.race import entrants
    from clustergan.tune.records import experiment_records
    from clustergan.tune.sweep_config import RaceConfig

    ran = yaml.safe_load((experiment / "sweep.yaml").read_text())
    ran["sweep"]["race"] = {"controls": {"handset": {"cluster.k": 2, "loss.lambda_ms": 0.3}}}
    (experiment / "sweep.yaml").write_text(yaml.safe_dump(ran))
    assert main(["race", str(experiment), "--schedule", "2", "3", "--max-candidates", "1", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "race: 4 entrants (3 controls), seeds [0, 1, 2]" in out
    assert "control race_handset (control:handset): explored seeds reused []" in out
    assert "at most 9 runs in all" in out  # 6 as before, and the control's 3

    config = RaceConfig(controls={"handset": {"cluster.k": 2, "loss.lambda_ms": 0.3}})
    control = entrants(experiment, config, experiment_records(experiment), ran["base"])[-1]
    assert control.kind == "control:handset" and control.train_config["loss"]["lambda_ms"] == 0.3
    assert control.train_config["cluster"]["k"] == 2 and control.train_config["model"]["nz"] > 0  # noise filled
    with pytest.raises(ClusterganError, match=r"race controls \['handset'\]: no base config to build them on"):
        entrants(experiment, config, experiment_records(experiment), None)


def test_a_ledger_without_clusters_gets_the_same_statistics_computed_for_its_race(experiment, tmp_path, capsys):
    """A ledger keeps no clusters/: the race computes them under its own folder, from the inputs the trials
    used, and they are the explore stage's statistics."""
    from clustergan.clustering import ClusterStats

    ledger = tmp_path / "ledger"
    shutil.copytree(experiment, ledger, ignore=shutil.ignore_patterns("clusters"))
    race = tmp_path / "race"
    assert main(["race", str(ledger), "--schedule", "2", "3", "--max-candidates", "1", "--max-runs", "1",
                 "--out", str(race)]) == 0  # fmt: skip
    out = capsys.readouterr().out
    ks = sorted(p.name for p in (race / "clusters").iterdir())
    assert ks and all(
        f"[race] {ledger} keeps no clusters/{k}: computing them into {race / 'clusters' / k}" in out for k in ks
    )
    for k in ks:
        assert ClusterStats.load(race / "clusters" / k).same_as(ClusterStats.load(experiment / "clusters" / k))


def test_a_bad_schedule_is_refused_with_what_to_give(experiment, capsys):
    assert main(["race", str(experiment), "--schedule", "4", "2"]) == 2
    err = capsys.readouterr().err
    assert "race settings (the race: section and the flags given)" in err
    assert "schedule [4, 2]: give increasing seed counts from 2, e.g. [2, 4, 8]" in err


def test_a_folder_without_a_sweep_is_refused(tmp_path, capsys):
    assert main(["race", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"clustergan: error: {tmp_path}: not a sweep experiment or ledger (no sweep_state.json); give its folder"
    )


def test_adopt_takes_runs_that_are_the_same_training_and_refuses_another(experiment, tmp_path, capsys):
    """A first race trains pix2pix's seeds 1 and 2; a second race adopts them from a folder of seed<N>/ runs
    (as a reproduction lays them out): seed 1 with its metrics.json, seed 2 as checkpoints only, which the race
    evaluates without training. An MSGAN run offered as pix2pix's is refused, naming what differs."""
    args = ["race", str(experiment), "--schedule", "2", "3", "--max-candidates", "1"]
    assert main([*args, "--out", str(tmp_path / "first")]) == 0
    state = json.loads((tmp_path / "first" / "race.json").read_text())
    names = {json.loads((experiment / "trials" / n / "trial.json").read_text())["kind"]: n for n in state["runs"]}
    pix2pix, msgan = names["baseline:pix2pix"], names["baseline:msgan"]
    shelf = tmp_path / "reproduction" / "pix2pix"
    for seed in (1, 2):
        shutil.copytree(tmp_path / "first" / pix2pix / f"seed{seed}", shelf / f"seed{seed}")
    (shelf / "seed2" / "metrics.json").unlink()  # a run that was trained, not evaluated under this protocol
    stamps = {p.name: p.stat().st_mtime_ns for p in (shelf / "seed2" / "checkpoints").iterdir()}
    # another seed's training on the shelf as seed 0: never looked at, the explore stage's seed 0 stands
    shutil.copytree(shelf / "seed1", shelf / "seed0")
    capsys.readouterr()

    second = tmp_path / "second"
    assert main([*args, "--out", str(second), "--adopt", f"baseline:pix2pix={shelf}", "--dry-run"]) == 0
    out = capsys.readouterr().out  # the same checks, nothing copied, and the plan counts them apart
    assert f"[race] {pix2pix} seed 1: would be adopted from {shelf / 'seed1'} (metrics.json)" in out
    assert f"[race] {pix2pix} seed 2: would be adopted from {shelf / 'seed2'} (checkpoints to epoch " in out
    assert "round 1: 2 seeds each, at most 2 new runs (and 1 adopted, not trained);" in out
    assert "round 2: 3 seeds each, at most 2 new runs (and 1 adopted, not trained);" in out
    assert "(fewer once candidates drop), and 2 adopted, not trained" in out
    assert f"control {pix2pix} (baseline:pix2pix): explored seeds reused [0], adopted [1, 2]" in out
    assert not second.exists()
    assert main([*args, "--out", str(second), "--adopt", f"baseline:pix2pix={shelf}"]) == 0
    out = capsys.readouterr().out
    assert f"[race] {pix2pix} seed 1: adopted from {shelf / 'seed1'} (metrics.json)" in out
    assert f"[race] {pix2pix} seed 2: adopted from {shelf / 'seed2'} (checkpoints to epoch " in out
    assert f"[race] {pix2pix} (baseline:pix2pix) seed 2: evaluate (adopted checkpoints)" in out
    assert "round 2: 3 seeds each, at most 2 new runs (and 1 adopted, not trained);" in out  # seed 1: read back
    assert f"[race] {pix2pix} (baseline:pix2pix) seed 1" not in out  # read back
    assert out.count(": train") == 4  # the other two entrants' seeds 1 and 2
    assert {p.name: p.stat().st_mtime_ns for p in (second / pix2pix / "seed2" / "checkpoints").iterdir()} == stamps
    adopted = json.loads((second / pix2pix / "seed2" / "adopted.json").read_text())
    assert adopted["adopted_from"] == str((shelf / "seed2").resolve())
    got = json.loads((second / "race.json").read_text())["runs"][pix2pix]
    assert got["1"] == state["runs"][pix2pix]["1"] and got["2"]["ndb"] == state["runs"][pix2pix]["2"]["ndb"]
    # a dry run of that race, without --adopt, still counts a seed adopted earlier and not yet evaluated
    (second / pix2pix / "seed2" / "metrics.json").unlink()
    capsys.readouterr()
    assert main([*args, "--out", str(second), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "round 2: 3 seeds each, at most 0 new runs (and 1 adopted, not trained);" in out
    assert f"control {pix2pix} (baseline:pix2pix): explored seeds reused [0], adopted [1, 2]" in out  # from where

    wrong = tmp_path / "wrong"
    shutil.copytree(tmp_path / "first" / msgan / "seed1", wrong / "seed1")
    assert main([*args, "--out", str(tmp_path / "third"), "--adopt", f"baseline:pix2pix={wrong}"]) == 2
    err = capsys.readouterr().err
    assert f"--adopt {pix2pix}={wrong}: seed1 is not the training this race runs (" in err
    assert "loss.lambda_ms: " in err and "leave it out and let the race train it" in err
    assert main([*args, "--adopt", "pix2pix"]) == 2
    assert "--adopt 'pix2pix': give CANDIDATE=FOLDER" in capsys.readouterr().err


# ------------------------------------------------------------------ a round's runs as Ray tasks


def test_a_round_runs_side_by_side_as_ray_tasks(experiment):
    """The smoke race through the real Ray path (``clustergan race --concurrent 2``, as a user runs it): a
    local Ray, each run a task in a worker process of its own. A subprocess, because a Ray started and shut
    down in this process breaks the next Ray Train run of the same process (test_ray's)."""
    cmd = [sys.executable, "-m", "clustergan.cli", "race", str(experiment), "--schedule", "2", "3"]
    cmd += ["--max-candidates", "1", "--concurrent", "2"]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    race = experiment / "race"
    state = json.loads((race / "race.json").read_text())
    assert state["status"] == "finished" and state["config"]["concurrent"] == 2
    assert {name: sorted(runs) for name, runs in state["runs"].items()} == {n: ["0", "1", "2"] for n in state["runs"]}
    done = re.findall(r"\[race\] (\S+) seed (\d): done on \S+ \(pid (\d+)\)", first.stdout)
    assert len(done) == 6 and len({pid for *_, pid in done}) >= 2, first.stdout  # Ray worker processes
    assert len(list(race.glob("*/seed*/metrics.json"))) == 6
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0 and "[race] " not in again.stdout  # every candidate x seed read back


def _marked(mark: str) -> list[int]:
    """Pids of the processes whose environment holds ``CG_TEST_PROCESS_MARK=mark``."""
    pids = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if f"CG_TEST_PROCESS_MARK={mark}".encode() in environ.read_bytes().split(b"\0"):
                pids.append(int(environ.parent.name))
        except OSError:  # gone, or not ours to read
            continue
    return pids


def _kill_marked(mark: str, timeout: float) -> list[int]:
    """SIGKILL every marked process until none is left or ``timeout`` passes; returns the survivors."""
    deadline = time.monotonic() + timeout
    while (pids := _marked(mark)) and time.monotonic() < deadline:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.2)
    return _marked(mark)


def test_a_race_killed_mid_round_resumes_without_rerunning_a_finished_run(experiment):
    """The driver (and with it its local Ray) killed once a round's first run has finished: the rerun keeps
    that run's metrics untouched and trains only the others."""
    cmd = [sys.executable, "-m", "clustergan.cli", "race", str(experiment), "--schedule", "2", "3"]
    cmd += ["--max-candidates", "1", "--concurrent", "2"]
    race = experiment / "race"
    mark = f"cg-race-kill-{os.getpid()}-{time.monotonic_ns()}"  # every process of that race inherits it
    env = {**os.environ, "CG_TEST_PROCESS_MARK": mark}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True, env=env)
    deadline = time.monotonic() + 600
    while not list(race.glob("*/seed*/metrics.json")):
        assert proc.poll() is None, proc.stdout.read().decode()[-3000:]
        assert time.monotonic() < deadline, "no race run finished within 600 s"
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    # Ray's own processes (raylet, GCS, task workers) run in sessions of their own: killed too, or a task would
    # finish after its driver (and a stray Ray would meet the next test's)
    left = _kill_marked(mark, timeout=60)
    assert not left, f"processes of the killed race still alive after 60 s: {left}"
    done = {p: p.stat().st_mtime_ns for p in race.glob("*/seed*/metrics.json")}
    assert 1 <= len(done) < 6
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert {p: p.stat().st_mtime_ns for p in done} == done  # finished before the kill: not trained again
    assert again.stdout.count(": done on ") == 6 - len(done)
    assert json.loads((race / "race.json").read_text())["status"] == "finished"


def test_the_race_inherits_the_sweeps_cond_gain_floor_unless_it_sets_its_own():
    from clustergan.tune.sweep_config import RaceConfig, SweepConfig

    def race_floor(race: dict | None):
        data = {"base": "x.yaml", "cond_gain_floor": 0.01, **({"race": race} if race is not None else {})}
        return SweepConfig.model_validate(data).race

    assert race_floor({}).cond_gain_floor == 0.01
    assert race_floor({"cond_gain_floor": None}).cond_gain_floor is None  # explicit null: objectives only
    assert race_floor({"cond_gain_floor": 0.03}).cond_gain_floor == 0.03
    assert race_floor(None) is None  # no race: section; `clustergan race` then passes the sweep's floor
    given = RaceConfig()
    SweepConfig.model_validate({"base": "x.yaml", "cond_gain_floor": 0.01, "race": given})
    assert given.cond_gain_floor is None and "cond_gain_floor" not in given.model_fields_set  # left as given


def test_a_cond_gain_floor_under_a_protocol_without_cond_gain_fails_before_any_run(tmp_path, monkeypatch):
    from dataclasses import replace

    from clustergan.metrics.protocols import PROTOCOLS
    from clustergan.tune.race import race_entrants
    from clustergan.tune.sweep_config import RaceConfig

    monkeypatch.setitem(PROTOCOLS, "nogain", replace(PROTOCOLS["sweep"], name="nogain", metrics=("ndb", "lpips")))
    with pytest.raises(ClusterganError) as e:
        race_entrants([], RaceConfig(cond_gain_floor=0.01), tmp_path / "race", "nogain", clusters=tmp_path)
    assert str(e.value) == (
        "race.cond_gain_floor 0.01 needs cond_gain, which the 'nogain' protocol does not compute (it runs ndb, "
        "lpips); race under a protocol that computes it, or set race.cond_gain_floor: null"
    )
    assert not (tmp_path / "race").exists()


def test_clustergan_race_on_an_experiment_takes_the_floor_its_sweep_yaml_ran_with(tmp_path, monkeypatch):
    import yaml

    import clustergan.tune.race as race_module

    got = {}
    monkeypatch.setattr(
        race_module, "run_race", lambda exp, config, **kw: got.setdefault("floor", config.cond_gain_floor)
    )
    for i, (race, floor) in enumerate([({"schedule": [2, 4]}, 0.01), ({"cond_gain_floor": None}, None), (None, 0.01)]):
        exp = tmp_path / f"exp{i}"
        exp.mkdir()
        sweep = {"cond_gain_floor": 0.01, **({"race": race} if race is not None else {})}
        (exp / "sweep.yaml").write_text(yaml.safe_dump({"sweep": sweep, "base": {}}))
        got.clear()
        assert main(["race", str(exp), "--dry-run"]) in (0, None)
        assert got["floor"] == floor, race
    ledger = tmp_path / "ledger"  # a committed ledger keeps sweep_state.json, not sweep.yaml
    ledger.mkdir()
    (ledger / "sweep_state.json").write_text('{"protocol": "sweep", "cond_gain_floor": 0.02}')
    got.clear()
    assert main(["race", str(ledger), "--dry-run"]) in (0, None)
    assert got["floor"] == 0.02


def test_the_cpu50_search_trains_the_cpu50_rows_so_its_race_can_adopt_their_seeds(tmp_path):
    """sweeps/facades_search_cpu50.yaml's fixed trials (pix2pix, MSGAN, the hand-set clustergan control) are
    the same trainings as the cpu50 reproduction's rows, seed for seed: `race --adopt` takes those runs."""
    from clustergan.config import training_differences
    from clustergan.reproduce import get_preset
    from clustergan.reproduce.run import build_config, run_specs
    from clustergan.tune.space import baseline_params, control_params, with_values
    from clustergan.tune.sweep_config import load_sweep

    repo = Path(__file__).resolve().parents[1]
    sweep, base = load_sweep(repo / "sweeps" / "facades_search_cpu50.yaml")
    fixed = {
        "pix2pix": baseline_params("pix2pix", base),
        "msgan": baseline_params("msgan", base),
        "clustergan_ms0.1": control_params("clustergan", sweep.race.controls, base),
    }
    (tmp_path / "facades" / "train").mkdir(parents=True)
    for spec in run_specs(get_preset("cpu50"), ["facades"], list(fixed), [1]):
        row = build_config(spec, tmp_path / "runs", tmp_path / "facades", smoke=False).model_dump(mode="json")
        trial = {**with_values(base, fixed[spec.method.key]), "seed": 1}
        assert training_differences(row, trial, spec.name) == {}, spec.method.key


def test_the_races_pace_per_run_leaves_out_trials_whose_seeds_were_adopted():
    """A baseline adopted by `sweep --adopt` took seconds to evaluate: counted, it would halve the cost the
    dry run prints for runs the race trains."""
    from clustergan.tune.race import _seconds_per_run
    from clustergan.tune.records import SeedResult, TrialRecord

    def trial(name, seconds, adopted_from=None, status="finished"):
        seed = SeedResult(ndb=1, jsd=0.1, lpips=0.1, run_dir=f"/r/{name}", adopted_from=adopted_from)
        return TrialRecord(
            trial_id=name, kind="search", params={}, status=status, seeds=[0], started=100.0,
            finished=100.0 + seconds, per_seed={"0": seed}, metrics=seed.metrics(),
        )  # fmt: skip

    trials = [trial("a", 1500.0), trial("b", 1700.0), trial("p", 20.0, adopted_from="/shelf/seed0")]
    assert _seconds_per_run(trials) == 1600.0
    assert _seconds_per_run([trials[2], trial("f", 9.0, status="failed")]) is None
