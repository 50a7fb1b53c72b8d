"""Train and evaluate every (study, method, seed) of a preset, then the floor and ceiling rows.

Everything lands under ``<out>/<study>/<method>/seed<N>/`` (a normal run folder: checkpoints, samples,
TensorBoard, ``metrics.json``) plus ``reproduce.json`` with the wall times. A rerun skips what is finished
and resumes a run from its last checkpoint, so an interrupted reproduction loses at most one checkpoint
interval.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from clustergan.errors import ClusterganError
from clustergan.jsonio import read_json, write_json
from clustergan.reproduce.presets import Method, Preset, Study
from clustergan.scores import SCORES


@dataclass
class RunSpec:
    study: Study
    method: Method
    seed: int

    @property
    def name(self) -> str:
        return f"{self.study.name}/{self.method.key}/seed{self.seed}"


def machine() -> dict:
    """What the numbers were measured on (written into the report)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
    }
    return info


def run_specs(
    preset: Preset, studies: list[str] | None = None, only: list[str] | None = None, seeds: list[int] | None = None
) -> list[RunSpec]:
    """The runs, seed-major; ``seeds`` restricts them to these training seeds (the one-seed probes come
    with the study's first seed)."""
    known = [s.name for s in preset.studies]
    for name in studies or []:
        if name not in known:
            raise ClusterganError(f"--study {name!r}: preset {preset.name!r} has studies {known}")
    specs = []
    for study in preset.studies:
        if studies and study.name not in studies:
            continue
        methods = [m for m in study.methods if not (m.optional and not m.config.is_file())]
        # seed-major: after the first seed every method has a result, so a partial run already compares
        if seeds:
            unknown = [s for s in seeds if s not in study.seeds]
            if unknown:
                raise ClusterganError(
                    f"--seeds {','.join(map(str, unknown))}: the {study.name} study trains seeds {list(study.seeds)}"
                )
        chosen = [s for s in study.seeds if not seeds or s in seeds]
        specs += [RunSpec(study, method, seed) for seed in chosen for method in methods]
        if study.seeds[0] in chosen:
            specs += [RunSpec(study, probe, study.seeds[0]) for probe in study.probes]
    if only:
        keys = {s.method.key for s in specs}
        unknown = [k for k in only if k not in keys]
        if unknown:
            raise ClusterganError(
                f"--only {', '.join(unknown)}: not a method of these studies; they have {sorted(keys)}"
            )
        specs = [s for s in specs if s.method.key in only]
    return specs


def build_config(spec: RunSpec, out: Path, facades: Path | None, smoke: bool, smoke_epochs: int | None = None):
    """The run's training config: the method's preset file, the study's budget, the seed and the run folder.
    ``smoke`` shrinks it to two steps; ``smoke_epochs`` to that many whole epochs (a first run on a new
    machine, e.g. one epoch of the gpu preset)."""
    from clustergan.config import load_config

    overrides = list(spec.study.overrides) + list(spec.method.overrides)
    overrides += [f"seed={spec.seed}", f"out={out / spec.name}", f"name={spec.study.name}_{spec.method.key}"]
    if spec.study.facades:
        if facades is None or not (facades / "train").is_dir():
            raise ClusterganError(
                f"the {spec.study.name} study needs the facades dataset; {facades}/train is not a folder. "
                f"Pass --facades /path/to/facades (pix2pix layout), or fetch it with "
                f"`clustergan data fetch facades --out DIR` where a network is available"
            )
        overrides.append(f"data.root={facades.resolve()}")
    if smoke:  # seconds, for tests: two steps, one epoch, a checkpoint at its end
        overrides += ["train.max_steps=2", "train.epochs=1", "train.epochs_decay=0"]
    elif smoke_epochs:
        overrides += [
            f"train.epochs={smoke_epochs}",
            "train.epochs_decay=0",
            "train.checkpoint_every=1",
            "train.sample_every=1",
        ]
    return load_config(spec.method.config, overrides)


def _finished(run_dir: Path, total_epochs: int, smoke: bool) -> bool:
    from clustergan.train.checkpoint import list_checkpoints

    found = list_checkpoints(run_dir / "checkpoints")
    return bool(found) and (smoke or found[-1][0] >= total_epochs)


