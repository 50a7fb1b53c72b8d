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
