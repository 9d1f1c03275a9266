# amaranth: UnusedElaboratable=no
import pytest
from amaranth import signed, unsigned

from gen.build import LINT_WAIVERS
from hw.parallel_window import ParallelWindow
from sim.runner import component_verilog, lint, run_cocotb

# (height, width, channels, kernel, pad, simd, elem_shape, pad_value)
CONFIGS = {
    "k3-pad1-row-words": (5, 7, 2, 3, 1, 6, unsigned(1), 0),
    "k3-valid-window-words": (4, 6, 3, 3, 0, 27, unsigned(1), 0),
    "int8-k5-pad2-pixel-words": (5, 7, 2, 5, 2, 2, signed(8), -3),
    "ternary-k2-pad1-window-words": (3, 5, 3, 2, 1, 12, unsigned(2), 1),
    "k1": (3, 4, 5, 1, 0, 5, unsigned(1), 0),
    "one-row-k4-pad2-two-row-words": (1, 2, 3, 4, 2, 24, unsigned(1), 0),
}


@pytest.mark.parametrize("config", CONFIGS.values(), ids=CONFIGS.keys())
def test_parallel_window(config, tmp_path):
    height, width, channels, kernel, pad, simd, elem_shape, pad_value = config
    window = ParallelWindow(height=height, width=width, channels=channels, kernel=kernel,
                            pad=pad, simd=simd, elem_shape=elem_shape, pad_value=pad_value)
    verilog = LINT_WAIVERS + component_verilog(window, "parallel_window")
    (tmp_path / "parallel_window.v").write_text(verilog)
    linted = lint(tmp_path / "parallel_window.v")
    assert linted.returncode == 0, linted.stderr[-3000:]

    params = {"height": height, "width": width, "channels": channels, "kernel": kernel,
              "pad": pad, "simd": simd, "in_lanes": channels, "elem_width": elem_shape.width,
              "signed": elem_shape.signed, "pad_value": pad_value}
    run = dict(verilog_text=verilog, toplevel="parallel_window",
               test_module="sim.tb.window_tb")
    for seed, valid, ready in [(1, 0.6, 0.7), (2, 1.0, 0.3)]:
        run_cocotb(**run, params={**params, "seed": seed, "frames": 4, "valid_probability": valid,
                                  "ready_probability": ready})

    # Full rate: every frame, the first included, takes exactly cycles_per_frame clocks.
    result = run_cocotb(**run, params={**params, "seed": 3, "frames": 4, "valid_probability": 1.0,
                                       "ready_probability": 1.0})
    starts = result["frame_starts"]
    periods = [b - a for a, b in zip(starts, starts[1:])]
    assert periods == [window.cycles_per_frame] * 3, (periods, window.cycles_per_frame)


def make(**overrides):
    args = dict(height=4, width=5, channels=2, kernel=3, pad=1, simd=6)
    return ParallelWindow(**{**args, **overrides})


@pytest.mark.parametrize("overrides,message", [
    ({"simd": 3}, r"simd must be a multiple of channels=2 dividing kernel\*kernel\*channels=18 "
                  r"\(one of \[2, 6, 18\]\), not 3"),
    ({"simd": 4}, r"one of \[2, 6, 18\]"),
    ({"simd": 36}, r"one of \[2, 6, 18\]"),
    ({"kernel": 4, "simd": 6}, r"one of \[2, 4, 8, 16, 32\]"),
    ({"simd": 0}, "simd must be a positive integer"),
    ({"simd": 6.0}, "simd must be a positive integer"),
    ({"pad": 3}, "pad must be an integer from 0 to kernel-1=2"),
    ({"pad_value": 1}, "pad_value must be 0"),
    ({"elem_shape": unsigned(2), "pad_value": 4}, "pad_value must be an integer from 0 to 3"),
    ({"kernel": 6, "pad": 0}, "leaves a -1x0 output"),
    ({"channels": 0}, "channels must be a positive integer"),
    ({"height": True}, "height must be a positive integer"),
])
def test_parallel_window_refuses(overrides, message):
    with pytest.raises(ValueError, match=message):
        make(**overrides)


def test_parallel_window_refuses_non_shape():
    with pytest.raises(TypeError, match="elem_shape must be a shape"):
        make(elem_shape="int8")


def test_parallel_window_attributes_and_cycles():
    window = make(elem_shape=signed(8), pad_value=-1)
    assert (window.height, window.width, window.channels, window.kernel, window.pad,
            window.simd, window.pad_value, window.elem_shape) == (4, 5, 2, 3, 1, 6, -1, signed(8))
    assert (window.out_height, window.out_width, window.words_per_window) == (4, 5, 3)
    # A whole window per word: one step per padded pixel.
    assert make(simd=18).cycles_per_frame == 6 * 7
    # Three words per window: 3 a window in a row, max(3, 3) between rows, 2*8+1 between frames.
    assert window.cycles_per_frame == 4 * 4 * 3 + 3 * 3 + 17
    # A pixel per word: 9 words a window, also between rows, 2*8+1 between frames.
    assert make(simd=2).cycles_per_frame == 4 * 4 * 9 + 3 * 9 + 17
    assert make(kernel=1, pad=0, simd=2).cycles_per_frame == 4 * 5