def train_one(
    spec: RunSpec,
    preset: Preset,
    out: Path,
    facades: Path | None,
    smoke: bool,
    smoke_epochs: int | None = None,
    workers: int | None = None,
) -> Path:
    """Train (or resume, or skip) one run; returns its folder. ``workers`` overrides the preset's Ray Train
    workers (0: this process, no Ray; -1: one per visible GPU)."""
    from clustergan.train.checkpoint import latest_checkpoint
    from clustergan.train.launch import run_training

    config = build_config(spec, out, facades, smoke, smoke_epochs)
    run_dir = config.run_dir
    record_path = run_dir / "reproduce.json"
    record = read_json(record_path, {})
    total = config.train.epochs + config.train.epochs_decay
    if record.get("train_done") and (_finished(run_dir, total, smoke) or (run_dir / "metrics.json").is_file()):
        return run_dir  # trained here, or restored from the committed ledger (results, no checkpoints)
    resume = latest_checkpoint(run_dir / "checkpoints")  # an interrupted reproduction continues its runs
    cut = record.pop("stretch_started", None)
    if cut is not None and resume is not None:  # the last stretch was cut off: it counts to its last checkpoint
        record["train_seconds"] = record.get("train_seconds", 0.0) + max(0.0, resume.stat().st_mtime - cut)
    record["stretch_started"] = time.time()
    write_json(record_path, record)
    start = time.perf_counter()
    workers = preset.workers if workers is None else workers
    workers = workers if workers >= 0 else max(torch.cuda.device_count(), 1)
    run_training(
        config,
        workers=workers,
        gpu=preset.gpu and (workers > 0 or torch.cuda.is_available()),
        resume=resume is not None,
    )
    record["train_seconds"] = record.get("train_seconds", 0.0) + time.perf_counter() - start
    del record["stretch_started"]
    record["train_done"] = True
    record["workers"] = workers
    record["machine"] = {k: v for k, v in machine().items() if k in ("cpu", "cores", "gpus", "torch")}
    record["resumed_from"] = str(resume) if resume else record.get("resumed_from")
    write_json(record_path, record)
    return run_dir


def adopt_run(spec: RunSpec, source: Path, out: Path, facades: Path | None, smoke: bool = False) -> Path:
    """Take a finished run trained elsewhere (a sweep trial's seed folder) as this spec's run instead of
    training it again, when it is the same training: the same resolved config but for the run folder and
    name (``out``, ``name``, ``cluster.stats_dir``), the same dataset, a checkpoint at the budget's last
    epoch and, for a clustered run, the same cluster statistics as this run computes. The checkpoints,
    samples and TensorBoard files are copied (the source is left as it was); the source's ``config.json``
    comes along as the record of what trained, and ``reproduce.json`` says where the run came from. The
    run is then evaluated under the study's protocol like any other. Returns the run folder."""
    from clustergan.train.adopt import copy_training, not_the_same, other_clusters, short_of_budget
    from clustergan.train.builders import prepare_run, with_data_root
    from clustergan.train.checkpoint import list_checkpoints

    source = Path(source)
    if not (source / "config.json").is_file():
        raise ClusterganError(
            f"--adopt {spec.method.key}={source}: no config.json in it; give a run folder "
            f"(e.g. <sweep>/trials/<id>/seed0)"
        )
    config = build_config(spec, out, facades, smoke)
    run_dir = config.run_dir
    if read_json(run_dir / "reproduce.json", {}).get("train_done"):
        raise ClusterganError(
            f"--adopt {spec.method.key}={source}: {spec.name} is already trained ({run_dir}); "
            f"remove that folder first to replace it"
        )
    config = with_data_root(config)  # the procedural dataset, as prepare_run fills it in
    why = not_the_same(source, config.to_dict())
    if why:
        raise ClusterganError(
            f"--adopt {spec.method.key}={source}: not the training {spec.name} would run ({why}); train it instead"
        )
    # a smoke run stops at max_steps, short of its epochs: any checkpoint is its last
    short = short_of_budget(source, 0 if smoke else config.train.epochs + config.train.epochs_decay)
    if short:
        raise ClusterganError(f"--adopt {spec.method.key}={source}: {short}; finish that run first")
    prepared = prepare_run(config)  # this run's own clusters, as training it here would compute them
    why = other_clusters(source, prepared.cluster.stats_dir) if config.cluster.k else None
    if why:
        raise ClusterganError(f"--adopt {spec.method.key}={source}: {why}; train it instead")
    found = list_checkpoints(source / "checkpoints")
    copy_training(source, run_dir)
    # training wall time from the source's own files: its config is written as training starts, each
    # checkpoint as an epoch ends (cluster statistics computed before it are not counted)
    seconds = found[-1][1].stat().st_mtime - (source / "config.json").stat().st_mtime
    record = {
        "train_done": True,
        "train_seconds": seconds,
        "adopted_from": str(source.resolve()),
        "train_seconds_from": "the source's file times (config.json to last checkpoint)",
        # adopt on the machine that trained it: the report lists the CPU each run trained on
        "machine": {k: v for k, v in machine().items() if k in ("cpu", "cores", "gpus", "torch")},
    }
    write_json(run_dir / "reproduce.json", record)
    return run_dir


