"""Job submission to a real Ray head with token authentication: the debug sweep (``--smoke-test``) submitted
through the job API with the token succeeds and writes its ranking; a request without the token, or with a
wrong one, is refused.

The head, the submission and the experiment are the session fixture ``smoke_job`` (``tests/conftest.py``):
the same experiment is the one the sweep tests of ``tests/test_ray.py`` reuse.
"""

from __future__ import annotations

import pytest

pytest.importorskip("ray")

pytestmark = pytest.mark.xdist_group("ray")  # one worker runs every Ray module: see tests/conftest.py


def test_requests_without_the_token_are_refused(smoke_job):
    assert all(code in (401, 403) for code in smoke_job["refused"]), smoke_job["refused"]  # none, then a wrong one
    assert smoke_job["accepted"] == 200


def test_submitted_smoke_sweep_succeeds_with_the_token(smoke_job):
    assert "STATUS SUCCEEDED" in smoke_job["stdout"], smoke_job["stdout"][-3000:] + smoke_job["stderr"][-3000:]
    table = (smoke_job["exp"] / "ranking.md").read_text()
    assert "baseline:pix2pix" in table and "baseline:msgan" in table
    assert "Best configuration (ready to train)" in smoke_job["stdout"]  # the driver's output reached the job log
    # progress after every trial: 2 baselines, then the 2 searched trials of the smoke test
    assert "[sweep debug_sweep-smoke] 4/4 trials done (0 failed)" in smoke_job["stdout"]
    assert "; best so far: " in smoke_job["stdout"]
    # the report page and the HParams table, one run per trial, named for what each trial is
    assert (smoke_job["exp"] / "report.html").is_file()
    runs = sorted(p.name for p in (smoke_job["exp"] / "hparams").iterdir() if p.is_dir())
    assert runs[:2] == ["baseline-msgan", "baseline-pix2pix"] and len(runs) == 4
    assert all(r.startswith("search-") for r in runs[2:])
    # Ray Tune's own TensorBoard logger is off: no second, generated-name copy of each trial
    assert not [p for d in ("baselines", "search") for p in (smoke_job["exp"] / d).glob("*/events.out.tfevents.*")]
