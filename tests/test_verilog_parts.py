"""Cutting Amaranth's Verilog into parts for Yosys (boards.verilog_parts) and the estimate summed
over those parts (boards.yosys.estimate_xcup_in_parts)."""
import re

import pytest

import boards.yosys
from boards.verilog_parts import parse_modules, split_design
from boards.yosys import estimate_xcup
from gen.build import build
from gen.networks import random_network

TOP, ACCELERATOR = "xnorflow_axis", "xnorflow_axis.accelerator"


def small_cnv():
    """A small CNV-like network: two convolutions, a pool, two dense layers."""
    return random_network("parts", (8, 8, 3), [("conv", 8, 3, 1), ("pool", 2), ("conv", 8, 3, 0),
                                               ("dense", 16), ("dense", 4)], calibration_images=4)


@pytest.fixture(scope="module")
def axis_verilog(tmp_path_factory):
    """The AXI4-Stream top of a small CNV-like network, as the ultrascale build writes it."""
    out = tmp_path_factory.mktemp("parts") / "out"
    build(small_cnv(), out, target="ultrascale", board="ultra96", estimate=False)
    return out / f"{TOP}.v"


def definitions(text):
    return re.findall(r"^module\s+\\?(\S+?)\s*\(", text, re.MULTILINE)


def test_every_module_is_defined_once_across_the_parts_and_the_rest(axis_verilog):
    text = axis_verilog.read_text()
    parts, rest = split_design(text, TOP, ACCELERATOR)
    assert {name.rsplit(".", 1)[-1] for name in parts} >= {"conv0_mvu", "conv0_window", "pool1",
                                                            "dense3_mvu", "dense4_mvu", "label"}
    full = [name for part in parts.values() for name in definitions(part)]
    full += [name for name in definitions(rest) if name not in parts]
    assert sorted(full) == sorted(definitions(text))
    for name, part in parts.items():
        assert definitions(part)[0] == name
        assert all(module == name or module.startswith(name + ".")
                   for module in definitions(part))


def test_the_rest_keeps_each_parts_ports_and_drops_its_body(axis_verilog):
    modules, preamble = parse_modules(axis_verilog.read_text())
    parts, rest = split_design(axis_verilog.read_text(), TOP, ACCELERATOR)
    boxes, _ = parse_modules(rest)
    assert preamble.startswith("/* verilator lint_off") and rest.startswith(preamble)
    for name in parts:
        box = boxes[name].text()
        assert box.startswith("(* blackbox *)\n") and " assign " not in box
        ports = [line for line in modules[name].lines if re.match(r"\s+(input|output)\b", line)]
        assert ports and [line for line in boxes[name].lines if line in ports] == ports


def test_a_module_that_is_not_in_the_verilog_is_named(axis_verilog):
    with pytest.raises(ValueError, match=r"^the Verilog has no module xnorflow_axis.nothing$"):
        split_design(axis_verilog.read_text(), TOP, "xnorflow_axis.nothing")


def test_a_build_past_the_one_run_limit_sums_the_parts_close_to_the_whole(axis_verilog,
                                                                        monkeypatch):
    monkeypatch.setattr(boards.yosys, "ONE_RUN_VERILOG_BYTES", 0)
    out = axis_verilog.parent.parent / "in_parts"
    summed = build(small_cnv(), out, target="ultrascale", board="ultra96")["resources"]
    whole = estimate_xcup(axis_verilog, TOP)
    assert "parts" in summed and "parts" not in whole
    assert summed["bram36"] == whole["bram36"]
    assert whole["lut"] <= summed["lut"] <= 1.1 * whole["lut"]
    assert whole["ff"] <= summed["ff"] <= 1.1 * whole["ff"]
    total = sum(part["lut"] for part in summed["parts"].values()) + summed["rest"]["lut"]
    assert total == summed["lut"]
    assert (out / "yosys_parts" / "conv0_mvu.log").exists()