def evaluate_one(run_dir: Path, study: Study, eval_seed: int = 0, device: str | None = None) -> dict:
    """``metrics.json`` of the run's last checkpoint under the study's protocol (reused when present)."""
    from clustergan.train.evaluate import evaluate_run

    path = run_dir / "metrics.json"
    existing = read_json(path, {})
    if existing and existing.get("protocol", {}).get("name") == study.protocol and "lpips" in existing:
        return existing
    start = time.perf_counter()
    evaluate_run(run_dir, protocol=study.protocol, seed=eval_seed, out=path, ndb_bins=study.ndb_bins, device=device)
    record = read_json(run_dir / "reproduce.json", {})
    record["eval_seconds"] = time.perf_counter() - start
    write_json(run_dir / "reproduce.json", record)
    return read_json(path, {})


def reference_rows(study: Study, study_dir: Path, config) -> None:
    """The floor (real test targets under the same metrics) and the ceiling (an untrained generator)."""
    from clustergan.reproduce.reference import ceiling_metrics, floor_metrics

    floor = study_dir / "_floor" / "metrics.json"
    if not floor.is_file():
        write_json(floor, floor_metrics(config, study))
    ceiling_dir = study_dir / "_ceiling"
    if not (ceiling_dir / "metrics.json").is_file():
        ceiling_metrics(config, study, ceiling_dir)


def reproduce(
    preset: Preset,
    out: Path,
    facades: Path | None,
    studies: list[str] | None = None,
    smoke: bool = False,
    log=print,
    only: list[str] | None = None,
    seeds: list[int] | None = None,
    smoke_epochs: int | None = None,
    train_only: bool = False,
    workers: int | None = None,
) -> list[RunSpec]:
    """Train and evaluate everything the preset names (skipping what is done). Returns the runs.
    ``only`` restricts the runs to these method keys (and skips the diagnostics; the floor and ceiling rows
    are computed once when missing).
    ``smoke_epochs`` trains that many whole epochs per run instead of the preset's budget; ``train_only``
    stops after training (no evaluation, floor, ceiling or diagnostics), e.g. where the evaluation's
    weights are not installed. ``workers`` overrides the preset's Ray Train workers (0: no Ray)."""
    specs = run_specs(preset, studies, only, seeds)
    if not specs:
        raise ClusterganError(f"preset {preset.name!r}: nothing to run for studies {studies}")
    out.mkdir(parents=True, exist_ok=True)
    from clustergan.provenance import git_commit

    info = {
        **machine(),
        "preset": preset.name,
        "smoke_test": smoke or bool(smoke_epochs),
        "smoke_epochs": smoke_epochs,
        "git_commit": git_commit(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    write_json(out / "machine.json", info)
    for study in dict.fromkeys(spec.study.name for spec in specs):  # the code each study's runs started with
        if not (out / study / "machine.json").is_file():  # a resumed study keeps its first start
            write_json(out / study / "machine.json", info)
    began = time.perf_counter()
    for i, spec in enumerate(specs, 1):
        elapsed = time.perf_counter() - began
        eta = ""
        if i > 1:
            eta = f", ~{elapsed / (i - 1) * (len(specs) - i + 1) / 60:.0f} min left at this pace"
        log(f"[{i}/{len(specs)}] {spec.name}: train{eta}", flush=True)
        run_dir = train_one(spec, preset, out, facades, smoke, smoke_epochs, workers)
        if train_only:
            record = read_json(run_dir / "reproduce.json", {})
            log(
                f"[{i}/{len(specs)}] {spec.name}: trained in {record.get('train_seconds', 0.0):.1f} s "
                f"(--train-only: not evaluated)",
                flush=True,
            )
            continue
        log(f"[{i}/{len(specs)}] {spec.name}: evaluate ({spec.study.protocol} protocol)", flush=True)
        metrics = evaluate_one(run_dir, spec.study, device="cuda" if preset.gpu and torch.cuda.is_available() else None)
        log(
            f"[{i}/{len(specs)}] {spec.name}: "
            + ", ".join(f"{k} {metrics[k]:.4g}" for k in SCORES if isinstance(metrics.get(k), (int, float))),
            flush=True,
        )
    if train_only:
        return specs
    for study in dict.fromkeys(spec.study for spec in specs if spec.study.floor_ceiling):
        # the ceiling uses MSGAN's architecture (noise, no clusters) when the study has it; a run of some
        # methods (``only``) computes the two rows too, once, as they depend on no method's training
        ours = [s for s in run_specs(preset, [study.name], None, seeds) if s.study == study]
        spec = next((s for s in ours if s.method.key == "msgan"), ours[0])
        log(f"{study.name}: floor (real test targets) and ceiling (untrained generator)", flush=True)
        reference_rows(study, out / study.name, build_config(spec, out, facades, smoke))
    if only:
        return specs
    for study in dict.fromkeys(spec.study for spec in specs if spec.study.diagnose):
        from clustergan.reproduce.diagnose import diagnose_study

        diagnose_study(out / study.name, study, log)
    record = read_json(out / "wall.json", {})
    record[",".join(sorted({s.study.name for s in specs}))] = time.perf_counter() - began
    write_json(out / "wall.json", record)
    return specs
