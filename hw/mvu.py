"""The matrix-vector unit: XNOR-popcount (or signed sum), accumulation and thresholds."""
import numpy as np
from amaranth import Cat, Const, Module, Mux, Shape, Signal, Value, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.stream import lanes_signature, table_lookup


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


# Adder levels between pipeline registers in the sum tree (the accumulator's add counting as one).
LEVELS_PER_STAGE = 2

# Shapes (words, bits) of an 18 Kb block RAM: the ECP5's DP16KD and UltraScale+'s RAMB18 alike.
BLOCK_RAM_SHAPES = ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36))


def weight_bank_words(width, depth):
    """Words per bank of a weight memory ``width`` bits wide, or ``None`` for a single bank.

    A memory deeper than one block RAM's column holds is split into banks that deep, each read
    into its own register before a multiplexer picks one: left to Yosys, the cascaded block RAMs
    of a deep memory feed a multiplexer straight from their slow outputs (FINN's fold of CNV:
    a 18,432 x 32 memory in 33 EBRs ran at 87 MHz on the ECP5).
    """
    words = max(words for words, bits in BLOCK_RAM_SHAPES if bits >= min(width, 36))
    return words if depth > words else None


def _tree_depth(count):
    """Adder levels of a balanced tree summing ``count`` terms."""
    return (count - 1).bit_length()


