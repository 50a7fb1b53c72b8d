"""The headline numbers a metric may return: their names, in the order tables print them, which way is
better, and their labels. Every summary, table, TensorBoard scalar and ranking reads its names from here,
and :func:`clustergan.metrics.evaluate` refuses a metric value whose name is missing, so registering a new
metric means naming its scores here once.

This module imports nothing: the CLI, the sweep and the reproduction read it without loading the metric
networks.
"""

from __future__ import annotations

SCORES = ("fid", "fid_n_inputs", "kid", "ndb", "jsd", "lpips", "mode_coverage", "cond_gain")

LOWER_IS_BETTER = {
    "fid": True,
    "fid_n_inputs": True,
    "kid": True,
    "ndb": True,
    "jsd": True,
    "lpips": False,
    "mode_coverage": False,
    "cond_gain": False,
}

LABELS = {
    "fid": "FID",
    "fid_n_inputs": "FID at N = inputs",
    "kid": "KID",
    "ndb": "NDB",
    "jsd": "JSD",
    "lpips": "LPIPS",
    "mode_coverage": "mode coverage",
    "cond_gain": "cond_gain",
}

# What the paper's tables compare. cond_gain asks a different question (does the output follow its input?)
# and is reported beside them, not ranked with them.
QUALITY = tuple(k for k in SCORES if k != "cond_gain")
