"""The sweep driver killed mid-sweep: ``clustergan sweep --resume`` finishes it; trials that had finished are
not rerun and none is lost. The sweep runs as a CLI subprocess (with its own local Ray) in its own process
group, which is killed with SIGKILL once the first trial has finished."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytest.importorskip("ray")

pytestmark = pytest.mark.xdist_group("ray")  # one worker runs every Ray module: see tests/conftest.py


def _cli(args: list[str], env: dict[str, str], **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "clustergan.cli", *args], env=env, cwd=REPO, start_new_session=True, **kwargs
    )


def _records(exp: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in (exp / "trials").glob("*/trial.json")}


def test_killed_sweep_driver_resumes_without_rerunning_finished_trials(tmp_path):
    sweep = tmp_path / "resume_sweep.yaml"
    sweep.write_text(f"""
base: {REPO / "sweeps" / "debug.yaml"}
overrides: {{cluster.k: 0, loss.lambda_kl1: 0.0, loss.lambda_km: 0.0, train.max_steps: 3, train.threads: 1}}
space: {{loss.lambda_ms: {{type: loguniform, low: 0.1, high: 10.0}}}}
num_trials: 3
baselines: false
""")
    exp = tmp_path / "exp"
    # RAY_ADDRESS=local: start a private local Ray even if a `ray start` cluster runs on this machine
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_ADDRESS": "local"}  # the session's cache folder
    log = (tmp_path / "first.log").open("w")
    first = _cli(["sweep", "--config", str(sweep), "--storage", str(exp)], env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 240
        finished_before: dict[str, dict] = {}
        while time.time() < deadline and first.poll() is None:
            finished_before = (
                {k: v for k, v in _records(exp).items() if v["status"] == "finished"} if exp.is_dir() else {}
            )
            if finished_before:
                break
            time.sleep(0.5)
        assert first.poll() is None, "the sweep ended before it could be killed"
        assert finished_before, "no trial finished in time"
        mtimes = {
            t: (Path(r["per_seed"]["0"]["run_dir"]) / "checkpoints" / "epoch_0001.pt").stat().st_mtime
            for t, r in finished_before.items()
        }
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)  # the driver and its local Ray
        first.wait(timeout=30)
        log.close()
    time.sleep(1)

    again = _cli(
        ["sweep", "--config", str(sweep), "--storage", str(exp), "--resume"],
        env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        out, _ = again.communicate(timeout=400)
    finally:
        if again.poll() is None:
            os.killpg(again.pid, signal.SIGKILL)
    assert again.returncode == 0, out[-3000:]
    after = _records(exp)
    for trial_id, record in finished_before.items():  # not rerun: same record, same checkpoint file
        assert after[trial_id] == record
        ckpt = Path(record["per_seed"]["0"]["run_dir"]) / "checkpoints" / "epoch_0001.pt"
        assert ckpt.stat().st_mtime == mtimes[trial_id]
    finished = [r for r in after.values() if r["status"] == "finished"]
    # None lost. A trial that started after Tune's last experiment snapshot is unknown to the restored Tuner
    # and searcher, which draw a replacement for it; its record stays, as finished (ranked) or, when the kill
    # interrupted it, as running (reported as interrupted). Nothing failed.
    statuses = sorted(v["status"] for v in after.values())
    assert len(finished) >= 3 and set(statuses) <= {"finished", "running"} and len(after) <= 4, statuses
    assert "| 1 | 1 |" in (exp / "ranking.md").read_text()
