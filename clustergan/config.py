"""Typed, strict training configuration.

YAML file -> ``extends:`` chain merged -> ``key=value`` overrides -> :class:`TrainConfig` (pydantic, every
section forbids unknown keys). A mistake is a :class:`ConfigError` naming the file, the dotted key, the value
and what is allowed. Workers rebuild the typed config from the plain dict Ray hands them
(``TrainConfig.model_validate(d)``); ``config.to_dict()`` is what is saved beside runs and in checkpoints.

Keys that sweeps, presets and the CLI refer to by name: ``cluster.k``, ``loss.lambda_ms``, ``loss.lambda_kl1``,
``loss.lambda_km``, ``loss.lambda_l1``, ``loss.gan_mode``, ``data.root``, ``data.direction``, ``data.size``,
``encoder.name``, ``train.epochs``, ``train.batch_size`` (per worker), ``seed``, ``out``.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from clustergan.errors import ConfigError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, validate_assignment=True)


class SynthConfig(_Section):
    """The procedural dataset used when ``data.root`` is null (generated once into the cache)."""

    num_modes: int = Field(4, ge=1, le=8)
    n_train: int = Field(96, ge=2)
    n_test: int = Field(24, ge=1)
    size: int = Field(64, ge=16)
    seed: int = 0


class DataConfig(_Section):
    root: str | None = None  # pix2pix layout folder; null = the procedural dataset below
    synth: SynthConfig = SynthConfig()
    direction: Literal["AtoB", "BtoA"] = "BtoA"
    size: int = Field(32, ge=16)
    load_size: int | None = None  # train-time resize before the random crop; default ~1.12 * size
    num_workers: int = Field(0, ge=0)


class EncoderConfig(_Section):
    name: str = "efficientnet_lite0"
    weights: str | None = None  # null = the encoder's real pretrained weights; "random" or a file path
    # side the images are resized to before the encoder, for the cluster statistics and the feature losses
    # alike; null = the network's own size (224). Smaller is much cheaper at 32-64 px data: see
    # docs/BENCHMARKS.md for how the k-means assignments move with it.
    input_size: int | None = Field(None, ge=32)


class ClusterConfig(_Section):
    k: int = Field(0, ge=0)  # 0 = no clusters (pix2pix, MSGAN)
    backend: Literal["auto", "sklearn", "cuml"] = "auto"
    # how the cluster index is chosen when none is given at test time (recorded with every result)
    test_choice: Literal["frequency", "fixed", "target"] = "frequency"
    fixed_index: int = Field(0, ge=0)
    # folder with precomputed statistics (written by `clustergan cluster` or a sweep driver); null = the
    # training command computes them into <run dir>/clusters before training starts
    stats_dir: str | None = None


class ModelConfig(_Section):
    ngf: int = Field(64, ge=1)
    ndf: int = Field(64, ge=1)
    nz: int = Field(8, ge=0)  # 0 = no noise input (pix2pix)
    cluster_emb_dim: int = Field(8, ge=1)
    norm: Literal["instance", "batch"] = "instance"
    dropout: float = Field(0.0, ge=0.0, lt=1.0)  # pix2pix: 0.5, kept active at test time
    d_layers: int = Field(3, ge=1)
    d_scales: int = Field(2, ge=1, le=2)
    # channels of each coarser D scale: "same" (ndf at every scale) or "halved" (ndf / 2 per step down, as
    # MSGAN's and BicycleGAN's multi-scale D); a lever for D's strength, recorded with every result
    d_scale_width: Literal["same", "halved"] = "same"
    # how D sees the cluster index: "projection" (the method: D judges realism and fit to cluster i) or "none"
    # (an unconditional D; a lever for the investigation of D's stability, recorded with every result)
    d_condition: Literal["projection", "none"] = "projection"


class LossConfig(_Section):
    gan_mode: Literal["lsgan", "vanilla"] = "lsgan"
    lambda_l1: float = Field(10.0, ge=0.0)
    lambda_ms: float = Field(0.0, ge=0.0)
    lambda_kl1: float = Field(0.0, ge=0.0)
    lambda_km: float = Field(0.0, ge=0.0)


class EmaConfig(_Section):
    """An average of G's weights for evaluation and sampling (clustergan/train/ema.py has the formula)."""

    # half-life of the average in images; 0 = no EMA (also what configs written before this key mean)
    half_life_images: int = Field(0, ge=0)
    # early on the half-life is at most images_seen * rampup (StyleGAN2-ADA's 0.05); null = no ramp-up
    rampup: float | None = Field(0.05, gt=0.0)


