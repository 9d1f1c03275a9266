"""The matrix-vector unit: XNOR-popcount (or signed sum), accumulation and thresholds."""
import numpy as np
from amaranth import Module, Mux, Shape, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.stream import lanes_signature


def _integer_array(name, value, ndim):
    array = np.asarray(value)
    if array.dtype.kind not in "biu":
        raise TypeError(f"{name} must be an integer array, not one of dtype {array.dtype}")
    if array.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D array, not one of shape {array.shape}")
    return array.astype(np.int64)


def _divisor(name, value, total, total_name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if value < 1 or total % value:
        divisors = [d for d in range(1, total + 1) if total % d == 0]
        raise ValueError(
            f"{name} must divide {total_name}={total} (one of {divisors}), not {value!r}")
    return int(value)


def _sum_tree(terms):
    """The sum of ``terms`` through a balanced tree of adders, so widths grow logarithmically."""
    while len(terms) > 1:
        terms = [a + b for a, b in zip(terms[0::2], terms[1::2])] + terms[len(terms) // 2 * 2:]
    return terms[0]


class MatrixVectorUnit(wiring.Component):
    """Multiplies each input vector by a fixed ±1 matrix and thresholds the result.

    ``weights`` is an ``[MH, MW]`` array of bits (1 ↔ +1, 0 ↔ −1). Every ``MW`` elements on ``i``
    (``MW/simd`` words of ``simd`` lanes of ``in_shape``) form one input vector ``x``; for each one
    the unit emits ``MH/pe`` words of ``pe`` lanes on ``o``, word ``nf`` lane ``p`` being output
    channel ``c = nf*pe + p``. Its score is ``acc[c] = sum_j (w[c, j] ? x_j : -x_j)``, binary
    inputs (``in_shape=unsigned(1)``) counting as ±1, ternary ones (``in_shape=unsigned(2)``,
    counts 0, 1, 2) as −1, 0, +1 (count 3 does not occur; it would count as 0) and ``signed(n)``
    ones (2 ≤ n ≤ 8) as integers.

    Without ``thresholds`` the output element is ``acc[c]`` itself, as the smallest ``signed``
    shape that holds ``±MW*max|x|``. With an ``[MH, T]`` integer array of ``thresholds`` it is the
    number of ``t`` in ``thresholds[c]`` with ``acc[c] >= t`` (``direction[c] == +1``, the default)
    or ``acc[c] <= t`` (``direction[c] == -1``), as ``unsigned(ceil(log2(T+1)))`` (at least 1 bit).

    The unit takes one step of ``simd`` elements by ``pe`` channels per clock: a vector costs
    ``cycles_per_vector = (MH/pe) * (MW/simd)`` cycles with no bubbles between vectors when ``i``
    is always valid and ``o`` always ready. The first output word of a vector is on ``o``
    ``latency = 3`` cycles after its last input word was taken, and the following ones every
    ``MW/simd`` cycles. Input words are taken only while word ``nf = 0`` is computed; the others
    replay a buffered copy of the vector, with ``i.ready`` low.
    """

    latency = 3

    def __init__(self, *, weights, thresholds=None, direction=None, pe, simd,
                 in_shape=unsigned(1)):
        weights = _integer_array("weights", weights, 2)
        if 0 in weights.shape:
            raise ValueError(f"weights must not be empty, not of shape {weights.shape}")
        if not np.isin(weights, (0, 1)).all():
            raise ValueError(f"weights must hold only 0 and 1, not {np.unique(weights)}")
        mh, mw = weights.shape
        try:
            in_shape = Shape.cast(in_shape)
        except TypeError:
            raise TypeError(f"in_shape must be a shape, not {in_shape!r}") from None
        if in_shape not in (unsigned(1), unsigned(2)) and not (in_shape.signed
                                                              and 2 <= in_shape.width <= 8):
            raise ValueError(f"in_shape must be unsigned(1) (binary), unsigned(2) (ternary "
                             f"counts) or signed(n) with 2 <= n <= 8, not {in_shape!r}")
        self.weights, self.mh, self.mw, self.in_shape = weights, mh, mw, in_shape
        self.pe = _divisor("pe", pe, mh, "MH")
        self.simd = _divisor("simd", simd, mw, "MW")

        if thresholds is None:
            if direction is not None:
                raise ValueError(f"direction needs thresholds, not thresholds=None with "
                                 f"direction={direction!r}")
        else:
            thresholds = _integer_array("thresholds", thresholds, 2)
            if thresholds.shape[0] != mh or thresholds.shape[1] < 1:
                raise ValueError(f"thresholds must have shape (MH={mh}, T) with T >= 1, not "
                                 f"{thresholds.shape}")
            direction = _integer_array("direction", np.ones(mh, int) if direction is None
                                       else direction, 1)
            if direction.shape != (mh,) or not np.isin(direction, (1, -1)).all():
                raise ValueError(f"direction must be {mh} values of +1 or -1, not {direction}")
        self.thresholds, self.direction = thresholds, direction

        # Binary layers accumulate the popcount p of XNOR(x, w), and acc = 2*p - MW.
        self.binary = in_shape == unsigned(1)
        self.ternary = in_shape == unsigned(2)
        bound = mw * (1 if self.binary or self.ternary else 2 ** (in_shape.width - 1))
        self._acc_range = range(mw + 1) if self.binary else range(-bound, bound + 1)
        if thresholds is None:
            self.out_shape = Shape.cast(range(-bound, bound + 1))
        else:
            self.out_shape = Shape.cast(range(thresholds.shape[1] + 1))
            # acc <= t  <=>  not (acc >= t + 1), so the hardware only compares with >= and flips
            # the result of descending channels; beyond [-bound, bound + 1] it is decided anyway.
            flip = direction < 0
            operands = np.clip(thresholds + flip[:, None], -bound, bound + 1)
            # 2*p - MW >= u  <=>  p >= ceil((u + MW) / 2)
            self._operands = (operands + mw + 1) // 2 if self.binary else operands
            self._flip = flip

        super().__init__({"i": In(lanes_signature(in_shape, self.simd)),
                          "o": Out(lanes_signature(self.out_shape, self.pe))})

    @property
    def cycles_per_vector(self):
        """Clock cycles per input vector at full rate: (MH/pe) * (MW/simd)."""
        return (self.mh // self.pe) * (self.mw // self.simd)

    def elaborate(self, platform):
        # Stage 0 counts (nf, sf) and addresses the memories; stage 1 has their data and adds a
        # step to the accumulators; stage 2 holds finished sums, compared into the output
        # register with thresholds read at stage 1's nf. The input buffer's read port is
        # transparent to its write port: while nf = 0 the word written from `i` comes straight
        # back out, so fresh and replayed words take the same path. Every register and read port
        # moves only on `advance`, so a blocked output freezes the whole pipeline.
        m = Module()
        pe, simd, mw = self.pe, self.simd, self.mw
        nf_count, sf_count = self.mh // pe, mw // simd

        w = self.weights.reshape(nf_count, pe, sf_count, simd).transpose(0, 2, 1, 3)
        m.submodules.weight_mem = weight_mem = Memory(
            shape=unsigned(pe * simd), depth=nf_count * sf_count,
            init=[int("".join(map(str, bits[::-1])), 2) for bits in w.reshape(-1, pe * simd)])
        m.submodules.buffer = buffer = Memory(
            shape=self.i.payload.shape(), depth=sf_count, init=[])
        weight_read = weight_mem.read_port()
        buffer_write = buffer.write_port()
        buffer_read = buffer.read_port(transparent_for=[buffer_write])

        advance = Signal()
        step = Signal()
        nf = Signal(range(nf_count))
        sf = Signal(range(sf_count))
        m.d.comb += [
            advance.eq(~self.o.valid | self.o.ready),
            self.i.ready.eq(advance & (nf == 0)),
            step.eq(advance & ((nf != 0) | self.i.valid)),
            weight_read.en.eq(advance),
            weight_read.addr.eq(nf * sf_count + sf),
            buffer_write.en.eq(self.i.valid & self.i.ready),
            buffer_write.addr.eq(sf),
            buffer_write.data.eq(self.i.payload),
            buffer_read.en.eq(advance),
            buffer_read.addr.eq(sf),
        ]
        with m.If(step):
            m.d.sync += sf.eq(Mux(sf == sf_count - 1, 0, sf + 1))
            with m.If(sf == sf_count - 1):
                m.d.sync += nf.eq(Mux(nf == nf_count - 1, 0, nf + 1))

        valid1 = Signal()
        nf1 = Signal(range(nf_count))
        sf1 = Signal(range(sf_count))
        valid2 = Signal()
        acc = [Signal(Shape.cast(self._acc_range), name=f"acc{p}") for p in range(pe)]
        with m.If(advance):
            m.d.sync += [valid1.eq(step), nf1.eq(nf), sf1.eq(sf),
                         valid2.eq(valid1 & (sf1 == sf_count - 1)),
                         self.o.valid.eq(valid2)]
        x = buffer_read.data
        for p in range(pe):
            bits = weight_read.data[p * simd:(p + 1) * simd]
            if self.binary:
                added = _sum_tree([~(x[k] ^ bits[k]) for k in range(simd)])
            elif self.ternary:
                # Count 0 is -1 (0b00), 1 is 0 (0b01), 2 is +1 (0b10): bit 0 clear marks a
                # nonzero value and bit 1 its sign, so a step adds
                # 2*popcount(nonzero & XNOR(sign, w)) - popcount(nonzero).
                nonzero = [~x[k][0] for k in range(simd)]
                agree = [nonzero[k] & ~(x[k][1] ^ bits[k]) for k in range(simd)]
                added = 2 * _sum_tree(agree) - _sum_tree(nonzero)
            else:
                added = _sum_tree([Mux(bits[k], x[k], -x[k]) for k in range(simd)])
            with m.If(advance & valid1):
                m.d.sync += acc[p].eq(Mux(sf1 == 0, 0, acc[p]) + added)

        if self.thresholds is None:
            results = [2 * a - mw if self.binary else a for a in acc]
        else:
            t = self.thresholds.shape[1]
            operand_shape = Shape.cast(range(self._acc_range.start, self._acc_range.stop + 1))
            layout = data.ArrayLayout(data.StructLayout({
                "operands": data.ArrayLayout(operand_shape, t), "flip": unsigned(1)}), pe)
            operands = self._operands.reshape(nf_count, pe, t)
            flip = self._flip.reshape(nf_count, pe)
            m.submodules.threshold_mem = threshold_mem = Memory(
                shape=layout, depth=nf_count,
                init=[[{"operands": operands[n, p].tolist(), "flip": int(flip[n, p])}
                       for p in range(pe)] for n in range(nf_count)])
            threshold_read = threshold_mem.read_port()
            m.d.comb += [threshold_read.en.eq(advance), threshold_read.addr.eq(nf1)]
            lanes = threshold_read.data
            results = [_sum_tree([(acc[p] >= lanes[p].operands[j]) ^ lanes[p].flip
                                  for j in range(t)]) for p in range(pe)]
        with m.If(advance):
            m.d.sync += [self.o.payload[p].eq(r) for p, r in enumerate(results)]
        return m
