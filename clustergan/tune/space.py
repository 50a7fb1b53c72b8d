"""The searched space and the configurations it makes: Optuna's define-by-run space, a trial's parameters
from Optuna's draws, the baseline points, and a trial's training config (base + parameters + seed).

Parameters are ``{dotted training config key: value}`` with typed values (``int`` for an int range, else
``float``), set into the config dict as they are (:func:`clustergan.tune.sweep_config.with_values`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from clustergan.config import TrainConfig, validate
from clustergan.tune.sweep_config import ParamSpace, SweepConfig, with_values

#: The baseline points, as parameters over the base config (a noise dimension is added when the base has none).
BASELINES: dict[str, dict[str, Any]] = {
    "pix2pix": {
        "cluster.k": 0,
        "model.nz": 0,
        "model.dropout": 0.5,
        "loss.lambda_ms": 0.0,
        "loss.lambda_kl1": 0.0,
        "loss.lambda_km": 0.0,
    },
    "msgan": {
        "cluster.k": 0,
        "model.dropout": 0.0,
        "loss.lambda_ms": 1.0,
        "loss.lambda_kl1": 0.0,
        "loss.lambda_km": 0.0,
    },
}
#: The noise dimension a trial gets when L_MS is on and the base config has none.
DEFAULT_NZ = 8


def get_dotted(data: dict[str, Any], dotted: str) -> Any:
    """``data["a"]["b"]`` for ``"a.b"``; None when a part is missing."""
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


class SpaceSampler:
    """Optuna define-by-run space (a class, so that Tune can pickle the searcher): a parameter with
    ``zero_allowed`` p is 0 ("off") when an auxiliary uniform draw ``<key>:off`` falls below p, else drawn
    from its range."""

    def __init__(self, space: dict[str, ParamSpace]):
        self.space = space

    def __call__(self, trial) -> None:
        for key, s in self.space.items():
            if s.zero_allowed > 0 and trial.suggest_float(f"{key}:off", 0.0, 1.0) < s.zero_allowed:
                continue  # off: the value is set to 0 in trial_params
            if s.type == "int":
                trial.suggest_int(key, int(s.low), int(s.high))
            else:
                trial.suggest_float(key, s.low, s.high, log=s.type == "loguniform")
        return None


def distributions(space: dict[str, ParamSpace], sampled: dict[str, Any]) -> dict[str, Any]:
    """Optuna distributions of the parameters a search trial sampled (the same define-by-run space as
    :class:`SpaceSampler`, ``<key>:off`` draws included)."""
    import optuna

    out = {}
    for key, s in space.items():
        if f"{key}:off" in sampled:
            out[f"{key}:off"] = optuna.distributions.FloatDistribution(0.0, 1.0)
        if key in sampled:
            if s.type == "int":
                out[key] = optuna.distributions.IntDistribution(int(s.low), int(s.high))
            else:
                out[key] = optuna.distributions.FloatDistribution(s.low, s.high, log=s.type == "loguniform")
    return out


def trial_params(space: dict[str, ParamSpace], sampled: dict[str, Any]) -> dict[str, int | float]:
    """Tune's config of a search trial -> ``{dotted key: value}`` with "off" parameters at 0."""
    flat = dict(sampled)  # Optuna's names are flat ("cluster.k"); Tune unflattens only on "/"
    params: dict[str, int | float] = {}
    for key, s in space.items():
        if key in flat:
            params[key] = int(flat[key]) if s.type == "int" else float(flat[key])
        else:
            params[key] = 0 if s.type == "int" else 0.0
    return params


def optuna_draws(tune_config: dict[str, Any]) -> dict[str, int | float]:
    """Optuna's raw draws in a search trial's Tune config (``<key>:off`` ones included): what a ledger gives
    back to a new study."""
    return {k: v for k, v in tune_config.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def noise_fill(data: dict[str, Any]) -> dict[str, int]:
    """``{"model.nz": DEFAULT_NZ}`` when ``data`` has L_MS on and no noise (L_MS compares two noise draws),
    else nothing: the one place that fills the noise dimension in."""
    if float(get_dotted(data, "loss.lambda_ms") or 0) > 0 and not get_dotted(data, "model.nz"):
        return {"model.nz": DEFAULT_NZ}
    return {}


def baseline_params(name: str, base: dict[str, Any]) -> dict[str, int | float]:
    params = dict(BASELINES[name])
    return {**params, **noise_fill(with_values(base, params))}


def control_params(name: str, controls: dict[str, dict[str, Any]], base: dict[str, Any]) -> dict[str, int | float]:
    """A control's parameters (the sweep's ``controls[name]``), the noise dimension filled in as for a baseline."""
    params = dict(controls[name])
    return {**params, **noise_fill(with_values(base, params))}


def fixed_trials(sweep: SweepConfig) -> list[str]:
    """The Tune values of the sweep's fixed trials, in the order they run: the baselines' names (when on), then
    ``control:<name>`` for each control."""
    return [*(BASELINES if sweep.baselines else ()), *(f"control:{c}" for c in sweep.controls)]


def fixed_kind(value: str) -> str:
    """A fixed trial's record kind from its Tune value: ``pix2pix`` -> ``baseline:pix2pix``; a control keeps its."""
    return value if value.startswith("control:") else f"baseline:{value}"


def fixed_params(kind: str, controls: dict[str, dict[str, Any]], base: dict[str, Any]) -> dict[str, int | float]:
    """A fixed trial's parameters from its record kind (``baseline:<name>`` or ``control:<name>``)."""
    group, _, name = kind.partition(":")
    return control_params(name, controls, base) if group == "control" else baseline_params(name, base)


def build_trial_config(base: dict[str, Any], params: dict[str, Any], seed: int, out: str | Path) -> TrainConfig:
    """Base + parameters -> a validated TrainConfig for one seed. Without clusters the cluster losses are off
    (they need cluster statistics); with L_MS on, the generator needs noise."""
    data = with_values(base, params)
    if not int(get_dotted(data, "cluster.k") or 0):
        data = with_values(data, {"loss.lambda_kl1": 0.0, "loss.lambda_km": 0.0})
    data = with_values(data, {**noise_fill(data), "seed": seed, "out": str(out)})
    return validate(data, source=f"trial config ({params})")


def cluster_ks(sweep: SweepConfig, base: dict[str, Any]) -> list[int]:
    """Every k >= 1 a trial can use: the searched range (or the base's k) and each control's."""
    space = sweep.space.get("cluster.k")
    if space is not None:
        ks = set(range(max(1, int(space.low)), int(space.high) + 1))
    else:
        ks = {int(get_dotted(base, "cluster.k") or 0)}
    ks |= {int(get_dotted(with_values(base, c), "cluster.k") or 0) for c in sweep.controls.values()}
    return sorted(k for k in ks if k >= 1)
