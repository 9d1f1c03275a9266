# amaranth: UnusedElaboratable=no
"""boards.fmax: a small MVU through Yosys and nextpnr-ecp5 (about 10 s once YoWASP has compiled
its WebAssembly, which the first call on a machine does in about 45 s)."""
import numpy as np
import pytest
from amaranth import Module, Signal

from boards import BuildError
from boards.fmax import ecp5_fmax
from hw.mvu import MatrixVectorUnit


def test_fmax_of_a_small_mvu():
    rng = np.random.default_rng(0)
    unit = MatrixVectorUnit(weights=rng.integers(0, 2, (8, 32)),
                            thresholds=rng.integers(-8, 8, (8, 1)), pe=2, simd=8)
    result = ecp5_fmax(unit, clock_mhz=100)
    assert set(result) == {"fmax_mhz", "LUT4", "FF", "EBR", "MULT18", "critical_path",
                           "seconds"}
    assert result["fmax_mhz"] > 100
    start, end = result["critical_path"]  # cells named after the unit's signals
    assert "TRELLIS" in start and "TRELLIS" in end
    # 2 lanes of 8 XNORs into 4-bit sums, 6-bit accumulators: tens of LUTs, not a handful.
    assert 30 < result["LUT4"] < 1000 and result["FF"] > 2 * 6
    assert result["MULT18"] == 0 and result["seconds"] > 0


def test_fmax_of_an_elaboratable_with_ports():
    m = Module()
    a, b = Signal(8), Signal(8)
    m.d.sync += b.eq(b + a)
    result = ecp5_fmax(m, ports=[a, b], clock_mhz=100)
    assert result["fmax_mhz"] > 100 and result["FF"] == 8


def test_fmax_reports_a_tool_failure():
    m = Module()
    a = Signal(8)
    m.d.sync += a.eq(a + 1)
    with pytest.raises(BuildError, match="nextpnr-ecp5 failed"):
        ecp5_fmax(m, ports=[a], device="1k")  # no such ECP5
