# amaranth: UnusedElaboratable=no
"""hw.mvu.MatrixVectorUnit: outputs against numpy under stalls, full-rate timing, refusals."""
from typing import NamedTuple

import numpy as np
import pytest
from amaranth import signed, unsigned

from hw.mvu import MatrixVectorUnit
from sim.runner import component_verilog, run_cocotb
from sim.tb.mvu_tb import reference


class Config(NamedTuple):
    mh: int
    mw: int
    pe: int
    simd: int
    in_shape: object
    t: int | None              # thresholds per channel; None: scores
    mixed_directions: bool
    valid_probability: float
    ready_probability: float


CONFIGS = {
    "binary-T1": Config(8, 16, 2, 4, unsigned(1), 1, False, 0.7, 0.5),
    "binary-scores-odd-sizes": Config(6, 27, 3, 9, unsigned(1), None, False, 0.5, 0.8),
    "int8-T1-mixed": Config(8, 12, 2, 3, signed(8), 1, True, 0.6, 0.6),
    "int8-scores-pe1-simd-mw": Config(4, 9, 1, 9, signed(8), None, False, 0.8, 0.5),
    "binary-T3-mixed-pe1-simd1": Config(3, 5, 1, 1, unsigned(1), 3, True, 0.5, 0.7),
    "binary-T2-fully-parallel": Config(4, 7, 4, 7, unsigned(1), 2, True, 0.6, 0.5),
    "int3-T2-mixed-pe-mh-simd1": Config(5, 6, 5, 1, signed(3), 2, True, 0.7, 0.6),
    "ternary-T2-mixed": Config(6, 20, 3, 5, unsigned(2), 2, True, 0.6, 0.6),
    # Deep sum trees: several pipeline stages between the memories and the accumulators.
    "binary-T2-mixed-simd64": Config(8, 128, 2, 64, unsigned(1), 2, True, 0.7, 0.6),
    "int8-T2-mixed-simd27": Config(8, 54, 4, 27, signed(8), 2, True, 0.6, 0.7),
    "ternary-scores-simd32": Config(4, 64, 2, 32, unsigned(2), None, False, 0.7, 0.6),
    # Weights in three banks of 512 words (hw.mvu.weight_bank_words), with a tail bank.
    "binary-T2-mixed-banked": Config(12, 3600, 3, 12, unsigned(1), 2, True, 0.8, 0.7),
    # Fully unrolled: weights and thresholds in logic.
    "binary-T2-mixed-unrolled-simd256": Config(4, 256, 4, 256, unsigned(1), 2, True, 0.6, 0.6),
    "int8-scores-unrolled": Config(3, 27, 3, 27, signed(8), None, False, 0.6, 0.7),
}


