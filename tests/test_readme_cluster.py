"""The README's "On a cluster" block, run as written: a head with token authentication, the demo sweep
submitted as a job, its logs followed, its status read, TensorBoard on the experiment, and ``ray stop``.

The block runs in a copy of the repository's tracked files (so the experiment does not land in this
checkout), with HOME in a temporary folder (so ``ray get-auth-token --generate`` writes a token of its own).
The README's ports are Ray's and TensorBoard's defaults; where one is taken, something else is running
there and ``ray stop`` would stop it too, so the test skips. Only the TensorBoard line changes: it serves
until stopped, so it runs in the background until its HParams plugin answers, and is then stopped.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("ray")

pytestmark = pytest.mark.xdist_group("ray")  # one worker runs every Ray module: see tests/conftest.py

REPO = Path(__file__).resolve().parents[1]
PORTS = {6379: "Ray's GCS", 8265: "Ray's dashboard", 6006: "TensorBoard"}

WAIT_TENSORBOARD = """
import json, sys, time, urllib.request
deadline = time.time() + 120
while True:
    try:
        with urllib.request.urlopen("http://127.0.0.1:6006/data/plugins_listing", timeout=5) as r:
            plugins = json.load(r)
        if plugins.get("hparams", {}).get("enabled"):
            break
    except OSError:
        pass
    if time.time() > deadline:
        sys.exit("TensorBoard's HParams plugin did not come up on the experiment in 120 s")
    time.sleep(1)
print("TENSORBOARD HPARAMS ENABLED")
"""


CHECK_DASHBOARD = """
import urllib.error, urllib.request
try:
    code = urllib.request.urlopen("http://127.0.0.1:8265/", timeout=10).status
except urllib.error.HTTPError as e:
    code = e.code
print("DASHBOARD ANSWERS", code)
"""


def readme_block() -> str:
    text = (REPO / "README.md").read_text()
    section = text[text.index("## On a cluster") :]
    return re.search(r"```bash\n(.*?)```", section, re.S).group(1)


def _taken(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def runnable(block: str, wait_script: Path, dashboard_script: Path) -> str:
    """The block with its TensorBoard line served in the background until HParams answers, and the dashboard
    the status line names asked for its page."""
    lines = []
    for line in block.splitlines():
        if line.startswith("ray job status"):
            line = f"{line}\npython {dashboard_script}"
        if line.startswith("tensorboard "):
            command = line.split("#")[0].strip()
            line = f'{command} >tensorboard.log 2>&1 & TB=$!; python {wait_script}; kill "$TB"; wait "$TB" || true'
        lines.append(line)
    return "\n".join(lines)


def test_the_readme_cluster_block_runs_as_written(tmp_path):
    block = readme_block()
    # what the README promises a user sees, in the order a user types it
    order = [
        "RAY_AUTH_MODE=token",
        "ray get-auth-token --generate",
        "ray start --head",
        "ray job submit",
        "ray job logs --follow",
        "ray job status",
        "tensorboard --logdir",
        "ray stop",
    ]
    positions = [block.find(step) for step in order]
    assert -1 not in positions and positions == sorted(positions), dict(zip(order, positions, strict=True))
    taken = [f"{port} ({what})" for port, what in PORTS.items() if _taken(port)]
    if taken:
        pytest.skip(
            f"port(s) {', '.join(taken)} in use on 127.0.0.1: the README's block would meet (and ray "
            "stop would stop) what runs there"
        )
    work = tmp_path / "clustergan"
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    for name in filter(None, files.decode().split("\0")):
        if (REPO / name).is_file():
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, work / name)
    (tmp_path / "home").mkdir()
    wait = tmp_path / "wait_tensorboard.py"
    wait.write_text(WAIT_TENSORBOARD)
    dashboard = tmp_path / "check_dashboard.py"
    dashboard.write_text(CHECK_DASHBOARD)
    script = "set -euo pipefail\ntrap 'ray stop --force >/dev/null 2>&1 || true' EXIT\n" + runnable(
        block, wait, dashboard
    )
    env = {**os.environ, "HOME": str(tmp_path / "home"), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    for name in ("RAY_ADDRESS", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        env.pop(name, None)
    out = subprocess.run(["bash", "-c", script], cwd=work, env=env, capture_output=True, text=True, timeout=900)
    log = out.stdout + out.stderr
    (tmp_path / "block.log").write_text(log)
    assert out.returncode == 0, log[-6000:]
    assert (tmp_path / "home" / ".ray" / "auth_token").is_file()  # the token the head and the client used
    assert "[sweep demo_sweep] 5/5 trials done (0 failed)" in out.stdout, log[-6000:]  # followed logs
    assert "Best configuration (ready to train)" in out.stdout
    status = log.split("DASHBOARD ANSWERS")[0].rsplit("Job submission server address", 1)[-1]  # ray job status
    assert "Job 'demo-sweep' succeeded" in status, log[-3000:]
    assert "DASHBOARD ANSWERS 200" in out.stdout, log[-3000:]  # the page itself; its API asks for the token
    assert "TENSORBOARD HPARAMS ENABLED" in out.stdout
    exp = work / "runs" / "sweeps" / "cluster_demo"  # $PWD/... : the submitting checkout, not the job's copy
    for name in ("ranking.md", "ranking.csv", "report.html", "best_config.yaml"):
        assert (exp / name).is_file(), name
    assert len([p for p in (exp / "hparams").iterdir() if p.is_dir()]) == 5
