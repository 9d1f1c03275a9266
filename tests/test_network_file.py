"""Loading and validating network files, and the writer's round trip."""
import json
import subprocess
import sys

import numpy as np
import pytest

from gen import golden
from gen.ir import NetworkFileError, load_network, save_network
from tests.handmade import pack, write_tiny_network


def test_handmade_file_loads_with_the_documented_meaning(tmp_path):
    net = load_network(write_tiny_network(tmp_path))
    assert [layer.kind for layer in net.layers] == ["conv", "maxpool", "conv", "dense", "label"]
    assert [layer.out_shape for layer in net.layers] == [(12, 12, 6), (6, 6, 6), (4, 4, 10), (7,), (1,)]
    assert net.layers[0].in_bits == 8 and net.layers[2].in_bits == 1
    assert net.layers[0].weights.shape == (6, 27) and set(np.unique(net.layers[0].weights)) <= {0, 1}
    assert list(net.layers[0].direction) == [1, -1, 1, 1, -1, 1]
    assert net.input.values(np.array([0, 255, 128, 127])).tolist() == [-128, 127, 1, -1]


def test_save_load_round_trip_keeps_every_array(tmp_path):
    net = load_network(write_tiny_network(tmp_path))
    again = load_network(save_network(net, tmp_path / "copy.json"))
    images = np.random.default_rng(3).integers(0, 256, (20, 12, 12, 3))
    a, b = golden.execute(net, images), golden.execute(again, images)
    assert (a.scores == b.scores).all() and (a.labels == b.labels).all()
    assert not list(tmp_path.glob("*.tmp*")), "temporary files left behind"


BROKEN = {
    "wrong weight shape": ({"conv1.weights": pack(np.zeros((10, 60)))},
                           "layer 2 ('conv1')", "shape (10, 8), expected (10, 7)"),
    "missing array": ({"conv0.thresholds": None}, "layer 0 ('conv0')", 'missing array "conv0.thresholds"'),
    "thresholds of the wrong size": ({"conv1.thresholds": np.zeros((9, 1), int)},
                                     "layer 2 ('conv1')", "expected (10, 1)"),
    "direction not ±1": ({"conv0.direction": np.array([1, 0, 1, 1, 1, 1])},
                         "layer 0 ('conv0')", "may only hold [-1, 1]"),
    "thresholds on a scores layer": ({"fc0.thresholds": np.zeros((7, 1), int)},
                                     "layer 3 ('fc0')", "takes no thresholds"),
    "float weights": ({"fc0.weights": np.zeros((7, 20))}, "layer 3 ('fc0')", "must hold integers"),
    "three thresholds per channel": ({"conv1.thresholds": np.zeros((10, 3), int)}, "layer 2 ('conv1')",
                                     "use 1 (binary output) or 2 (ternary output -1/0/+1)"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_arrays_name_file_and_layer(tmp_path, case):
    overrides, where, what = BROKEN[case]
    path = write_tiny_network(tmp_path, overrides=overrides)
    with pytest.raises(NetworkFileError) as error:
        load_network(path)
    message = str(error.value)
    assert message.startswith(str(path)) and where in message and what in message
    assert "\n" not in message


def edit_header(path, edit):
    header = json.loads(path.read_text())
    edit(header)
    path.write_text(json.dumps(header))
    return path


@pytest.mark.parametrize("edit,expected", [
    (lambda h: h["layers"][1].update(kind="avgpool"), "unknown kind 'avgpool'; accepted: conv, dense, maxpool, label"),
    (lambda h: h["layers"][0].update(pad=3), '"pad" must be smaller than the kernel 3'),
    (lambda h: h["layers"][2].update(kernel=9), "does not fit the input"),
    (lambda h: h["layers"].pop(), 'the last layer must be a "label" layer'),
    (lambda h: h["layers"][3].update(output="threshold"), "layer 3 ('fc0')"),
    (lambda h: h["input"].update(bits=4), '"bits" must be 8 (bytes) or 1 (bits)'),
    (lambda h: h.update(version=7), '"version" must be 1'),
    (lambda h: h["layers"][2].update(pad_value=5), "binary padding is -1"),
])
def test_broken_headers_name_the_problem(tmp_path, edit, expected):
    path = edit_header(write_tiny_network(tmp_path), edit)
    with pytest.raises(NetworkFileError, match=None) as error:
        load_network(path)
    assert expected in str(error.value) and str(path) in str(error.value)


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(NetworkFileError, match="no such network file"):
        load_network(tmp_path / "nothing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(NetworkFileError, match="not a JSON network file"):
        load_network(tmp_path / "bad.json")
    path = write_tiny_network(tmp_path)
    (tmp_path / "tiny.npz").unlink()
    with pytest.raises(NetworkFileError, match="array file .*tiny.npz not found"):
        load_network(path)


def test_command_line_reports_a_bad_file_in_one_line_with_exit_code_2(tmp_path):
    path = write_tiny_network(tmp_path, overrides={"conv0.thresholds": None})
    run = subprocess.run([sys.executable, "-m", "gen", "report", "--model", str(path)],
                         capture_output=True, text=True)
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and "conv0" in run.stderr and str(path) in run.stderr
