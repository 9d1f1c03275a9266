# amaranth: UnusedElaboratable=no
"""hw.mvu.MatrixVectorUnit: outputs against numpy under stalls, full-rate timing, refusals."""
from typing import NamedTuple

import numpy as np
import pytest
from amaranth import Signal, signed, unsigned

from hw.mvu import MatrixVectorUnit, _sum_tree, sum_tree_bits, sum_tree_levels
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


@pytest.mark.parametrize("simd, mw, term_shape", [
    (1, 1, unsigned(1)), (2, 4, unsigned(1)), (27, 27, signed(8)), (48, 144, unsigned(1)),
    (144, 144, unsigned(2)), (3, 27, signed(8)), (576, 576, unsigned(1))])
def test_sum_tree_bits_are_the_widths_of_the_adders_and_registers_built(simd, mw, term_shape):
    """What the resource model counts equals the adders and registers the unit's tree builds."""
    adders, registered = [], []

    class Counted:
        def __init__(self, value):
            self.value = value

        def __add__(self, other):
            total = self.value + other.value
            adders.append(len(total))
            return Counted(total)

    def register(term):
        registered.append(len(term.value))
        return term
    _sum_tree([Counted(Signal(term_shape)) for _ in range(simd)], register,
              sum_tree_levels(simd, mw))
    assert sum_tree_bits(simd, mw, term_shape.width) == (sum(adders), sum(registered))


class _Sum:
    """A sum in a lane's tree for ``_sum_tree``: its width and what it adds up, by name."""

    def __init__(self, bits, name, operands=()):
        self.bits, self.name, self.operands = bits, name, operands

    def __add__(self, other):
        return _Sum(max(self.bits, other.bits) + 1, ("+", self.name, other.name), (self, other))

    def registered(self):
        return _Sum(self.bits, ("register", self.name), (self,))


def shared_sum_tree_bits(simd, mw, term_bits, lane_weights):
    """Adder and register bits of the lanes' trees, built one lane at a time and the same sums
    (by what they add up) counted once."""
    built, nodes = {}, [_sum_tree([_Sum(term_bits, (k, w)) for k, w in enumerate(row)],
                                  _Sum.registered, sum_tree_levels(simd, mw))
                        for row in lane_weights]
    while nodes:
        node = nodes.pop()
        if node.operands and node.name not in built:
            built[node.name] = node.bits
            nodes.extend(node.operands)
    return tuple(sum(bits for name, bits in built.items() if name[0] == kind)
                 for kind in ("+", "register"))


def test_lanes_with_the_same_constant_weights_share_their_sums():
    one_lane = sum_tree_bits(8, 8, 8)
    assert sum_tree_bits(8, 8, 8, [[1, 0, 1, 1, 0, 0, 1, 0]] * 3) == one_lane
    # the second lane differs in the last input only: it shares the sums of the first six
    adders, registers = sum_tree_bits(8, 8, 8, [[1] * 8, [1] * 7 + [0]])
    assert one_lane[0] < adders < 2 * one_lane[0] and one_lane[1] < registers


@pytest.mark.parametrize("lanes, simd, mw, term_bits", [(16, 27, 27, 8), (64, 27, 27, 8),
                                                        (12, 144, 144, 2), (5, 7, 7, 8)])
def test_shared_sums_are_counted_as_building_each_lane_and_merging_equal_sums(lanes, simd, mw,
                                                                              term_bits):
    weights = np.random.default_rng(simd).integers(0, 2, (lanes, simd))
    assert sum_tree_bits(simd, mw, term_bits, weights) == shared_sum_tree_bits(
        simd, mw, term_bits, weights)
