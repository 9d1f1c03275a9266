# amaranth: UnusedElaboratable=no
import pytest
from amaranth import signed, unsigned

from hw.label import LabelSelect
from sim.runner import component_verilog, run_cocotb


@pytest.mark.parametrize("classes,lanes,width,top_k,seed", [
    (10, 1, 8, 1, 0), (10, 2, 12, 3, 1), (10, 5, 8, 5, 2), (10, 10, 4, 10, 3)])
def test_label_select_matches_stable_argsort(classes, lanes, width, top_k, seed):
    select = LabelSelect(classes=classes, lanes=lanes, elem_shape=signed(width), top_k=top_k)
    run_cocotb(verilog_text=component_verilog(select, "label_select"), toplevel="label_select",
               test_module="sim.tb.label_tb",
               params={"seed": seed, "classes": classes, "lanes": lanes, "width": width,
                       "top_k": top_k, "index_width": select.index_shape.width, "frames": 300,
                       "valid_probability": 0.7, "ready_probability": 0.4})


@pytest.mark.parametrize("classes,index_width", [(1, 1), (2, 1), (10, 4), (16, 4), (17, 5)])
def test_label_select_index_width(classes, index_width):
    select = LabelSelect(classes=classes, lanes=1, elem_shape=signed(8))
    assert select.index_shape == unsigned(index_width)


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(classes=0, lanes=1, elem_shape=signed(8)), ValueError, "classes.*0"),
    (dict(classes=10, lanes=3, elem_shape=signed(8)), ValueError, "lanes must divide.*10.*3"),
    (dict(classes=10, lanes=1, elem_shape=signed(8), top_k=11), ValueError, "top_k.*10.*11"),
    (dict(classes=10, lanes=1, elem_shape=signed(8), top_k=0), ValueError, "top_k.*0"),
    (dict(classes=10, lanes=1, elem_shape=8), TypeError, "elem_shape.*integer Shape.*8"),
])
def test_label_select_refuses_bad_parameters(kwargs, error, match):
    with pytest.raises(error, match=match):
        LabelSelect(**kwargs)