class TrainSection(_Section):
    epochs: int = Field(1, ge=1)  # epochs at the full learning rate
    epochs_decay: int = Field(0, ge=0)  # then linear decay to 0 over this many epochs (pix2pix)
    batch_size: int = Field(1, ge=1)  # per worker
    lr: float = Field(2e-4, gt=0.0)
    beta1: float = Field(0.5, ge=0.0, lt=1.0)
    beta2: float = Field(0.999, ge=0.0, lt=1.0)
    # bf16 autocast for G and D; "auto" = bf16 where the CPU or GPU has native bf16, else fp32 (recorded
    # per run, see clustergan/train/precision.py)
    amp: Literal["none", "bf16", "auto"] = "none"
    # "d_first": D steps on the fresh fakes, then G is scored by the updated D (pix2pix's order);
    # "g_first": G steps against the current D, then D steps on the same, pre-update fakes (MSGAN's order)
    update_order: Literal["d_first", "g_first"] = "d_first"
    # torch's fused Adam kernel: the same update as the per-tensor loop (5e-10 apart on equal gradients), one
    # pass over the weights instead of ~10; on CPU it took a 256 px step's Adam from ~0.8 s to ~0.18 s (1 thread)
    fused_adam: bool = True
    threads: int | None = Field(None, ge=1)  # torch threads; null = all CPUs this process was given
    checkpoint_every: int = Field(1, ge=1)  # epochs
    # the newest N epoch checkpoints a run keeps (older ones are deleted once a newer one is written); resuming,
    # sampling and evaluating need only the last, and at 256 px each is ~0.5 GB; null = keep every one
    keep_checkpoints: int | None = Field(2, ge=1)
    sample_every: int = Field(1, ge=1)  # epochs
    max_steps: int | None = Field(None, ge=1)  # stop early (smoke tests, benchmarks)
    eval_every: int = Field(0, ge=0)  # epochs; 0 = only when asked (clustergan eval)
    eval_protocol: Literal["paper", "sweep", "curve", "synth"] = "sweep"
    eval_ndb_bins: int | None = Field(None, ge=2)  # override the protocol's NDB bins (tiny datasets)
    ema: EmaConfig = EmaConfig()


class TrainConfig(_Section):
    name: str = "run"
    seed: int = 0
    out: str | None = None  # run directory; null = runs/<name>
    data: DataConfig = DataConfig()
    encoder: EncoderConfig = EncoderConfig()
    cluster: ClusterConfig = ClusterConfig()
    model: ModelConfig = ModelConfig()
    loss: LossConfig = LossConfig()
    train: TrainSection = TrainSection()

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        if (self.loss.lambda_kl1 > 0 or self.loss.lambda_km > 0) and self.cluster.k == 0:
            raise ValueError(
                "loss.lambda_kl1 / loss.lambda_km need clusters: set cluster.k >= 1 or set both lambdas to 0"
            )
        if self.loss.lambda_ms > 0 and self.model.nz == 0:
            raise ValueError("loss.lambda_ms needs noise: set model.nz >= 1 or loss.lambda_ms=0")
        if self.cluster.k and self.cluster.fixed_index >= self.cluster.k:
            raise ValueError(f"cluster.fixed_index={self.cluster.fixed_index} must be < cluster.k={self.cluster.k}")
        size = self.data.size
        if size & (size - 1):
            raise ValueError(f"data.size={size} must be a power of two (16, 32, 64, 128, 256)")
        return self

    @property
    def run_dir(self) -> Path:
        return Path(self.out) if self.out else Path("runs") / self.name

    @property
    def uses_encoder(self) -> bool:
        return self.loss.lambda_kl1 > 0 or self.loss.lambda_km > 0

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="python")