def _data(config, seed, count):
    """Weights, thresholds, directions and ``count`` input vectors for ``config``.

    Half the vectors repeat a pool of four and most thresholds are scores of the pool, so exact
    ties ``acc == threshold`` are frequent; others lie one off or beyond the reachable range.
    Everything but the vectors is independent of ``count``, so runs of one seed share a build.
    """
    rng = np.random.default_rng(seed)
    binary, ternary = config.in_shape == unsigned(1), config.in_shape == unsigned(2)
    kind = {"binary": binary, "ternary": ternary}
    weights = rng.integers(0, 2, (config.mh, config.mw))
    half = 1 if binary else 2 ** (config.in_shape.width - 1)
    low, high, bound = ((0, 2, config.mw) if binary else (0, 3, config.mw) if ternary
                        else (-half, half, config.mw * half))
    pool = rng.integers(low, high, (4, config.mw))
    thresholds = direction = None
    if config.t is not None:
        shape = (config.mh, config.t)
        reached = reference(weights, pool, **kind)[rng.integers(4, size=shape),
                                                   np.arange(config.mh)[:, None]]
        beyond = rng.choice([-1, 1], shape) * (bound + rng.choice([0, 1, 2, 10**9], shape))
        thresholds = np.where(rng.random(shape) < 0.15, beyond,
                              reached + rng.choice([-1, 0, 0, 0, 1], shape))
        thresholds[0, 0], thresholds[-1, -1] = -bound - 1, 10**9
        if config.mixed_directions:
            direction = rng.permutation(np.resize([1, -1], config.mh))
    vectors = rng.integers(low, high, (count, config.mw))
    vectors[::2] = pool[rng.integers(4, size=(count + 1) // 2)]
    if thresholds is not None:
        ties = reference(weights, vectors, **kind)[:, :, None] == thresholds
        assert ties.sum() >= count // 4, "too few ties to test"
    return weights, thresholds, direction, vectors


def _simulate(config, *, seed, count, valid_probability, ready_probability, check_timing):
    weights, thresholds, direction, vectors = _data(config, seed, count)
    unit = MatrixVectorUnit(weights=weights, thresholds=thresholds, direction=direction,
                            pe=config.pe, simd=config.simd, in_shape=config.in_shape)
    arrays = {"weights": weights, "thresholds": thresholds, "direction": direction,
              "vectors": vectors}
    params = {key: None if a is None else a.tolist() for key, a in arrays.items()}
    params.update(seed=seed, pe=config.pe, simd=config.simd, binary=config.in_shape == unsigned(1),
                  ternary=config.in_shape == unsigned(2), in_width=config.in_shape.width,
                  out_width=unit.out_shape.width, out_signed=unit.out_shape.signed, valid_probability=valid_probability,
                  ready_probability=ready_probability, check_timing=check_timing,
                  latency=unit.latency)
    run_cocotb(verilog_text=component_verilog(unit, "mvu"), toplevel="mvu",
               test_module="sim.tb.mvu_tb", params=params)


@pytest.mark.parametrize("name", CONFIGS)
def test_mvu_matches_reference_under_stalls(name):
    config = CONFIGS[name]
    _simulate(config, seed=1, count=150, valid_probability=config.valid_probability,
              ready_probability=config.ready_probability, check_timing=False)


@pytest.mark.parametrize("name", CONFIGS)
def test_mvu_takes_cycles_per_vector_at_full_rate(name):
    # The same seed as under stalls gives the same unit, so the Verilator build is shared.
    _simulate(CONFIGS[name], seed=1, count=40, valid_probability=1.0, ready_probability=1.0,
              check_timing=True)


def test_mvu_shapes_and_cycles():
    w = np.zeros((6, 27), int)
    unit = MatrixVectorUnit(weights=w, pe=3, simd=9)
    assert (unit.mh, unit.mw, unit.pe, unit.simd) == (6, 27, 3, 9)
    assert unit.in_shape == unsigned(1) and unit.out_shape == signed(6)  # ±27
    assert unit.cycles_per_vector == 6
    assert MatrixVectorUnit(weights=w, pe=1, simd=1, in_shape=signed(8)).out_shape == signed(13)
    ternary = MatrixVectorUnit(weights=w, pe=1, simd=1, in_shape=unsigned(2))
    assert ternary.ternary and not ternary.binary and ternary.out_shape == signed(6)  # ±27
    for t, shape in ((1, unsigned(1)), (2, unsigned(2)), (3, unsigned(2)), (4, unsigned(3))):
        unit = MatrixVectorUnit(weights=w, thresholds=np.zeros((6, t), int), pe=6, simd=27)
        assert unit.out_shape == shape and unit.cycles_per_vector == 1


@pytest.mark.parametrize("mw,pe,simd,latency", [
    (27, 2, 1, 5),      # one term, 27 steps: the accumulator's add only
    (6, 2, 6, 5),       # unrolled (no weight memory), 3 tree levels, no accumulation
    (6, 1, 6, 6),       # the same with weights in a memory
    (128, 2, 64, 8),    # 6 tree levels and the accumulator
    (576, 2, 576, 8),   # unrolled, 10 tree levels
    (9216, 1, 36, 8),   # 6 tree levels and the accumulator, weights in banks of 512 words
])
def test_mvu_latency_grows_with_the_sum_tree(mw, pe, simd, latency):
    unit = MatrixVectorUnit(weights=np.zeros((2, mw), int), pe=pe, simd=simd)
    assert unit.latency == latency


def test_mvu_bakes_the_weights_of_a_fully_unrolled_layer():
    w = np.eye(4, 8, dtype=int)
    thresholds = np.zeros((4, 1), int)
    unrolled = component_verilog(MatrixVectorUnit(weights=w, thresholds=thresholds, pe=4, simd=8),
                                 "mvu")
    assert "weight_mem" not in unrolled and "channel_mem" not in unrolled
    folded = component_verilog(MatrixVectorUnit(weights=w, thresholds=thresholds, pe=2, simd=8),
                               "mvu")
    assert "weight_mem" in folded and "channel_mem" in folded


W = np.ones((4, 6), int)


@pytest.mark.parametrize("kwargs,error,match", [
    ({"weights": W * 0.5}, TypeError, "weights must be an integer array"),
    ({"weights": W[0]}, ValueError, r"weights must be a 2-D array, not one of shape \(6,\)"),
    ({"weights": W[:, :0]}, ValueError, "weights must not be empty"),
    ({"weights": W * 2}, ValueError, r"weights must hold only 0 and 1, not \[2\]"),
    ({"pe": 3}, ValueError, r"pe must divide MH=4 \(one of \[1, 2, 4\]\), not 3"),
    ({"pe": 0}, ValueError, "pe must divide MH=4"),
    ({"pe": 2.0}, TypeError, "pe must be an integer, not 2.0"),
    ({"simd": 4}, ValueError, r"simd must divide MW=6 \(one of \[1, 2, 3, 6\]\), not 4"),
    ({"in_shape": unsigned(3)}, ValueError,
     r"in_shape must be unsigned\(1\) \(binary\), unsigned\(2\) \(ternary counts\) or signed\(n\)"),
    ({"in_shape": signed(9)}, ValueError, r"not signed\(9\)"),
    ({"in_shape": signed(1)}, ValueError, r"not signed\(1\)"),
    ({"in_shape": "int8"}, TypeError, "in_shape must be a shape, not 'int8'"),
    ({"thresholds": np.zeros((3, 1), int)}, ValueError, r"shape \(MH=4, T\) with T >= 1"),
    ({"thresholds": np.zeros((4, 0), int)}, ValueError, r"shape \(MH=4, T\) with T >= 1"),
    ({"thresholds": np.zeros((4, 1))}, TypeError, "thresholds must be an integer array"),
    ({"direction": [1, -1, 1, 1]}, ValueError, "direction needs thresholds"),
    ({"thresholds": np.zeros((4, 1), int), "direction": [1, 0, 1, 1]}, ValueError,
     "direction must be 4 values of"),
    ({"thresholds": np.zeros((4, 1), int), "direction": [1, -1]}, ValueError,
     "direction must be 4 values of"),
])
def test_mvu_refuses_bad_parameters(kwargs, error, match):
    with pytest.raises(error, match=match):
        MatrixVectorUnit(**{"weights": W, "pe": 2, "simd": 3, **kwargs})
