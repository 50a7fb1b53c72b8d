"""Job submission to a real Ray head with token authentication: the debug sweep (``--smoke-test``) submitted
through the job API with the token succeeds and writes its ranking; a request without the token is refused.

The head runs as ``ray start --head --block`` in its own process group bound to 127.0.0.1 on free ports, with
its own token file, and is stopped by signalling that group (never ``ray stop``, which would stop every Ray
on the machine); its files go to a private --temp-dir.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RAY = Path(sys.executable).with_name("ray")

pytest.importorskip("ray")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, timeout: float) -> None:
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


@pytest.fixture(scope="module")
def auth_head(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("head")
    token = secrets.token_hex(16)
    token_file = tmp / "auth_token"
    token_file.write_text(token)
    dashboard = _free_port()
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token_file),
           "CLUSTERGAN_CACHE": str(tmp / "cache")}
    env.pop("RAY_ADDRESS", None)
    cmd = [str(RAY), "start", "--head", "--block", "--node-ip-address", "127.0.0.1", "--port", str(_free_port()),
           "--num-cpus", "4", "--include-dashboard", "true", "--dashboard-host", "127.0.0.1",
           "--dashboard-port", str(dashboard), "--ray-client-server-port", str(_free_port()),
           "--dashboard-agent-listen-port", str(_free_port()), "--disable-usage-stats"]
    # a private temp dir (short: Ray's socket paths are limited to ~107 characters) so that this head's
    # address file does not outlive it in /tmp/ray, where a later plain `ray.init()` would try to join it
    ray_tmp = Path(tempfile.mkdtemp(prefix="cg-ray-", dir="/tmp"))
    cmd += ["--temp-dir", str(ray_tmp)]
    log = (tmp / "head.log").open("w")
    head = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{dashboard}"
    try:
        _wait_http(f"{url}/api/version", timeout=90)
        yield {"url": url, "token": token, "tmp": tmp, "env": env}
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(timeout=8)  # `ray start --block` keeps polling after its children exit: then kill
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait(timeout=10)
        log.close()
        shutil.rmtree(ray_tmp, ignore_errors=True)


def test_request_without_token_is_refused(auth_head):
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"{auth_head['url']}/api/jobs/", timeout=10)
    assert err.value.code in (401, 403)
    bad = urllib.request.Request(f"{auth_head['url']}/api/jobs/", headers={"Authorization": "Bearer wrong"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(bad, timeout=10)
    assert err.value.code in (401, 403)


SUBMIT = """
import json, sys, time
from ray.job_submission import JobSubmissionClient, JobStatus
url, entrypoint, env = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
client = JobSubmissionClient(url)
job = client.submit_job(entrypoint=entrypoint, runtime_env={"env_vars": env})
deadline = time.time() + 420
while time.time() < deadline:
    status = client.get_job_status(job)
    if status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED):
        break
    time.sleep(2)
print("STATUS", status)
print(client.get_job_logs(job)[-3000:])
"""


def test_submitted_smoke_sweep_succeeds_with_the_token(auth_head):
    exp = auth_head["tmp"] / "exp"
    entrypoint = (f"{sys.executable} {REPO / 'ray_jobs' / 'sweep.py'} --config {REPO / 'sweeps' / 'debug_sweep.yaml'} "
                  f"--smoke-test --storage {exp}")
    env = {"CLUSTERGAN_CACHE": auth_head["env"]["CLUSTERGAN_CACHE"]}
    client_env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": auth_head["token"]}
    client_env.pop("RAY_AUTH_TOKEN_PATH", None)
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", SUBMIT, auth_head["url"], entrypoint, json.dumps(env)],
                         env=client_env, capture_output=True, text=True, timeout=480)
    print(f"job submission + smoke sweep: {time.perf_counter() - start:.1f} s")
    assert "STATUS SUCCEEDED" in out.stdout, out.stdout[-3000:] + out.stderr[-3000:]
    table = (exp / "ranking.md").read_text()
    assert "baseline:pix2pix" in table and "baseline:msgan" in table
