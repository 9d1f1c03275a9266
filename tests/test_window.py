# amaranth: UnusedElaboratable=no
import pytest
from amaranth import signed, unsigned

from hw.window import SlidingWindow
from sim.runner import component_verilog, run_cocotb

# (height, width, channels, kernel, pad, simd, elem_shape, pad_value)
CONFIGS = {
    "k3-same-2words": (5, 7, 6, 3, 1, 3, unsigned(1), 0),
    "k3-valid-1x1-out": (3, 3, 4, 3, 0, 4, unsigned(1), 0),
    "int8-k3-pad2": (4, 5, 3, 3, 2, 1, signed(8), -5),
    "k1-3words": (3, 5, 9, 1, 0, 3, unsigned(1), 0),
    "one-row-kernel-wider": (1, 2, 4, 4, 2, 2, unsigned(1), 0),
    "int8-k2-valid": (6, 9, 2, 2, 0, 2, signed(8), 7),
}


@pytest.mark.parametrize("config", CONFIGS.values(), ids=CONFIGS.keys())
def test_window(config):
    height, width, channels, kernel, pad, simd, elem_shape, pad_value = config
    window = SlidingWindow(height=height, width=width, channels=channels, kernel=kernel, pad=pad,
                           simd=simd, elem_shape=elem_shape, pad_value=pad_value)
    params = {"height": height, "width": width, "channels": channels, "kernel": kernel,
              "pad": pad, "simd": simd, "in_lanes": simd, "elem_width": elem_shape.width,
              "signed": elem_shape.signed, "pad_value": pad_value}
    verilog = component_verilog(window, "window")
    run = dict(verilog_text=verilog, toplevel="window", test_module="sim.tb.window_tb")

    run_cocotb(**run, params={**params, "seed": 1, "frames": 5, "valid_probability": 0.6,
                              "ready_probability": 0.7})

    # Full rate: after the first frame, frames follow each other every max(out, in) words.
    result = run_cocotb(**run, params={**params, "seed": 2, "frames": 4, "valid_probability": 1.0,
                                       "ready_probability": 1.0})
    words = channels // simd
    out_words = window.out_height * window.out_width * kernel * kernel * words
    period = max(out_words, height * width * words)
    starts = result["frame_starts"]
    periods = [b - a for a, b in zip(starts, starts[1:])]
    assert periods[1:] == [period] * (len(periods) - 1), (periods, period)


def make(**overrides):
    args = dict(height=4, width=5, channels=6, kernel=3, pad=1, simd=2)
    return SlidingWindow(**{**args, **overrides})


@pytest.mark.parametrize("overrides,message", [
    ({"simd": 4}, "simd must divide channels=6"),
    ({"simd": 0}, "simd must be a positive integer"),
    ({"pad": 3}, "pad must be an integer from 0 to kernel-1=2"),
    ({"pad": -1}, "pad must be an integer from 0 to kernel-1=2"),
    ({"pad_value": 1}, "pad_value must be 0"),
    ({"elem_shape": signed(8), "pad_value": 128}, "pad_value must be an integer from -128 to 127"),
    ({"kernel": 6, "pad": 0}, "leaves a -1x0 output"),
    ({"height": 0}, "height must be a positive integer"),
    ({"width": 2.0}, "width must be a positive integer"),
])
def test_window_refuses(overrides, message):
    with pytest.raises(ValueError, match=message):
        make(**overrides)


def test_window_refuses_non_shape():
    with pytest.raises(TypeError, match="elem_shape must be a shape"):
        make(elem_shape="int8")


def test_window_attributes():
    window = make(elem_shape=signed(8), pad_value=-1)
    assert (window.height, window.width, window.channels, window.kernel, window.pad,
            window.simd, window.pad_value) == (4, 5, 6, 3, 1, 2, -1)
    assert (window.out_height, window.out_width, window.buffer_rows) == (4, 5, 4)
    assert make(pad=0).buffer_rows == 6
