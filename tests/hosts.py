"""Two hosts on this machine for the multi-host tests: network namespaces joined by a veth pair, each with a
filesystem and a host name of its own.

A host is a holder process (``sleep``) inside its own network, mount and UTS namespaces (host name
``cg-<name>``), where private tmpfs are mounted on ``/tmp`` and ``/dev/shm``. So each host has its own
loopback, its own address on the veth and its own ``/tmp`` (Ray's session folder, ``HOME``, the caches, the
run folders): nothing is shared but the network and the read-only code (this checkout and its ``.venv``, as
the same image would be on real hosts).
Every command on a host runs through ``nsenter`` into both namespaces of the holder.

The addresses come from 198.18.0.0/15, the range reserved for network tests (RFC 2544), and are assigned only
to the two ends of the veth: no traffic leaves the namespaces. Killing a host kills every process of its
mount namespace (its own view of ``/proc`` is shared, so they are found by their namespace id); starting it
again is a reboot: a new holder, an empty ``/tmp``.

Everything made is removed by :meth:`TwoHosts.close`, always: the processes (by namespace), the namespaces
(which removes the veth). Every wait has a deadline.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SUBNET = "198.18.231"  # .1 the head, .2 the worker; /30
DEVICE = "eth1"  # the interface that joins the hosts, on each (the name the README uses)


def namespaces_unavailable() -> str | None:
    """Why two hosts cannot be made here (None: they can)."""
    if sys.platform != "linux":
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns add)"
    for tool in ("ip", "nsenter", "unshare", "mount"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed (iproute2 / util-linux)"
    probe = f"cgprobe{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"`ip netns add` failed here: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def _run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


def _wait(predicate, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        time.sleep(interval)


class Host:
    """One host: ``name``, its network namespace ``netns``, its ``address`` on the veth ``device``."""

    def __init__(self, name: str, netns: str, address: str, device: str, env: dict[str, str]):
        self.name, self.netns, self.address, self.device = name, netns, address, device
        self.env = env
        self.holder: subprocess.Popen | None = None
        self.mnt_ns: str | None = None

    # -------------------------------------------------------------------------------------- life cycle
    def boot(self) -> None:
        """A new holder: a fresh mount namespace with empty private /tmp and /dev/shm."""
        marker = f"/tmp/.host-{self.name}"
        script = (
            f"hostname cg-{self.name} && "
            "mount -t tmpfs -o size=4g tmpfs /tmp && mount -t tmpfs -o size=2g tmpfs /dev/shm && "
            f"mkdir -p /tmp/home /tmp/cache && touch {marker} && exec sleep 86400"
        )
        self.holder = subprocess.Popen(
            ["ip", "netns", "exec", self.netns, "unshare", "--mount", "--uts", "--propagation", "private"]
            + ["sh", "-c", script],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        pid = self.holder.pid

        def ready():
            if self.holder.poll() is not None:
                raise RuntimeError(f"host {self.name} did not boot: {self.holder.stderr.read().decode().strip()}")
            return Path(f"/proc/{pid}/root{marker}").exists()

        _wait(ready, 20, f"host {self.name} booting")
        self.mnt_ns = os.readlink(f"/proc/{pid}/ns/mnt")
        self.booted = time.monotonic()

    def pids(self) -> list[int]:
        """Every process of this host (its mount namespace)."""
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if os.readlink(entry / "ns" / "mnt") == self.mnt_ns:
                        found.append(int(entry.name))
                except OSError:  # gone meanwhile, or a kernel thread
                    continue
        return found

    def kill(self, spare: str | None = None) -> float:
        """The host disappears: SIGKILL to every process of it; returns when none is left. With ``spare``,
        the processes whose command line holds it live on, and so does the host (its holder, its files)."""
        started = time.monotonic()
        if spare is not None:
            keep = {self.holder.pid} | {pid for pid in self.pids() if spare.encode() in _cmdline(pid)}
            for _ in range(50):
                pids = [pid for pid in self.pids() if pid not in keep]
                if not pids:
                    return time.monotonic() - started
                for pid in pids:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                time.sleep(0.1)
            raise TimeoutError(f"host {self.name}: processes still alive after SIGKILL: {pids}")
        for _ in range(50):
            pids = self.pids()
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)
        _wait(lambda: not self.pids(), 20, f"host {self.name}'s processes exiting")
        if self.holder is not None:
            self.holder.wait(timeout=10)
        return time.monotonic() - started

    # --------------------------------------------------------------------------------------- commands
    def path(self, inside: str) -> Path:
        """``inside`` (an absolute path on this host) as seen from outside, through the holder's root."""
        return Path(f"/proc/{self.holder.pid}/root") / inside.lstrip("/")

    def _argv(self, cmd: list[str]) -> list[str]:
        enter = ["nsenter", "--target", str(self.holder.pid), "--mount", "--net", "--uts", f"--wd={REPO}", "--"]
        return enter + ["env", "-i"] + [f"{k}={v}" for k, v in self.env.items()] + cmd

    def run(self, cmd: list[str], timeout: float, check: bool = True, **kw) -> subprocess.CompletedProcess:
        """``cmd`` on this host, from the checkout, with the host's environment; a deadline always."""
        result = subprocess.run(self._argv(cmd), cwd=REPO, capture_output=True, text=True, timeout=timeout, **kw)
        if check and result.returncode != 0:
            raise AssertionError(
                f"on {self.name}: {' '.join(cmd)} exited {result.returncode}\n--- stdout\n{result.stdout[-6000:]}"
                f"\n--- stderr\n{result.stderr[-6000:]}"
            )
        return result

    def popen(self, cmd: list[str], log: Path) -> subprocess.Popen:
        """``cmd`` on this host in the background; stdout and stderr into ``log`` (a path outside the hosts)."""
        out = open(log, "w")  # noqa: SIM115 - the file lives as long as the process; closed by the OS after
        return subprocess.Popen(
            self._argv(cmd), cwd=REPO, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
        )


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


