"""Evaluation protocols: everything that changes the numbers, named and recorded with every result.

``paper`` follows the protocols the compared papers used (docs/PROTOCOLS.md): LPIPS diversity over 50
random pairs among 50 samples per input (MSGAN), NDB/JSD with K=20 bins on standardised 64x64 pixels, FID on
10 samples per input against the training targets.

``sweep`` is the cheap protocol used inside hyper-parameter sweeps: 10 samples per input give 45 possible
pairs, 10 of them are scored; NDB keeps the paper's bins (K=20, 64x64 pixels, 10 queries per input, so the
same number of generated samples as ``paper``); FID is off because 1,000 Inception forwards cost about a
minute on CPU.

The counts were kept after the noise study (``benchmarks/eval_cost.py``; docs/BENCHMARKS.md, "Evaluation
cost"): on facades at 64 px (106 test inputs) one sweep evaluation took a median 106-133 s on the loaded 2-core
CPU (85% of it generation, 13% LPIPS), about 1.2% of a 40-epoch preset trial measured on the same machine; over
5 evaluation seeds the LPIPS std was 0.0001 (pix2pix) and 0.0067 (MSGAN) against a pix2pix-MSGAN gap of 0.245.
More LPIPS pairs would buy precision the ranking does not need (all 45 pairs would add ~50 s per evaluation);
fewer samples would thin NDB's 1,060 queries (~53 per bin). The checkpoints had one epoch of training, so their
NDB/JSD spreads (NDB std 0, JSD std <= 0.003) say little about trained models.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace

from clustergan.errors import ConfigError

NDB_SPACES = ("pixels", "features")


def protocol_digest(recorded: dict) -> str:
    """The digest of a protocol as a run recorded it (``metrics.json``'s ``protocol``): the first 12 hex digits
    of the SHA-256 of its sorted JSON, without the list of metrics it ran (``metrics``; older records: a ``fid``
    flag). Two evaluations with the same digest drew the same samples with the same nets, so every metric both
    have is comparable."""
    settings = {k: v for k, v in recorded.items() if k not in ("metrics", "fid")}
    canonical = json.dumps(settings, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


CLUSTER_CHOICES = ("frequency", "fixed", "target")


@dataclass(frozen=True)
class Protocol:
    """How many samples to draw and how each metric is computed.

    ``samples_per_input`` (S) samples are generated once per test input; LPIPS scores ``lpips_pairs``
    distinct random pairs among them, NDB takes the first ``ndb_queries_per_input`` and FID the first
    ``fid_samples_per_input``. ``cluster_choice`` is recorded only: the caller's sampling code decides the
    cluster indices. ``ndb_seed`` seeds the k-means bins, which belong to the data set and the protocol and
    so stay fixed when the evaluation seed changes (methods are compared on the same bins).
    """

    name: str
    samples_per_input: int
    lpips_pairs: int
    ndb_bins: int
    ndb_resolution: int
    ndb_standardize: bool
    ndb_space: str
    ndb_queries_per_input: int
    # the registered metrics this protocol runs, in reporting order; one that needs an input the caller did
    # not give (mode_coverage: a mode classifier; cond_gain: the test targets) is left out of that evaluation
    metrics: tuple[str, ...]
    fid_samples_per_input: int
    cluster_choice: str
    ndb_seed: int = 0
    lpips_version: str = "0.1"
    lpips_net: str = "alex"
    lpips_range: str = "[-1,1]"

    @property
    def fid(self) -> bool:
        return "fid" in self.metrics

    @property
    def digest(self) -> str:
        """What the protocol fixes, as a short hash: two evaluations with the same digest are comparable."""
        return protocol_digest(asdict(self))

    def __post_init__(self) -> None:
        where = f"protocol {self.name!r}"
        if isinstance(self.metrics, list):  # a protocol read back from JSON
            object.__setattr__(self, "metrics", tuple(self.metrics))
        if not self.metrics or not all(isinstance(m, str) for m in self.metrics):
            raise ConfigError(
                f"{where}: metrics must be a non-empty list of registered metric names, got {self.metrics!r}"
            )
        for key in (
            "samples_per_input",
            "lpips_pairs",
            "ndb_bins",
            "ndb_resolution",
            "ndb_queries_per_input",
            "fid_samples_per_input",
        ):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{where}: {key} must be a positive integer, got {value!r}")
        if self.samples_per_input < 2:
            raise ConfigError(
                f"{where}: samples_per_input must be at least 2 to form LPIPS pairs, got {self.samples_per_input}"
            )
        possible = self.samples_per_input * (self.samples_per_input - 1) // 2
        if self.lpips_pairs > possible:
            raise ConfigError(
                f"{where}: lpips_pairs={self.lpips_pairs} but {self.samples_per_input} samples per input give "
                f"only {possible} distinct pairs; lower lpips_pairs or raise samples_per_input"
            )
        for key in ("ndb_queries_per_input", "fid_samples_per_input"):
            if getattr(self, key) > self.samples_per_input:
                raise ConfigError(
                    f"{where}: {key}={getattr(self, key)} exceeds samples_per_input={self.samples_per_input}; "
                    f"samples are generated once, so raise samples_per_input"
                )
        if self.ndb_space not in NDB_SPACES:
            raise ConfigError(f"{where}: ndb_space must be one of {list(NDB_SPACES)}, got {self.ndb_space!r}")
        if self.cluster_choice not in CLUSTER_CHOICES:
            raise ConfigError(
                f"{where}: cluster_choice must be one of {list(CLUSTER_CHOICES)}, got {self.cluster_choice!r}"
            )
        # Only the configuration whose weights we load is implemented; other values would be mislabelled.
        fixed = {"lpips_version": "0.1", "lpips_net": "alex", "lpips_range": "[-1,1]"}
        for key, value in fixed.items():
            if getattr(self, key) != value:
                raise ConfigError(
                    f"{where}: {key} must be {value!r} (the only LPIPS set-up available), got {getattr(self, key)!r}"
                )


PROTOCOLS: dict[str, Protocol] = {
    "paper": Protocol(
        name="paper",
        samples_per_input=50,
        lpips_pairs=50,
        ndb_bins=20,
        ndb_resolution=64,
        ndb_standardize=True,
        ndb_space="pixels",
        ndb_queries_per_input=10,
        metrics=("fid", "ndb", "lpips", "mode_coverage", "cond_gain"),
        fid_samples_per_input=10,
        cluster_choice="frequency",
    ),
    # learning curves: the sweep's counts plus FID and KID on the same 10 samples per input (N = 10 x inputs,
    # the paper protocol's FID N), so a curve's last point compares with a paper evaluation's FID
    "curve": Protocol(
        name="curve",
        samples_per_input=10,
        lpips_pairs=10,
        ndb_bins=20,
        ndb_resolution=64,
        ndb_standardize=True,
        ndb_space="pixels",
        ndb_queries_per_input=10,
        metrics=("fid", "ndb", "lpips", "mode_coverage", "cond_gain"),
        fid_samples_per_input=10,
        cluster_choice="frequency",
    ),
    "sweep": Protocol(
        name="sweep",
        samples_per_input=10,
        lpips_pairs=10,
        ndb_bins=20,
        ndb_resolution=64,
        ndb_standardize=True,
        ndb_space="pixels",
        ndb_queries_per_input=10,
        metrics=("ndb", "lpips", "mode_coverage", "cond_gain"),
        fid_samples_per_input=10,
        cluster_choice="frequency",
    ),
}
# the procedural data's 4 known modes: with 10 frequency-drawn cluster indices per input, a generator that
# renders mode i for cluster i still misses a mode when the draws miss its cluster (expected coverage
# 1 - (3/4)^10 = 0.944); 20 samples lift that ceiling to 0.997, so mode coverage measures the generator
PROTOCOLS["synth"] = replace(PROTOCOLS["sweep"], name="synth", samples_per_input=20, lpips_pairs=20)


def get_protocol(name: str) -> Protocol:
    """The registered protocol ``name``; unknown names list the known ones."""
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise ConfigError(f"unknown evaluation protocol {name!r}; choose one of {sorted(PROTOCOLS)}") from None
