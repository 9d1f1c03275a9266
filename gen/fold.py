"""Folding: how many outputs (PE) and inputs (SIMD) each compute layer handles per clock.

A fold file is JSON a user can edit and pass back with ``--fold``::

    {"layers": {"conv0": {"pe": 16, "simd": 3}, "dense8": {"pe": 1, "simd": 4, "fifo_depth": 8}}}

Layers left out get the default fold. A layer with MH outputs, MW inputs per output and N output
pixels takes ``N * (MH/PE) * (MW/SIMD)`` cycles per frame; a conv's window generator needs its own
cycles too (``window_cycles``), and the slowest layer sets the interval. ``fold_for_interval``,
``fold_for_fps`` and ``fold_for_luts`` choose every layer's cheapest fold for a target interval,
frame rate or LUT budget: cheapest by ``gen.resources``' LUTs of the layer's window, unit and
output FIFO, within a budget by its LUTs of the whole accelerator.
"""
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from gen.files import read_json, replace_text
from gen.resources import element_bits, fifo_resources, graph_resources, layer_luts
from hw.parallel_window import window_frame_cycles, window_frame_gap


# A FIFO of Amaranth's SyncFIFOBuffered kind moves a word a clock only from 3 words deep on.
MIN_FIFO_DEPTH = 4
# Without a target, the heaviest layer gets about this many binary MACs per clock.
DEFAULT_MACS_PER_CYCLE = 512


class FoldError(ValueError):
    """A fold that does not fit the network; the message is one line naming file and layer."""


@dataclass
class LayerFold:
    pe: int = 1
    simd: int = 1
    fifo_depth: int = MIN_FIFO_DEPTH


def divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]


def simd_choices(layer):
    """SIMD values the hardware accepts: divisors of MW for a dense layer; for a conv, divisors
    of its C input channels (``SlidingWindow``) and multiples of C dividing MW = K*K*C (whole
    pixels of a window, ``ParallelWindow``)."""
    if layer.kind != "conv":
        return divisors(layer.mw)
    channels = layer.in_shape[2]
    return divisors(channels) + [channels * m for m in divisors(layer.kernel ** 2)[1:]]


