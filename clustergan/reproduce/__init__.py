"""The paper's Table 1 as a reproducible benchmark: train every method with the same budget and seeds,
evaluate under one protocol, and write ``docs/RESULTS.md`` (table, significance, figure).

- :mod:`.presets` what a preset trains (``cpu50``: a 2-core CPU, the report's preset; ``cpu``: the earlier
  500-step one; ``gpu``: the paper's scale);
- :mod:`.earlier` keeps a replaced preset's report on its successor's page, as its own section;
- :mod:`.run` trains and evaluates every (study, method, seed), resumable, plus the floor and ceiling rows;
- :mod:`.results` aggregates seeds, applies the significance rule and writes the report;
- :mod:`.figure` the Figure-2-like grid (same inputs, each method, clustergan per cluster index).

Entry point: ``python ray_jobs/reproduce.py --preset cpu50`` (``make reproduce``).
"""

from clustergan.reproduce.presets import PRESETS, Method, Preset, Study, get_preset

__all__ = ["PRESETS", "Method", "Preset", "Study", "get_preset"]