def _sum_tree(terms, register=None, levels=0):
    """The sum of ``terms`` through a balanced tree of adders, so widths grow logarithmically.

    With ``register``, the sums after every level ``l < levels`` with ``levels - l`` a multiple
    of ``LEVELS_PER_STAGE`` pass through it: the tree ends ``levels - depth`` levels before a
    register, so stages are counted back from there and the first one is the shortest.
    """
    level = 0
    while len(terms) > 1:
        terms = [a + b for a, b in zip(terms[0::2], terms[1::2])] + terms[len(terms) // 2 * 2:]
        level += 1
        if register and level < levels and (levels - level) % LEVELS_PER_STAGE == 0:
            terms = [register(t) for t in terms]
    return terms[0]


def sum_tree_levels(simd, mw):
    """Adder levels of a unit's sum tree taking ``simd`` of ``mw`` inputs per step, the
    accumulator's add counting as one when a vector takes more than one step."""
    return _tree_depth(simd) + (mw > simd)


class _LaneSums:
    """One place of a sum tree in every lane, standing in for a value in ``_sum_tree``: its
    width (a sum is one bit wider than the wider of its operands, as in Amaranth) and, per lane,
    a key for what it adds up. Each sum records its bits times the number of different keys in
    ``adders``: the adders synthesis builds, one for all the lanes that add up the same."""

    def __init__(self, bits, keys, adders):
        self.bits, self.keys, self.adders = bits, keys, adders

    def distinct_bits(self):
        return self.bits * len(np.unique(self.keys))

    def __add__(self, other):
        key = self.keys * np.uint64(0x9E3779B97F4A7C15) + other.keys
        total = _LaneSums(max(self.bits, other.bits) + 1, key ^ (key >> np.uint64(29)),
                          self.adders)
        self.adders.append(total.distinct_bits())
        return total


def sum_tree_bits(simd, mw, term_bits, lane_weights=None):
    """``(adder bits, register bits)`` of the sum trees ``MatrixVectorUnit`` builds, summing
    ``simd`` terms of ``term_bits`` bits per step with ``mw`` inputs per output: the output
    bits of every adder and of every pipeline register. Without ``lane_weights``, of one
    lane's tree. With them (a row of ``simd`` constant weights per lane), of all the lanes',
    a sum of the same inputs under the same weights counted once: synthesis builds it once."""
    keys = (np.zeros((1, simd), np.uint64) if lane_weights is None
            else np.asarray(lane_weights, np.uint64) + np.uint64(1))
    adders, registers = [], []

    def register(term):
        registers.append(term.distinct_bits())
        return term
    _sum_tree([_LaneSums(term_bits, keys[:, k], adders) for k in range(simd)], register,
              sum_tree_levels(simd, mw))
    return sum(adders), sum(registers)


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
    ``latency`` cycles after its last input word was taken, and the following ones every
    ``MW/simd`` cycles. Input words are taken only while word ``nf = 0`` is computed; the others
    replay a buffered copy of the vector, with ``i.ready`` low.

    ``latency = R + 3 + max(D - 1, 0) // LEVELS_PER_STAGE`` (an instance attribute), where
    ``D = ceil(log2(simd)) + (1 if MW > simd else 0)`` counts the adder levels of a step's sum
    tree and of the accumulator, with a register after every ``LEVELS_PER_STAGE`` of them;
    ``R`` is 2 (the memories' read ports and a register after them), 3 where the weight memory
    is split into banks (``weight_bank_words``: a register per bank before the multiplexer), or
    1 for a fully unrolled unit (``pe == MH`` and ``simd == MW``), whose weights are logic
    rather than a memory; the accumulator, the compared (or offset) sums and the output register
    make the 3.
    """

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

        # The hardware sums unsigned or signed terms into `raw`, and acc = scale*raw + offset:
        # binary terms are XNOR(x, w) (acc = 2*raw - MW); ternary ones 1 + (w ? x : -x), 0..2
        # (acc = raw - MW); signed ones w ? x : ~x = -x - 1 (acc = raw + zeros of the channel).
        self.binary = in_shape == unsigned(1)
        self.ternary = in_shape == unsigned(2)
        if self.binary or self.ternary:
            bound = mw
            self._scale, offset = (2 if self.binary else 1), np.full(mh, -mw)
            self._raw_range = range((1 if self.binary else 2) * mw + 1)
        else:
            half = 2 ** (in_shape.width - 1)
            bound = mw * half
            self._scale, offset = 1, mw - weights.sum(axis=1)
            self._raw_range = range(-bound, mw * (half - 1) + 1)
        self._offset = offset
        if thresholds is None:
            self.out_shape = Shape.cast(range(-bound, bound + 1))
        else:
            self.out_shape = Shape.cast(range(thresholds.shape[1] + 1))
            # acc <= t  <=>  not (acc >= t + 1), so the hardware only compares with >= and flips
            # the result of descending channels: scale*raw + offset >= u  <=>  raw >= operand.
            # Operands beyond the reachable raw sums are clipped to decided ones.
            flip = direction < 0
            operands = -((offset[:, None] - thresholds - flip[:, None]) // self._scale)
            self._operands = np.clip(operands, self._raw_range.start, self._raw_range.stop)
            self._flip = flip

        # An EBR's data comes late in the cycle (5.8 ns after the clock on the ECP5), so memory
        # weights pass through one more register before any logic, and banked ones through a
        # register per bank before the multiplexer as well.
        self._baked = mh == self.pe and mw == self.simd
        self._bank_words = None if self._baked else weight_bank_words(
            self.pe * self.simd, (mh // self.pe) * (mw // self.simd))
        self._tree_levels = sum_tree_levels(self.simd, mw)
        self._read_registers = 1 if self._baked else 2 if self._bank_words is None else 3
        self.latency = (self._read_registers + 3
                        + max(self._tree_levels - 1, 0) // LEVELS_PER_STAGE)

        super().__init__({"i": In(lanes_signature(in_shape, self.simd)),
                          "o": Out(lanes_signature(self.out_shape, self.pe))})

    @property
    def cycles_per_vector(self):
        """Clock cycles per input vector at full rate: (MH/pe) * (MW/simd)."""
        return (self.mh // self.pe) * (self.mw // self.simd)

    def elaborate(self, platform):
        # Stage 0 counts (nf, sf) and addresses the memories; stage 1 has their data (registered
        # once more unless the weights are logic), which a pipelined adder tree sums into the
        # accumulators; the stage after holds finished sums, compared with per-channel
        # constants (read a stage ahead at the accumulating stage's nf, and registered) into a
        # register of passed thresholds that the output register counts. The input buffer's read
        # port is transparent to its write port: while nf = 0 the word written from `i` comes
        # straight back out, so fresh and replayed words take the same path (with one output
        # word per vector a register takes its place). Every register and read port moves only on
        # `advance`, so a blocked output freezes the whole pipeline. `advance` fans out to every
        # one of them, so it comes from a register: a word the output register holds when `o`
        # is not ready goes into a skid register, and the pipeline stops while that is full.
        m = Module()
        pe, simd, mw = self.pe, self.simd, self.mw
        nf_count, sf_count = self.mh // pe, mw // simd

        advance = Signal()
        step = Signal()
        nf = Signal(range(nf_count))
        sf = Signal(range(sf_count))
        out_valid, skid_valid = Signal(), Signal()
        out_payload, skid_payload = (Signal.like(self.o.payload, name=name)
                                     for name in ("out_payload", "skid_payload"))
        m.d.comb += [
            advance.eq(~skid_valid),
            self.o.valid.eq(out_valid | skid_valid),
            self.o.payload.eq(Mux(skid_valid, skid_payload, out_payload)),
            self.i.ready.eq(advance & (nf == 0)),
            step.eq(advance & ((nf != 0) | self.i.valid)),
        ]
        with m.If(step):
            m.d.sync += sf.eq(Mux(sf == sf_count - 1, 0, sf + 1))
            with m.If(sf == sf_count - 1):
                m.d.sync += nf.eq(Mux(nf == nf_count - 1, 0, nf + 1))

        registers = 0

        def register(value, stages=1):
            nonlocal registers
            for _ in range(stages):
                registers += 1
                value, previous = Signal(value.shape(), name=f"pipe{registers}"), value
                with m.If(advance):
                    m.d.sync += value.eq(previous)
            return value

        w = self.weights.reshape(nf_count, pe, sf_count, simd).transpose(0, 2, 1, 3)
        if self._baked:
            bits = w.reshape(-1).tolist()
        else:
            words = nf_count * sf_count
            init = [int("".join(map(str, b[::-1])), 2) for b in w.reshape(-1, pe * simd)]
            address = Signal(range(words))
            with m.If(step):
                m.d.sync += address.eq(Mux(address == words - 1, 0, address + 1))
            bank_words = self._bank_words or words
            offset_bits = (bank_words - 1).bit_length()  # all of `address` if one bank
            banks = []
            for bank, start in enumerate(range(0, words, bank_words)):
                m.submodules[f"weight_mem{bank}" if self._bank_words else "weight_mem"] = memory = \
                    Memory(shape=unsigned(pe * simd), depth=min(bank_words, words - start),
                           init=init[start:start + bank_words])
                weight_read = memory.read_port()
                m.d.comb += [weight_read.en.eq(advance),
                             weight_read.addr.eq(address[:offset_bits])]
                banks.append(weight_read.data)
            if self._bank_words:
                bits = table_lookup([register(data) for data in banks],
                                    register(address[offset_bits:], 2))
            else:
                bits = banks[0]

        if nf_count == 1:
            x = register(self.i.payload)
        else:
            m.submodules.buffer = buffer = Memory(
                shape=self.i.payload.shape(), depth=sf_count, init=[])
            buffer_write = buffer.write_port()
            buffer_read = buffer.read_port(transparent_for=[buffer_write])
            m.d.comb += [
                buffer_write.en.eq(self.i.valid & self.i.ready),
                buffer_write.addr.eq(sf),
                buffer_write.data.eq(self.i.payload),
                buffer_read.en.eq(advance),
                buffer_read.addr.eq(sf),
            ]
            x = buffer_read.data
        if not self._baked:
            x, bits = register(x, self._read_registers - 1), register(bits)

        def terms(p):
            """The ``simd`` terms lane ``p`` sums this step. Binary ones are the bits of one wide
            XNOR of ``x`` with the weights (an XOR with their complement where the weights are
            constants), not a multiplexer per term: a smaller netlist, generated faster."""
            weights = bits[p * simd:(p + 1) * simd]
            if self.binary:
                flat = Value.cast(x)
                word = Signal(simd, name=f"xnor{p}")  # a signal: each bit then costs a slice
                m.d.comb += word.eq(
                    flat ^ Const(sum((1 - b) << k for k, b in enumerate(weights)), simd)
                    if self._baked else ~(flat ^ weights))
                return list(word)
            if self.ternary:  # bit 0 set: zero; else bit 1 is the sign
                return [Cat(x[k][0], ~x[k][0] & Mux(b, x[k][1], ~x[k][1]))
                        for k, b in enumerate(weights)]
            return [Mux(b, x[k], ~x[k]) for k, b in enumerate(weights)]

        levels = self._tree_levels
        stages = self.latency - 3  # from the counters to the accumulating stage
        valid, first, last = (register(v, stages) for v in (step, sf == 0, sf == sf_count - 1))
        nf_read = register(nf, stages - 1)  # one stage early: the constants are registered
        acc = [Signal(Shape.cast(self._raw_range), name=f"acc{p}") for p in range(pe)]
        for p in range(pe):
            added = _sum_tree(terms(p), register, levels)
            with m.If(advance & valid):
                m.d.sync += acc[p].eq(Mux(first, 0, acc[p]) + added)
        finished = register(valid & last, 2)
        with m.If(advance):
            m.d.sync += out_valid.eq(finished)
        with m.If(~skid_valid & out_valid & ~self.o.ready):
            m.d.sync += [skid_valid.eq(1), skid_payload.eq(out_payload)]
        with m.Elif(self.o.ready):
            m.d.sync += skid_valid.eq(0)

        # Per-channel constants at the finishing stage: thresholds, or offsets of signed scores.
        if self.thresholds is not None:
            fields = {"operands": self._operands, "flip": self._flip.astype(int)}
        elif not (self.binary or self.ternary):
            fields = {"offset": self._offset}
        else:
            fields = {}
        lanes = [{name: values.reshape(nf_count, pe, -1)[0, p].tolist()
                  for name, values in fields.items()} for p in range(pe)]
        if fields and nf_count > 1:
            raw_shape = Shape.cast(range(self._raw_range.start, self._raw_range.stop + 1))
            layout = data.ArrayLayout(data.StructLayout({
                name: data.ArrayLayout(raw_shape if name != "flip" else unsigned(1),
                                       values.reshape(self.mh, -1).shape[1])
                for name, values in fields.items()}), pe)
            m.submodules.channel_mem = channel_mem = Memory(
                shape=layout, depth=nf_count,
                init=[[{name: values.reshape(nf_count, pe, -1)[n, p].tolist()
                        for name, values in fields.items()} for p in range(pe)]
                      for n in range(nf_count)])
            channel_read = channel_mem.read_port()
            m.d.comb += [channel_read.en.eq(advance), channel_read.addr.eq(nf_read)]
            lanes = register(channel_read.data)

        # The finishing stage compares (or offsets) into a register; the output register sums.
        # acc >= t is the sign of acc - t one bit wider than both, so that it cannot overflow:
        # one carry chain, where Yosys maps a signed >= to two and a multiplexer.
        def at_least(a, t):
            return ~(a - t)[-1]

        if self.thresholds is not None:
            passed = [register(Cat(at_least(acc[p], lanes[p]["operands"][j]) ^ lanes[p]["flip"][0]
                                   for j in range(self.thresholds.shape[1]))) for p in range(pe)]
            results = [_sum_tree(list(lane)) for lane in passed]
        elif fields:
            results = [register(acc[p] + lanes[p]["offset"][0]) for p in range(pe)]
        else:
            results = [register(self._scale * a - mw) for a in acc]
        with m.If(advance):
            m.d.sync += [out_payload[p].eq(r) for p, r in enumerate(results)]
        return m
