"""Seconds per training step and peak memory of pix2pix, MSGAN and clustergan, measured in one run.

Each (method, size, amp) configuration runs in a fresh subprocess, so its peak resident memory
(``ru_maxrss``) is its own. The subprocess builds the product's real :class:`~clustergan.train.loop.Trainer`
through :func:`~clustergan.train.builders.prepare_run` from the presets ``sweeps/{pix2pix,msgan,clustergan}.yaml``
(ngf = ndf = 64, two-scale D, batch 1) on a small procedural dataset at the benchmarked size, then times
``Trainer.step`` alone: data loading is excluded (batches are fetched before timing). clustergan runs with
k = 4 and its frozen encoder at 224 px (the encoder resizes internally).

    python benchmarks/step_time.py                       # 64, 128, 256 px, fp32, 2 threads
    python benchmarks/step_time.py --amp none bf16 --steps 10 --sizes 128 256
    python benchmarks/step_time.py --device cuda --amp none bf16 --sizes 256 --steps 30   # a GPU

On ``--device cuda`` each timed step ends with ``torch.cuda.synchronize()``, and the peak column is the
CUDA allocator's peak (``torch.cuda.max_memory_allocated``) instead of the process's resident memory.

Prints one table row per configuration (median seconds per step over ``--steps`` after ``--warmup``
steps, min / max, median process CPU seconds, peak RSS and its growth after the trainer was built) and the
ratio clustergan / MSGAN (interleaved: also the median of the per-round ratios with its 90% bootstrap
interval, the figure to hold against a target). On a machine shared with other jobs the wall-clock times
suffer from the other load (OpenMP threads wait for descheduled peers); with ``--threads 1`` the CPU-time column is
close to the
step time of an idle machine, which makes ratios between configurations robust to that load.
``--json FILE`` also writes the raw results.

On a machine whose speed drifts (a shared VM: back-to-back runs of the same configuration were seen 1.5x
apart), ``--interleave`` builds every method of a size in one process and steps them in turn, so drift
hits all of them alike and their ratios hold; ``--ab KEY=VALUE`` adds a variant B of every method, for a
lever's A/B in the same run:

    python benchmarks/step_time.py --sizes 128 256 --methods msgan clustergan --interleave --ab train.fused_adam=false

The default figures for MSGAN's reference code (0.302 s at 128 px, 0.657 s at 256 px) were timed on one
particular machine and do not transfer: elsewhere pass that machine's own figures with ``--reference 128=S
256=S`` (docs/BENCHMARKS.md: how they were measured, and on what).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
METHODS = ("pix2pix", "msgan", "clustergan")
# MSGAN's public reference code, seconds per iteration at 2 threads, on the machine the cpu preset was sized
# on. Another machine needs its own figures (--reference); docs/BENCHMARKS.md has them for the machines used.
REFERENCE_MSGAN = {128: 0.302, 256: 0.657}


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


# ------------------------------------------------------------------------------------------ one configuration
def build(
    method: str,
    size: int,
    amp: str,
    threads: int,
    levers: list[str],
    batch: int = 1,
    device: str = "cpu",
    settings: list[str] | None = None,
):
    """The real Trainer of ``sweeps/<method>.yaml`` at ``size`` on a small procedural dataset, with its batches
    fetched (data loading is not timed). Returns (trainer, batches)."""
    import torch

    torch.set_num_threads(threads)
    from clustergan.config import load_config
    from clustergan.train.builders import prepare_run
    from clustergan.train.dist import LocalContext
    from clustergan.train.loop import Trainer

    out = tempfile.mkdtemp(prefix=f"step_time_{method}_{size}_")
    overrides = [
        "data.root=null",
        f"data.synth.size={size}",
        f"data.synth.n_train={max(16, 2 * batch)}",
        "data.synth.n_test=4",
        f"data.size={size}",
        f"train.batch_size={batch}",
        f"train.amp={amp}",
        f"train.threads={threads}",
        "model.ngf=64",
        "model.ndf=64",
        "model.d_scales=2",
        f"out={out}",
    ]
    if method == "clustergan":
        overrides.append("cluster.k=4")
    overrides += settings or []
    config = prepare_run(load_config(REPO / "sweeps" / f"{method}.yaml", overrides))
    trainer = Trainer(config, LocalContext(device=device))
    trainer.epoch = 0
    _apply_levers(trainer, levers)
    torch.set_num_threads(threads)  # building the encoder must not have changed it
    trainer.loader.sampler.set_epoch(0)
    return trainer, list(trainer.loader)


def _timed_step(trainer, batch) -> tuple[float, float]:
    """(wall, process CPU) seconds of one ``Trainer.step``, synchronised on CUDA."""
    import torch

    sync = torch.cuda.synchronize if trainer.device.type == "cuda" else (lambda: None)
    sync()
    start, cpu_start = time.perf_counter(), time.process_time()
    trainer.step(batch)
    sync()
    return time.perf_counter() - start, time.process_time() - cpu_start


def _summary(times: list[float], cpu_times: list[float]) -> dict:
    return {
        "median_s": statistics.median(times),
        "min_s": min(times),
        "max_s": max(times),
        "steps": len(times),
        "median_cpu_s": statistics.median(cpu_times),
    }


def measure(
    method: str,
    size: int,
    steps: int,
    warmup: int,
    amp: str,
    threads: int,
    levers: list[str],
    batch: int = 1,
    device: str = "cpu",
    settings: list[str] | None = None,
) -> dict:
    """Runs in the subprocess: build the real Trainer and time its step."""
    import torch

    rss_before_build = _rss_mb()
    trainer, batches = build(method, size, amp, threads, levers, batch, device, settings)
    cuda = trainer.device.type == "cuda"
    rss_built = _rss_mb()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    times, cpu_times = [], []
    for i in range(warmup + steps):
        elapsed, cpu = _timed_step(trainer, batches[i % len(batches)])
        if i >= warmup:
            times.append(elapsed)
            cpu_times.append(cpu)
    peak = _rss_mb()
    if cuda:  # the GPU's allocator peak, not the process's resident memory
        peak, rss_built = torch.cuda.max_memory_allocated() / 2**20, 0.0
    return {
        "method": method,
        "size": size,
        "batch": batch,
        "amp": amp,
        "device": device,
        "device_name": torch.cuda.get_device_name() if cuda else "cpu",
        "threads": torch.get_num_threads(),
        "levers": levers,
        "settings": settings or [],
        **_summary(times, cpu_times),
        "peak_rss_mb": peak,
        "rss_growth_mb": peak - rss_built,
        "rss_before_build_mb": rss_before_build,
    }


def interleave(size: int, args: argparse.Namespace, amp: str) -> list[dict]:
    """Every method (and its ``--ab`` variant) built in this one process and stepped in turn, one step each per
    round: machine drift then hits every configuration alike, so their ratios hold on a noisy machine. Peak
    memory is not per configuration here (use the default subprocess mode for it)."""
    variants = [(m, list(args.set), "") for m in args.methods]
    if args.ab:
        variants += [(m, list(args.set) + list(args.ab), "B") for m in args.methods]
    built = [
        build(m, size, amp, args.threads, args.lever, args.batch, args.device, settings) for m, settings, _ in variants
    ]
    times: list[list[float]] = [[] for _ in variants]
    cpu_times: list[list[float]] = [[] for _ in variants]
    for i in range(args.warmup + args.steps):
        for j, (trainer, batches) in enumerate(built):
            elapsed, cpu = _timed_step(trainer, batches[i % len(batches)])
            if i >= args.warmup:
                times[j].append(elapsed)
                cpu_times[j].append(cpu)
    return [
        {
            "method": m,
            "variant": tag,
            "size": size,
            "batch": args.batch,
            "amp": amp,
            "device": args.device,
            "threads": args.threads,
            "levers": args.lever,
            "settings": settings,
            "interleaved": True,
            **_summary(times[j], cpu_times[j]),
            "times_s": times[j],
            "peak_rss_mb": float("nan"),
            "rss_growth_mb": float("nan"),
        }
        for j, (m, settings, tag) in enumerate(variants)
    ]


def paired_ratio(
    numerator: list[float], denominator: list[float], resamples: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """Median over rounds of the per-round ratio numerator[i] / denominator[i] (steps of one interleaved round
    run seconds apart, so a slow spell of the machine divides out), and its 90% bootstrap interval (rounds
    resampled with replacement; ``seed`` fixes the resampling). Returns (median, low, high)."""
    import random

    ratios = [a / b for a, b in zip(numerator, denominator, strict=True)]
    rng = random.Random(seed)
    medians = sorted(statistics.median(rng.choices(ratios, k=len(ratios))) for _ in range(resamples))
    return statistics.median(ratios), medians[int(0.05 * resamples)], medians[int(0.95 * resamples) - 1]


def _apply_levers(trainer, levers: list[str]) -> None:
    """Experimental switches applied to the built Trainer (to measure a lever before putting it in the product)."""
    import torch

    for lever in levers:
        if lever == "channels_last":
            trainer.G.to(memory_format=torch.channels_last)
            trainer.D.to(memory_format=torch.channels_last)
        else:
            raise SystemExit(f"unknown --lever {lever!r}: use channels_last")


# ------------------------------------------------------------------------------------------------ driver
def run_one(method: str, size: int, args: argparse.Namespace, amp: str) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--_worker",
        method,
        "--sizes",
        str(size),
        "--steps",
        str(args.steps),
        "--warmup",
        str(args.warmup),
        "--batch",
        str(args.batch),
        "--amp",
        amp,
        "--threads",
        str(args.threads),
        "--device",
        args.device,
    ]
    for lever in args.lever:
        cmd += ["--lever", lever]
    for setting in args.set:
        cmd += ["--set", setting]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    if proc.returncode != 0:
        raise SystemExit(f"{method} at {size} px ({amp}) failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _reference_arg(text: str) -> tuple[int, float]:
    size, _, seconds = text.partition("=")
    try:
        return int(size), float(seconds)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--reference {text!r}: expected SIZE=SECONDS, e.g. 256=2.62") from None


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256])
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    p.add_argument("--steps", type=int, default=10, help="timed steps per configuration (median reported)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--amp", nargs="+", default=["none"], choices=["none", "bf16"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=1, help="images per step (the facades cpu preset uses 8)")
    p.add_argument("--lever", action="append", default=[], help="experimental: channels_last")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a config override for every configuration, e.g. train.fused_adam=false",
    )
    p.add_argument(
        "--interleave",
        action="store_true",
        help="all configurations of a size in one process, one step each in turn (ratios robust to "
        "machine drift; no per-configuration peak memory)",
    )
    p.add_argument(
        "--ab",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="with --interleave: also a variant B of every method with this override, e.g. train.fused_adam=false",
    )
    p.add_argument(
        "--reference",
        type=_reference_arg,
        nargs="+",
        default=None,
        metavar="SIZE=SECONDS",
        help="MSGAN's reference code's seconds per iteration on THIS machine (2 threads), e.g. "
        "128=1.09 256=2.62; default: the reference figures in docs/BENCHMARKS.md, timed on another machine",
    )
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where the step runs")
    p.add_argument("--json", type=Path, help="also write the raw results here")
    p.add_argument("--_worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.ab and not args.interleave:
        p.error("--ab needs --interleave (the A and B variants are compared step by step in one process)")

    if args._worker:
        print(
            json.dumps(
                measure(
                    args._worker,
                    args.sizes[0],
                    args.steps,
                    args.warmup,
                    args.amp[0],
                    args.threads,
                    args.lever,
                    args.batch,
                    args.device,
                    args.set,
                )
            )
        )
        return

    load = os.getloadavg()
    print(
        f"# device {args.device}, torch threads {args.threads}, batch {args.batch}, {args.steps} timed steps "
        f"after {args.warmup} warm-up"
        + (", interleaved in one process" if args.interleave else "")
        + f"; load average before {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
        + (f"; levers {args.lever}" if args.lever else "")
        + (f"; set {args.set}" if args.set else "")
        + (f"; variant B: {args.ab}" if args.ab else ""),
        flush=True,
    )
    header = (
        f"{'method':<13}{'px':>5}{'amp':>6}{'s/step':>9}{'min':>8}{'max':>8}{'cpu s':>8}{'peak MB':>9}{'grow MB':>9}"
    )
    print(header)
    results = []
    for amp in args.amp:
        for size in args.sizes:
            rows = (
                interleave(size, args, amp) if args.interleave else [run_one(m, size, args, amp) for m in args.methods]
            )
            for r in rows:
                results.append(r)
                name = r["method"] + (f" {r['variant']}" if r.get("variant") else "")
                print(
                    f"{name:<13}{size:>5}{amp:>6}{r['median_s']:>9.3f}{r['min_s']:>8.3f}{r['max_s']:>8.3f}"
                    f"{r['median_cpu_s']:>8.3f}{r['peak_rss_mb']:>9.0f}{r['rss_growth_mb']:>9.0f}",
                    flush=True,
                )

    reference, where = (
        (dict(args.reference), "this machine")
        if args.reference
        else (REFERENCE_MSGAN, "the reference machine of docs/BENCHMARKS.md")
    )
    print("\n# ratios (median s/step)")

    def key(r: dict) -> tuple:
        return r["method"], r.get("variant", ""), r["size"], r["amp"]

    by = {key(r): r["median_s"] for r in results}
    cpu = {key(r): r["median_cpu_s"] for r in results}
    steps = {key(r): r["times_s"] for r in results if "times_s" in r}  # interleaved runs only
    for amp in args.amp:
        for size in args.sizes:
            for tag in dict.fromkeys(r.get("variant", "") for r in results):
                msgan = by.get(("msgan", tag, size, amp))
                line = f"{size:>4} px {amp:>5}{' ' + tag if tag else ''}:"
                if msgan and ("clustergan", tag, size, amp) in by:
                    line += f" clustergan/MSGAN {by[('clustergan', tag, size, amp)] / msgan:.2f}x"
                    line += f" (CPU time {cpu[('clustergan', tag, size, amp)] / cpu[('msgan', tag, size, amp)]:.2f}x)"
                    if ("clustergan", tag, size, amp) in steps:
                        mid, low, high = paired_ratio(
                            steps[("clustergan", tag, size, amp)], steps[("msgan", tag, size, amp)]
                        )
                        line += f"; paired per round {mid:.2f}x (90% interval {low:.2f}-{high:.2f})"
                if msgan and size in reference and args.threads == 2 and args.device == "cpu":  # timed with 2 threads
                    line += (
                        f"; MSGAN reference code {reference[size]:.3f} s/step ({where}), ours {msgan:.3f} s "
                        f"(speed-up {reference[size] / msgan:.2f}x)"
                    )
                if tag:
                    line += "; B/A " + ", ".join(
                        f"{m} {by[(m, tag, size, amp)] / by[(m, '', size, amp)]:.2f}x"
                        for m in args.methods
                        if (m, tag, size, amp) in by
                    )
                print(line)
    load = os.getloadavg()
    print(f"# load average after {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
