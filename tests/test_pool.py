# amaranth: UnusedElaboratable=no
import pytest
from amaranth import signed, unsigned

from hw.pool import MaxPool
from sim.runner import component_verilog, run_cocotb

# (height, width, channels, kernel, simd, element bits: 1 binary, 2 ternary counts)
CONFIGS = {
    "k2-1word": (4, 6, 4, 2, 4, 1),
    "k2-drop-row-col-3words": (5, 7, 6, 2, 2, 1),
    "k3-3words": (9, 6, 3, 3, 1, 1),
    "k3-1x1-out-drop": (4, 5, 2, 3, 2, 1),
    "k1-identity": (3, 3, 5, 1, 5, 1),
    "k4-drop-2words": (7, 9, 8, 4, 4, 1),
    "ternary-k2-drop-row-col-2words": (5, 7, 6, 2, 3, 2),
}


@pytest.mark.parametrize("config", CONFIGS.values(), ids=CONFIGS.keys())
def test_pool(config):
    height, width, channels, kernel, simd, bits = config
    pool = MaxPool(height=height, width=width, channels=channels, kernel=kernel, simd=simd,
                   elem_shape=unsigned(bits))
    params = {"height": height, "width": width, "channels": channels, "kernel": kernel,
              "simd": simd, "width_bits": bits}
    run = dict(verilog_text=component_verilog(pool, "pool"), toplevel="pool",
               test_module="sim.tb.pool_tb")

    run_cocotb(**run, params={**params, "seed": 1, "frames": 5, "valid_probability": 0.6,
                              "ready_probability": 0.5})

    # Full rate: one input word per cycle, so frames start every frame's input word count.
    result = run_cocotb(**run, params={**params, "seed": 2, "frames": 3, "valid_probability": 1.0,
                                       "ready_probability": 1.0})
    starts = result["frame_starts"]
    period = height * width * channels // simd
    assert [b - a for a, b in zip(starts, starts[1:])] == [period] * (len(starts) - 1)


def make(**overrides):
    return MaxPool(**{**dict(height=4, width=5, channels=6, kernel=2, simd=3), **overrides})


@pytest.mark.parametrize("overrides,message", [
    ({"simd": 4}, "simd must divide channels=6"),
    ({"simd": -3}, "simd must be a positive integer"),
    ({"kernel": 5}, "kernel must be at most height=4 and width=5"),
    ({"kernel": 0}, "kernel must be a positive integer"),
    ({"channels": True}, "channels must be a positive integer"),
    ({"elem_shape": unsigned(3)}, r"elem_shape must be unsigned\(1\) \(bits\) or unsigned\(2\)"),
    ({"elem_shape": signed(2)}, r"elem_shape must be .*, not signed\(2\)"),
    ({"elem_shape": "bits"}, "elem_shape must be"),
])
def test_pool_refuses(overrides, message):
    with pytest.raises(ValueError, match=message):
        make(**overrides)


def test_pool_attributes():
    pool = make()
    assert (pool.height, pool.width, pool.channels, pool.kernel, pool.simd) == (4, 5, 6, 2, 3)
    assert (pool.out_height, pool.out_width) == (2, 2)
    assert pool.elem_shape == unsigned(1) and make(elem_shape=unsigned(2)).elem_shape == unsigned(2)