def mvu_cycles(layer, fold):
    """Cycles per frame of a compute layer's matrix-vector unit."""
    return layer.out_pixels * (layer.mh // fold.pe) * (layer.mw // fold.simd)


def window_cycles(layer, simd):
    """Cycles per frame of a conv's window generator emitting ``simd``-lane words."""
    h, w, c = layer.in_shape
    if simd <= c:
        return max(h * w * c // simd, layer.out_pixels * layer.mw // simd)
    return window_frame_cycles(height=h, width=w, kernel=layer.kernel, pad=layer.pad,
                               words_per_window=layer.mw // simd)


def has_window_queue(layer, fold):
    """Whether conv ``layer`` under ``fold`` has a FIFO of windows after its window generator:
    a ``ParallelWindow`` (SIMD above the input channels) whose unit makes several passes."""
    return layer.kind == "conv" and fold.simd > layer.in_shape[2] and layer.mh > fold.pe


def window_queue_depth(layer, fold, feed_cycles):
    """Words of the FIFO after conv ``layer``'s ``ParallelWindow``, fed ``feed_cycles`` per frame.

    Between frames the generator refills its first ``kernel - 1`` rows, fed at the pace of the
    stages before it (a pooling layer's input rate for instance); the windows queued here keep
    the unit busy meanwhile. (Without the queue a hand-written net lost 3.6%; sized for the
    generator alone, the default network lost 13% behind a pool.)
    """
    h, w, _ = layer.in_shape
    words_per_window = layer.mw // fold.simd
    gap = window_frame_gap(width=w, kernel=layer.kernel, pad=layer.pad,
                           words_per_window=words_per_window)
    refill = math.ceil(feed_cycles * gap / ((h + 2 * layer.pad) * (w + 2 * layer.pad)))
    per_window = (layer.mh // fold.pe) * words_per_window
    return (math.ceil(refill / per_window) + 1) * words_per_window + MIN_FIFO_DEPTH


def fold_luts(layer, fold, target_cycles):
    """The estimated LUTs of the stages ``fold`` makes for ``layer`` within ``target_cycles``:
    window, unit, output FIFO and any window queue, sized for a feed at the target pace (the
    slowest the stages before it can be)."""
    luts = layer_luts(layer, fold)
    if has_window_queue(layer, fold):
        depth = window_queue_depth(layer, fold, target_cycles)
        luts += fifo_resources(fold.simd * element_bits(layer.in_bits), depth).lut
    return luts


def layer_cycles(layer, fold):
    """Cycles per frame of a compute layer: its matrix-vector unit or its window generator."""
    cycles = mvu_cycles(layer, fold)
    if layer.kind == "conv":
        cycles = max(cycles, window_cycles(layer, fold.simd))
    return cycles


def check_layer_fold(layer, fold, source="fold"):
    """Raise ``FoldError`` unless PE divides MH and SIMD is one of ``simd_choices``."""
    where = f"{source}: layer {layer.name!r}"
    for key in ("pe", "simd", "fifo_depth"):
        value = getattr(fold, key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise FoldError(f"{where}: {key} must be a positive integer, not {value!r}")
    if layer.mh % fold.pe:
        raise FoldError(f"{where}: PE must divide MH={layer.mh}, not {fold.pe}; "
                        f"accepted: {divisors(layer.mh)}")
    if fold.simd not in simd_choices(layer):
        what = (f"the {layer.in_shape[2]} input channels or be a multiple of them dividing "
                f"MW={layer.mw}" if layer.kind == "conv" else f"MW={layer.mw}")
        raise FoldError(f"{where}: SIMD must divide {what}, not {fold.simd}; "
                        f"accepted: {simd_choices(layer)}")


def default_fifo_depth(net, layer, pe):
    """FIFO words after ``layer`` (folded by ``pe``) so that the consumer never stalls it.

    A dense layer parks its next input vector in a FIFO of its own (``gen.graph``): before it
    ``MIN_FIFO_DEPTH`` words suffice. (Without that FIFO, a width converter feeding the vector
    slower than a word a clock stretched a hand-written network's dense layer from 112 to 247
    cycles.) A window generator runs at most a window ahead of its matrix-vector unit: while
    that unit works through a frame's last windows, the producer parks the next frame's first
    ``kernel`` rows of the following conv, ``kernel * pooling`` of its own output rows.
    """
    following = net.compute_layers[net.compute_layers.index(layer) + 1:]
    if not following:
        return MIN_FIFO_DEPTH
    consumer = following[0]
    if consumer.kind == "dense":
        return MIN_FIFO_DEPTH
    between = net.layers[net.layers.index(layer) + 1:net.layers.index(consumer)]
    pooling = math.prod(getattr(other, "kernel", 1) for other in between)
    row_words = layer.out_shape[1] * layer.mh // pe
    return max(MIN_FIFO_DEPTH, consumer.kernel * pooling * row_words)


def fold_options(net, layer):
    """Every fold the hardware accepts for compute ``layer``: each PE dividing MH with each SIMD
    of ``simd_choices``, with its default FIFO depth."""
    return [LayerFold(pe, simd, default_fifo_depth(net, layer, pe))
            for pe in divisors(layer.mh) for simd in simd_choices(layer)]


def cheapest_fold(net, layer, target_cycles):
    """The fold with the fewest estimated LUTs that meets ``target_cycles`` (else the fastest)."""
    options = fold_options(net, layer)
    meeting = [o for o in options if layer_cycles(layer, o) <= target_cycles]
    if meeting:
        return min(meeting, key=lambda o: (fold_luts(layer, o, target_cycles), -o.simd))
    return min(options, key=lambda o: (layer_cycles(layer, o), layer_luts(layer, o)))


def fastest_interval(net):
    """The smallest interval any fold reaches: each layer at its fastest fold."""
    return max(min(layer_cycles(layer, option) for option in fold_options(net, layer))
               for layer in net.compute_layers)


def default_target_cycles(net):
    """The heaviest layer at ``DEFAULT_MACS_PER_CYCLE``, or the fastest reachable interval."""
    heaviest = max(layer.out_pixels * layer.mh * layer.mw for layer in net.compute_layers)
    return max(math.ceil(heaviest / DEFAULT_MACS_PER_CYCLE), fastest_interval(net))


def default_fold(net, target_cycles=None):
    """A balanced fold: each compute layer as cheap as possible within ``target_cycles``."""
    target = target_cycles or default_target_cycles(net)
    return {layer.name: cheapest_fold(net, layer, target) for layer in net.compute_layers}


def target_interval(fps, clock_mhz):
    """Cycles per frame that ``fps`` frames per second leave at ``clock_mhz``."""
    return math.floor(clock_mhz * 1e6 / fps)


def fold_for_interval(net, target_cycles):
    """The cheapest fold whose slowest layer takes at most ``target_cycles``; ``FoldError``
    stating the best reachable interval when none does."""
    best = fastest_interval(net)
    if target_cycles < best:
        raise FoldError(f"network {net.name!r}: no fold reaches {target_cycles:,} cycles per "
                        f"frame; the fastest is {best:,} cycles")
    return default_fold(net, target_cycles)


def fold_for_fps(net, fps, clock_mhz):
    """The cheapest fold reaching ``fps`` frames per second at ``clock_mhz``; ``FoldError``
    stating the rate asked and the best reachable when none does."""
    target, best = target_interval(fps, clock_mhz), fastest_interval(net)
    if target < best:
        raise FoldError(f"network {net.name!r}: no fold reaches {fps:,g} frames/s at "
                        f"{clock_mhz:g} MHz ({target:,} cycles per frame); the fastest is "
                        f"{best:,} cycles = {clock_mhz * 1e6 / best:,.0f} frames/s")
    return default_fold(net, target)


def estimated_luts(net, fold, wrapper=None):
    """The resource model's LUTs for the whole accelerator of ``net`` under ``fold`` and, with
    ``wrapper`` (a hardware graph's ``Resources`` of the top around it), that top's."""
    from gen.graph import build_graph  # here, not at the top: gen.graph builds on this module

    graph = build_graph(net, fold)
    return graph_resources(graph)["total"].lut + (wrapper(graph).lut if wrapper else 0)


def fold_for_luts(net, lut_budget, wrapper=None, luts_per_model_lut=1.0):
    """The fastest fold whose estimated LUTs (``estimated_luts``, the ``wrapper`` top's
    included, times ``luts_per_model_lut`` for a target counting other LUTs than UltraScale+'s)
    stay within ``lut_budget``, else ``FoldError`` stating the cheapest fold's estimate."""
    candidates = sorted({layer_cycles(layer, LayerFold(pe, simd))
                         for layer in net.compute_layers for pe in divisors(layer.mh)
                         for simd in simd_choices(layer)} | {fastest_interval(net)})
    candidates = [c for c in candidates if c >= fastest_interval(net)]
    cost = lambda cycles: luts_per_model_lut * estimated_luts(net, default_fold(net, cycles),
                                                              wrapper)
    if cost(candidates[-1]) > lut_budget:
        raise FoldError(f"network {net.name!r}: no fold fits {lut_budget:,} LUTs; the smallest "
                        f"needs about {cost(candidates[-1]):,.0f} (estimate)")
    low, high = 0, len(candidates) - 1  # the answer lies in candidates[low..high]
    while low < high:
        middle = (low + high) // 2
        if cost(candidates[middle]) <= lut_budget:
            high = middle
        else:
            low = middle + 1
    return default_fold(net, candidates[low])


def load_fold(path, net):
    """Read a fold file; layers it leaves out get ``default_fold``'s choice."""
    path = Path(path)
    spec = read_json(path, FoldError, "fold file")
    layers = spec.get("layers") if isinstance(spec, dict) else None
    if not isinstance(layers, dict):
        raise FoldError(f'{path}: expected {{"layers": {{"<layer name>": {{"pe": .., "simd": ..}}}}}}')
    compute = {layer.name: layer for layer in net.compute_layers}
    fold = default_fold(net)
    for name, entry in layers.items():
        if name not in compute:
            raise FoldError(f"{path}: layer {name!r} is not a conv or dense layer of "
                            f"{net.name!r}; accepted: {', '.join(compute)}")
        unknown = set(entry) - {"pe", "simd", "fifo_depth"} if isinstance(entry, dict) else None
        if unknown is None or unknown:
            raise FoldError(f"{path}: layer {name!r}: expected an object with pe, simd, "
                            f"fifo_depth; not {entry!r}")
        merged = {**asdict(fold[name]), **entry}
        if "fifo_depth" not in entry:
            merged["fifo_depth"] = default_fifo_depth(net, compute[name], merged["pe"])
        fold[name] = LayerFold(**merged)
        check_layer_fold(compute[name], fold[name], source=str(path))
    return fold


def fold_to_json(net, fold):
    return {"network": net.name,
            "layers": {name: asdict(layer_fold) for name, layer_fold in fold.items()}}


def save_fold(net, fold, path):
    """Write the fold as an editable JSON file (through a temporary name)."""
    replace_text(path, json.dumps(fold_to_json(net, fold), indent=2) + "\n")
