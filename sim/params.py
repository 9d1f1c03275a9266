"""The cocotb side of ``sim.runner``: read the test's parameters, write its figures."""
import json
import os


def read_params():
    """The dict the pytest side passed to ``run_cocotb(params=...)``."""
    with open(os.environ["XNORFLOW_SIM_PARAMS"]) as f:
        return json.load(f)


def write_result(result):
    """Hand a JSON-serialisable dict back to the caller of ``run_cocotb``."""
    with open(os.environ["XNORFLOW_SIM_RESULT"], "w") as f:
        json.dump(result, f)