class TwoHosts:
    """``head`` (``SUBNET.1``) and ``worker`` (``SUBNET.2``) joined by a veth pair. A context manager."""

    def __init__(self, env: dict[str, str] | None = None):
        tag = f"{os.getpid() % 100000}"
        self.netns = {"head": f"cghead{tag}", "worker": f"cgwork{tag}"}
        self.devices = {"head": f"cgh{tag}", "worker": f"cgw{tag}"}  # names while in the root namespace (unique)
        base = {
            "PATH": f"{REPO / '.venv' / 'bin'}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": "/tmp/home",
            "TMPDIR": "/tmp",
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
            "CLUSTERGAN_CACHE": "/tmp/cache",
            **(env or {}),
        }
        # inside its namespace each end of the veth is renamed DEVICE, as a host's second interface would be
        self.head = Host("head", self.netns["head"], f"{SUBNET}.1", DEVICE, dict(base))
        self.worker = Host("worker", self.netns["worker"], f"{SUBNET}.2", DEVICE, dict(base))

    def __enter__(self) -> TwoHosts:
        try:
            for name in self.netns.values():
                _run("ip", "netns", "add", name)
            h, w = self.head, self.worker
            _run("ip", "link", "add", self.devices["head"], "type", "veth", "peer", "name", self.devices["worker"])
            for host in (h, w):
                _run("ip", "link", "set", self.devices[host.name], "netns", host.netns)
                _run("ip", "-n", host.netns, "link", "set", self.devices[host.name], "name", host.device)
                _run("ip", "-n", host.netns, "addr", "add", f"{host.address}/30", "dev", host.device)
                _run("ip", "-n", host.netns, "link", "set", host.device, "up")
                _run("ip", "-n", host.netns, "link", "set", "lo", "up")
                host.boot()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for host in (self.head, self.worker):
            if host.mnt_ns is not None:
                try:
                    host.kill()
                except (TimeoutError, subprocess.TimeoutExpired):
                    pass
        for name in self.netns.values():
            # anything still in the network namespace (a process that left the mount namespace) goes too
            pids = _run("ip", "netns", "pids", name, check=False).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            _run("ip", "netns", "del", name, check=False)  # takes its end of the veth, and so the pair
        _run("ip", "link", "del", self.devices["head"], check=False)  # a pair not yet moved into the namespaces
