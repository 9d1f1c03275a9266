"""Network files back into trainable models (``model.from_network``): exact round trips, errors."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("brevitas")

from gen.networks import cifar_input_table, random_network   # noqa: E402
from model.export import build_network, check_against_torch  # noqa: E402
from model.from_network import NetworkImportError, arch_of, load_network_into  # noqa: E402
from model.methods import get_method                          # noqa: E402
from model.nets import build_model                            # noqa: E402

CNV_SMALL = [("conv", 16, 3, 0), ("conv", 16, 3, 0), ("pool", 2),
             ("conv", 32, 3, 0), ("conv", 32, 3, 0), ("pool", 2),
             ("conv", 64, 3, 0), ("conv", 64, 3, 0), ("dense", 128), ("dense", 128), ("dense", 10)]
SFC = [("dense", 256)] * 3 + [("dense", 10)]


def _network(specs, shape, seed, ternary=False):
    thresholded = [i for i, spec in enumerate(specs[:-1]) if spec[0] != "pool"] if ternary else ()
    return random_network("random", shape, specs, table=cifar_input_table(), seed=seed, ternary=thresholded)


def _images(shape, count=64, seed=1):
    return np.random.default_rng(seed).integers(0, 256, (count,) + shape, dtype=np.uint8)


@pytest.mark.parametrize("specs, shape, method, seed", [
    (CNV_SMALL, (32, 32, 3), "ste", 0),
    (CNV_SMALL, (32, 32, 3), "ste", 1),
    (CNV_SMALL, (32, 32, 3), "xnor", 2),
    (CNV_SMALL, (32, 32, 3), "ubq", 3),
    (CNV_SMALL, (32, 32, 3), "dualpath", 4),
    (SFC, (28, 28, 1), "ste", 5),
    (SFC, (28, 28, 1), "dualpath", 6),
])
def test_the_model_exports_the_file_back_and_computes_it(specs, shape, method, seed):
    net = _network(specs, shape, seed, ternary=method == "dualpath")
    arch = arch_of(net)
    assert arch == ("cnv-small" if specs is CNV_SMALL else "sfc")
    model = build_model(arch, shape, 10)
    get_method(method).prepare(model)
    load_network_into(model, net, _images(shape))
    rebuilt, facts = build_network(model)
    for ours, theirs in zip(rebuilt.compute_layers, net.compute_layers):
        assert np.array_equal(ours.weights, theirs.weights)
        if theirs.output == "threshold":
            assert np.array_equal(np.sort(ours.thresholds, axis=1), np.sort(theirs.thresholds, axis=1))
            assert np.array_equal(ours.direction, np.ones(theirs.out_channels))
    # PyTorch (eval mode) and the golden executor agree on every accumulation and output bit of
    # images it was not calibrated on
    report, _, _ = check_against_torch(model, rebuilt, facts, _images(shape, seed=seed + 10))
    assert report["agree"] == report["images"] and report["acc_mismatches"] == 0
    assert report["bit_mismatches"] == 0 and report["exact_ties"] == 0


def test_negative_directions_and_constant_channels_come_back():
    net = _network(SFC, (28, 28, 1), seed=7)
    layer = net.compute_layers[1]
    layer.direction = np.where(np.arange(layer.out_channels) % 2, -1, 1)
    layer.thresholds[:4, 0] = [-layer.mw - 1, layer.mw + 1, -layer.mw - 1, layer.mw + 1]
    model = build_model("sfc", (28, 28, 1), 10)
    load_network_into(model, net, _images((28, 28, 1)))
    rebuilt, _ = build_network(model)
    assert np.array_equal(rebuilt.compute_layers[1].direction, layer.direction)
    assert np.array_equal(rebuilt.compute_layers[1].thresholds, layer.thresholds)


def test_training_mode_on_the_calibration_batch_is_the_network():
    # batch norm in training mode normalizes with the batch's statistics: on the calibration
    # images themselves those are the running statistics, so both modes give the network's scores
    net = _network(CNV_SMALL, (32, 32, 3), seed=8)
    model = build_model("cnv-small", (32, 32, 3), 10)
    images = _images((32, 32, 3), count=128)
    load_network_into(model, net, images)
    from model.quant import pixels_to_input
    with torch.no_grad():
        evaluated = model.eval()(pixels_to_input(images))
        trained = model.train()(pixels_to_input(images))
    # (scores, not classes: integer scores can tie, and a tie's float rounding picks either class)
    assert torch.allclose(evaluated, trained, atol=1e-4)


def test_a_network_that_does_not_fit_is_refused_in_one_line():
    ternary = _network(SFC, (28, 28, 1), seed=0, ternary=True)
    model = build_model("sfc", (28, 28, 1), 10)
    with pytest.raises(NetworkImportError, match=r"net.json: layer dense0: 2 threshold\(s\) per channel, "
                                                 r"the model's sign activation needs 1 \(--method dualpath"):
        load_network_into(model, ternary, _images((28, 28, 1)), where="net.json")
    with pytest.raises(NetworkImportError, match=r"net.json is not a lfc network: layer 0 is dense 256, "
                                                 r"the model's dense 1024"):
        load_network_into(build_model("lfc", (28, 28, 1), 10), ternary, _images((28, 28, 1)),
                          where="net.json")
    int8_input = random_network("int8", (28, 28, 1), SFC)
    with pytest.raises(NetworkImportError, match="input is not the 8-bit pixel table"):
        load_network_into(build_model("sfc", (28, 28, 1), 10), int8_input, _images((28, 28, 1)))
    with pytest.raises(NetworkImportError, match="no architecture of model.nets has its layers; accepted: "):
        arch_of(_network(SFC[1:], (28, 28, 1), seed=0))
