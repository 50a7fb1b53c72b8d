"""Shared fixtures: a per-session cache folder (features and converted weights computed once) and the
facades location (tests that need it skip when it is absent).

`make test` runs the suite on two pytest-xdist workers (``-n 2 --dist loadgroup``). Every module that starts
Ray is marked ``xdist_group("ray")``, so one worker runs them one after another (never two Rays on the machine
at once: a plain ``ray.init()`` would join the other's cluster; one ``smoke_job`` per session) while the other
worker runs everything else. Most of the Ray tests' wall time is process start-up and waiting, which the
second worker fills. Under xdist each worker's torch uses one thread, so two workers never oversubscribe two
cores. Plain ``pytest`` (one process) keeps working. The grouping needs pytest < 9 with pytest-xdist 3.8 (the
test extra pins it); a run where the group came apart fails its Ray tests before any Ray starts.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
FACADES = Path(os.environ.get("CLUSTERGAN_FACADES", REPO.parent / "shared" / "datasets" / "facades"))


def _in_ray_group(item) -> bool:
    return any(mark.args[:1] == ("ray",) for mark in item.iter_markers("xdist_group"))


def pytest_collection_modifyitems(config, items):
    # The Ray group is the longest chain of the run: start it first, so that the other worker's tests fill the
    # time beside it instead of delaying its start (xdist hands out work in collection order).
    items.sort(key=lambda item: not _in_ray_group(item))  # stable: each part keeps its order


def pytest_runtest_setup(item):
    # xdist's loadgroup groups by a suffix it appends to each marked test's id in the worker; when it cannot
    # (pytest 9 with xdist 3.8), the group is silently split and two Rays run at once: fail before Ray starts.
    if getattr(item.config.option, "loadgroup", False) and _in_ray_group(item) and not item.nodeid.endswith("@ray"):
        pytest.fail(
            f"pytest-xdist did not put this test in the Ray group (pytest {pytest.__version__}), so the "
            "Ray modules would run in two workers at once: install the pinned test extra "
            "(pip install -e '.[test]'), or run with TEST_WORKERS=0",
            pytrace=False,
        )


@pytest.fixture(scope="session", autouse=True)
def _session_defaults(tmp_path_factory):
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    torch.set_num_threads(max(1, min(2, torch.get_num_threads()) // workers))
    if "CLUSTERGAN_CACHE" not in os.environ:
        os.environ["CLUSTERGAN_CACHE"] = str(tmp_path_factory.mktemp("clustergan-cache"))
    yield


@pytest.fixture
def facades_root() -> Path:
    if not (FACADES / "train").is_dir():
        pytest.skip(f"facades not found at {FACADES} (set CLUSTERGAN_FACADES to its folder)")
    return FACADES


# ------------------------------------------------------------------------- the submitted smoke sweep
#
# One tiny experiment serves every sweep test (issue: "one tiny experiment reused by the report / resume /
# failure tests"): the debug sweep with --smoke-test, submitted as a job to a real Ray head bound to 127.0.0.1
# with token authentication. The head runs as ``ray start --head --block`` in its own process group on free
# ports with its own token file and a private --temp-dir, answers the token checks, runs the job, and is
# stopped (by signalling its group, never ``ray stop``, which would stop every Ray on the machine) before the
# tests that use the experiment go on.

SUBMIT = """
import json, sys, time
from ray.job_submission import JobSubmissionClient, JobStatus
url, entrypoint, env = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
client = JobSubmissionClient(url)
# the dashboard answers before the node's job agent has registered; on a loaded machine that takes a while,
# and the head answers 500 "No available agent to submit job, please try again later": so try again
deadline = time.time() + 120
while True:
    try:
        job = client.submit_job(entrypoint=entrypoint, runtime_env={"env_vars": env})
        break
    except RuntimeError as e:
        if "No available agent" not in str(e) or time.time() > deadline:
            raise
        time.sleep(2)
deadline = time.time() + 420
while time.time() < deadline:
    status = client.get_job_status(job)
    if status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED):
        break
    time.sleep(1)
print("STATUS", status)
print(client.get_job_logs(job)[-20000:])
"""


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _http_status(url: str, token: str | None = None) -> int:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code


def _wait_http(url: str, timeout: float) -> None:
    import time
    import urllib.error
    import urllib.request

    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return  # the server answers (even if it refuses): it is up
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not come up in {timeout} s")


@pytest.fixture(scope="session")
def smoke_job(tmp_path_factory) -> dict:
    """``{"exp", "stdout", "stderr", "seconds", "refused", "accepted"}`` of the debug sweep submitted with
    --smoke-test; ``refused``: the HTTP codes of job-API requests without a token and with a wrong one,
    ``accepted``: with the right one."""
    import json
    import secrets
    import shutil
    import signal
    import subprocess
    import sys
    import tempfile
    import time

    pytest.importorskip("ray")
    tmp = tmp_path_factory.mktemp("head")
    token = secrets.token_hex(16)
    (tmp / "auth_token").write_text(token)
    dashboard = _free_port()
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(tmp / "auth_token")}
    env.pop("RAY_ADDRESS", None)
    # a private temp dir (short: Ray's socket paths are limited to ~107 characters) so that this head's
    # address file is not in /tmp/ray, where a plain `ray.init()` elsewhere would try to join it
    ray_tmp = Path(tempfile.mkdtemp(prefix="cg-ray-", dir="/tmp"))
    cmd = [
        str(Path(sys.executable).with_name("ray")),
        "start",
        "--head",
        "--block",
        "--node-ip-address",
        "127.0.0.1",
        "--port",
        str(_free_port()),
        "--num-cpus",
        "4",
        "--include-dashboard",
        "true",
        "--dashboard-host",
        "127.0.0.1",
        "--dashboard-port",
        str(dashboard),
        "--ray-client-server-port",
        str(_free_port()),
        "--dashboard-agent-listen-port",
        str(_free_port()),
        "--disable-usage-stats",
        "--temp-dir",
        str(ray_tmp),
    ]
    log = (tmp / "head.log").open("w")
    head = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{dashboard}"
    exp = tmp / "exp"
    try:
        _wait_http(f"{url}/api/version", timeout=90)
        record = {
            "exp": exp,
            "refused": [_http_status(f"{url}/api/jobs/"), _http_status(f"{url}/api/jobs/", "wrong")],
            "accepted": _http_status(f"{url}/api/jobs/", token),
        }
        entrypoint = (
            f"{sys.executable} {REPO / 'ray_jobs' / 'sweep.py'} --config "
            f"{REPO / 'sweeps' / 'debug_sweep.yaml'} --smoke-test --storage {exp}"
        )
        job_env = {"CLUSTERGAN_CACHE": os.environ["CLUSTERGAN_CACHE"]}
        client_env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}
        client_env.pop("RAY_AUTH_TOKEN_PATH", None)
        start = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", SUBMIT, url, entrypoint, json.dumps(job_env)],
            env=client_env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        record.update(stdout=out.stdout, stderr=out.stderr, seconds=time.perf_counter() - start)
        print(f"job submission + smoke sweep: {record['seconds']:.1f} s")
        return record
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(timeout=8)  # `ray start --block` keeps polling after its children exit: then kill
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait(timeout=10)
        log.close()
        shutil.rmtree(ray_tmp, ignore_errors=True)
