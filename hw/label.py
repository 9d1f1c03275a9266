"""Top-k label selection: the indices of a frame's highest class scores."""
from amaranth import Module, Mux, Shape, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.stream import check_count, check_shape, lanes_signature


class LabelSelect(wiring.Component):
    """Emits, per frame of ``classes`` scores, the indices of the ``top_k`` highest, best first.

    A frame is ``classes // lanes`` words on ``i``; word ``w`` lane ``l`` is the score of class
    ``w*lanes + l``. ``o`` carries one word per frame whose lane ``j`` is the class of the
    ``j``-th best score; equal scores rank the lower class first, as
    ``np.argsort(-scores, kind="stable")[:top_k]`` does. Scores are ``elem_shape`` integers
    (normally ``signed(B)``); class indices are ``unsigned(max(1, ceil(log2(classes))))``.

    One score is examined per cycle, so a word is taken every ``lanes`` cycles and a frame takes
    ``classes`` cycles. The result is on ``o`` the cycle after the frame's last word is taken;
    while it waits there, the next frame proceeds up to its own last score.
    """

    def __init__(self, *, classes, lanes, elem_shape, top_k=1):
        self.classes = check_count("classes", classes)
        self.lanes = check_count("lanes", lanes)
        if classes % lanes:
            raise ValueError(f"lanes must divide classes = {classes}, not {lanes!r}")
        self.elem_shape = check_shape("elem_shape", elem_shape, integer=True)
        self.top_k = check_count("top_k", top_k)
        if top_k > classes:
            raise ValueError(f"top_k must be at most classes = {classes}, not {top_k!r}")
        self.index_shape = unsigned(max(1, (classes - 1).bit_length()))
        super().__init__({"i": In(lanes_signature(elem_shape, lanes)),
                          "o": Out(lanes_signature(self.index_shape, top_k))})

    def elaborate(self, platform):
        # Scores are read from i.payload, one lane per cycle: i.ready rises only on a word's
        # last lane, and a stream source holds its payload until then.
        # The k best (score, class) entries are kept sorted, best first. A new score goes in
        # front of every entry it strictly beats (classes arrive in increasing order, so a tie
        # keeps the earlier, lower class ahead) and those entries move down one place; since the
        # beaten entries are a suffix, entry j takes entry j-1 if that was beaten, else the new
        # score if entry j was beaten. An empty entry holds a score one below elem_shape's
        # minimum (one extra bit), which every score beats; the entries are emptied as a
        # frame's result moves to the output register.
        m = Module()
        width = Shape.cast(self.elem_shape).width
        empty = -(1 << (width - 1)) - 1 if self.elem_shape.signed else -1
        lane = Signal(range(self.lanes))
        cls = Signal(range(self.classes))
        score = Signal(signed(width + 1))
        if self.lanes == 1:
            m.d.comb += score.eq(self.i.payload[0])
        else:
            # Lane 0 straight from the word; lane l > 0 from a register loaded with it on the
            # step before (a word is held until its last lane), so no lane multiplexer sits
            # before the comparators.
            next_lane = Signal(signed(width + 1))
            first_lane = Signal(init=1)  # lane == 0, as a register
            m.d.comb += score.eq(Mux(first_lane, self.i.payload[0], next_lane))
        scores = [Signal(signed(width + 1), init=empty, name=f"score{j}")
                  for j in range(self.top_k)]
        labels = [Signal(self.index_shape, name=f"label{j}") for j in range(self.top_k)]

        beaten = [score > s for s in scores]
        new_scores, new_labels = [], []
        for j in range(self.top_k):
            new_score = Mux(beaten[j], score, scores[j])
            new_label = Mux(beaten[j], cls, labels[j])
            if j:  # a beaten entry j-1 moves down into entry j
                new_score = Mux(beaten[j - 1], scores[j - 1], new_score)
                new_label = Mux(beaten[j - 1], labels[j - 1], new_label)
            new_scores.append(new_score)
            new_labels.append(new_label)

        last = cls == self.classes - 1
        room = ~last | ~self.o.valid | self.o.ready  # the last score needs a free output
        step = self.i.valid & room
        m.d.comb += self.i.ready.eq(room & (lane == self.lanes - 1))
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(step):
            m.d.sync += [lane.eq(Mux(lane == self.lanes - 1, 0, lane + 1)),
                         cls.eq(Mux(last, 0, cls + 1))]
            if self.lanes > 1:
                m.d.sync += [next_lane.eq(self.i.payload[lane + 1]),
                             first_lane.eq(lane == self.lanes - 1)]
            with m.If(last):
                m.d.sync += self.o.valid.eq(1)
                m.d.sync += [self.o.payload[j].eq(n) for j, n in enumerate(new_labels)]
                m.d.sync += [s.eq(empty) for s in scores]
            with m.Else():
                m.d.sync += [s.eq(n) for s, n in zip(scores, new_scores)]
                m.d.sync += [l.eq(n) for l, n in zip(labels, new_labels)]
        return m
