"""`clustergan dashboard`: optuna-dashboard on an experiment's study, on 127.0.0.1, reachable over HTTP."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from clustergan.cli import main


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_dashboard_serves_the_experiments_study(tmp_path):
    pytest.importorskip("optuna_dashboard", reason="optuna-dashboard not installed (pip install -e '.[dashboard]')")
    import optuna

    exp = tmp_path / "exp"
    exp.mkdir()
    study = optuna.create_study(
        study_name="tiny_sweep",
        storage=f"sqlite:///{exp / 'optuna.db'}",
        directions=["minimize", "minimize", "maximize"],
    )
    study.add_trial(
        optuna.trial.create_trial(
            params={"x": 0.5}, distributions={"x": optuna.distributions.FloatDistribution(0, 1)}, values=[3, 0.2, 0.1]
        )
    )
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "clustergan.cli", "dashboard", str(exp), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline, body = time.monotonic() + 60, None
        while time.monotonic() < deadline and body is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=5) as r:
                    body = json.loads(r.read())
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"the dashboard exited: {proc.stdout.read()}")
                time.sleep(0.5)
        assert body is not None, "the dashboard did not answer within 60 s"
        assert [s["study_name"] for s in body["study_summaries"]] == ["tiny_sweep"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/dashboard", timeout=5) as r:
            assert r.status == 200
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert f"http://127.0.0.1:{port}/dashboard" in out


def test_dashboard_refuses_a_folder_without_a_study(tmp_path, capsys):
    assert main(["dashboard", str(tmp_path)]) == 2
    assert (
        f"{tmp_path / 'optuna.db'} not found: pass an experiment folder written by `clustergan sweep`"
        in capsys.readouterr().err
    )