# --------------------------------------------------------------------------------------------------------
# Loading


def read_yaml(path: Path, what: str = "config file", example: str = "sweeps/debug.yaml") -> dict[str, Any]:
    """A YAML mapping from ``path`` (safe loader), with errors that name the file."""
    if not path.is_file():
        raise ConfigError(f"{path}: {what} not found (give a path to a YAML file, e.g. {example})")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys, got {type(data).__name__}")
    return data


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _resolve_extends(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    path = path.resolve()
    if path in seen:
        chain = " -> ".join(str(p) for p in (*seen, path))
        raise ConfigError(f"{path}: `extends` forms a cycle: {chain}")
    data = read_yaml(path)
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise ConfigError(f"{path}: key `extends` must be a file name, got {parent!r}")
    base = _resolve_extends((path.parent / parent), (*seen, path))
    return deep_merge(base, data)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"loss.lambda_ms=1"`` -> (["loss", "lambda_ms"], 1). Values are parsed as YAML scalars."""
    if "=" not in text:
        raise ConfigError(f"override {text!r}: expected key=value, e.g. train.epochs=2")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {text!r}: empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return key.split("."), value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    data = copy.deepcopy(data)
    for text in overrides:
        keys, value = parse_override(text)
        node = data
        for part in keys[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override {text!r}: `{part}` is not a section")
            node = child
        node[keys[-1]] = value
    return data


def describe_error(error: dict[str, Any], schema_file: str = "clustergan/config.py") -> str:
    """One line for one pydantic error, naming the dotted key and the value."""
    key = ".".join(str(p) for p in error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"unknown key `{key}` (check the spelling; see {schema_file} for the allowed keys)"
    if kind == "value_error":
        message = str(error["msg"]).removeprefix("Value error, ")
        return f"`{key}`: {message}" if key else message
    return f"`{key or '(top level)'}` = {error.get('input')!r}: {error['msg']}"


def validate(data: dict[str, Any], source: str = "<config>") -> TrainConfig:
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as e:
        problems = "\n  ".join(describe_error(err) for err in e.errors())
        raise ConfigError(f"{source}: invalid config:\n  {problems}") from None


def load_config(path: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    """Load a training config YAML (with ``extends:``) and apply ``key=value`` overrides."""
    path = Path(path)
    data = _resolve_extends(path)
    data.setdefault("name", path.stem)
    data = apply_overrides(data, overrides or [])
    config = validate(data, source=str(path))
    return absolutize(config)


def absolutize(config: TrainConfig) -> TrainConfig:
    """Resolve relative paths against the current directory, so that Ray workers (whose working directory
    differs) see the same files."""
    config = config.model_copy(deep=True)
    if config.data.root:
        config.data.root = str(Path(config.data.root).expanduser().resolve())
    config.out = str(config.run_dir.expanduser().resolve())
    if config.cluster.stats_dir:
        config.cluster.stats_dir = str(Path(config.cluster.stats_dir).expanduser().resolve())
    return config


def flat_config(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested config dict as ``{dotted key: value}``."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(flat_config(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


# what two runs of the same training may differ in: where they were written and where their clusters sit
NOT_TRAINING = frozenset({"out", "name", "cluster.stats_dir", "train.keep_checkpoints"})


def training_differences(
    theirs: dict[str, Any], mine: dict[str, Any], source: str = "the other run's config"
) -> dict[str, tuple[Any, Any]]:
    """``{dotted key: (their value, my value)}`` where two training configs are not the same training.

    Both are validated first, so a key added to the schema after a run trained takes its default there. Not
    compared: :data:`NOT_TRAINING` and the folder of ``data.root`` (only its last part: the same dataset lives
    at other paths on other machines)."""
    a = flat_config(validate(theirs, source=source).to_dict())
    b = flat_config(validate(mine, source="this config").to_dict())
    for flat in (a, b):
        if flat.get("data.root"):
            flat["data.root"] = Path(str(flat["data.root"])).name
    return {
        k: (a.get(k), b.get(k)) for k in sorted(a.keys() | b.keys()) if k not in NOT_TRAINING and a.get(k) != b.get(k)
    }
