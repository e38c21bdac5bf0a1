"""Which container commands the job runner may fork from its warm interpreter."""

from __future__ import annotations

import sys

from podium_operator.local.zygote.server import TRUSTED_MODULES, trusted_module


def test_only_podiums_own_steps_run_warm():
    assert trusted_module(["python", "-m", "podium.evaluation.score", "--task", "x"], sys.executable) == (
        "podium.evaluation.score")
    assert trusted_module([sys.executable, "-m", "podium.evaluation.stage"], sys.executable) == "podium.evaluation.stage"
    # The submitter's code never shares the warm interpreter's memory, nor does anything else.
    assert trusted_module(["python", "-m", "podium.evaluation.predict"], sys.executable) is None
    assert trusted_module(["python", "-c", "import podium.evaluation.stage"], sys.executable) is None
    assert trusted_module(["/usr/bin/python2", "-m", "podium.evaluation.stage"], sys.executable) is None
    assert trusted_module(["python", "-m"], sys.executable) is None
    assert "podium.evaluation.predict" not in TRUSTED_MODULES
