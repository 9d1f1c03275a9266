"""The network file: a JSON header plus an ``.npz`` of integer arrays (see docs/network-format.md).

``load_network`` validates everything a hand-written file can get wrong and raises
``NetworkFileError`` with one line naming the file and the layer; ``save_network`` writes both
files through temporary names, so a failed save leaves nothing half-written.
"""
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gen.files import read_json, replacing

FORMAT_NAME = "xnorflow-network"
FORMAT_VERSION = 1
LAYER_KINDS = ("conv", "dense", "maxpool", "label")
OUTPUT_MODES = ("threshold", "scores")


class NetworkFileError(ValueError):
    """A network file that cannot be used; the message is one line naming file and layer."""


@dataclass
class InputSpec:
    """The network's input: raw bytes (``bits=8``) or bits (``bits=1``) in HWC order.

    ``table`` (bits=8 only) maps each raw byte to the signed 8-bit value the first layer sees;
    ``None`` reads the byte as a two's complement int8.
    """
    shape: tuple
    bits: int
    table: np.ndarray = None

    def values(self, raw):
        """The first layer's input values for raw input elements (any integer array)."""
        raw = np.asarray(raw)
        if self.bits == 1:
            return raw.astype(np.int64)
        if self.table is not None:
            return self.table[raw.astype(np.int64)]
        return raw.astype(np.uint8).view(np.int8).astype(np.int64)


@dataclass
class ComputeLayer:
    """A conv (k x k, stride 1, padding) or dense layer: ±1 weights, thresholds or scores out.

    ``weights[o, j]`` is 1 for +1 and 0 for −1; for a conv, column ``j`` is ``(ky*k + kx)*C + c``,
    for a dense layer the input tensor flattened in HWC order. ``thresholds[o, :]`` (dot-product
    domain) give output ``sum_j(acc >= t_j)``, or ``sum_j(acc <= t_j)`` where ``direction[o]`` is −1.
    ``in_bits``: 8 (the first layer's bytes through the input table), 1 (bits, 1 ↔ +1) or 2
    (ternary counts 0, 1, 2 ↔ −1, 0, +1: the output of a layer with two thresholds per channel).
    """
    name: str
    kind: str
    in_shape: tuple
    in_bits: int
    out_channels: int
    weights: np.ndarray
    output: str = "threshold"
    thresholds: np.ndarray = None
    direction: np.ndarray = None
    kernel: int = 1
    pad: int = 0
    pad_value: int = 0

    @property
    def mw(self):
        """Inputs per output (the matrix width)."""
        if self.kind == "conv":
            return self.kernel * self.kernel * self.in_shape[2]
        return math.prod(self.in_shape)

    @property
    def mh(self):
        """Outputs per pixel (the matrix height)."""
        return self.out_channels

    @property
    def out_pixels(self):
        """Output pixels per frame: each one is a matrix-vector product."""
        return math.prod(self.out_shape[:-1])

    @property
    def out_shape(self):
        if self.kind == "conv":
            h, w, _ = self.in_shape
            size = lambda n: n + 2 * self.pad - self.kernel + 1
            return (size(h), size(w), self.out_channels)
        return (self.out_channels,)

    @property
    def out_bits(self):
        """Bits per output element: threshold count width; scores have no fixed width."""
        if self.output == "scores":
            return None
        return max(1, math.ceil(math.log2(self.thresholds.shape[1] + 1)))


@dataclass
class PoolLayer:
    """Max-pool, kernel = stride, PyTorch floor mode: OR of bits (``in_bits=1``) or the largest
    ternary count (``in_bits=2``)."""
    name: str
    in_shape: tuple
    kernel: int
    kind: str = "maxpool"
    in_bits: int = 1

    @property
    def out_shape(self):
        h, w, c = self.in_shape
        return (h // self.kernel, w // self.kernel, c)


@dataclass
class LabelLayer:
    """Top-k class indices of the integer scores, best first, ties to the lower index."""
    name: str
    in_shape: tuple
    top_k: int = 1
    kind: str = "label"

    @property
    def out_shape(self):
        return (self.top_k,)


@dataclass
class Network:
    name: str
    input: InputSpec
    layers: list = field(default_factory=list)
    description: str = ""

    @property
    def compute_layers(self):
        return [layer for layer in self.layers if isinstance(layer, ComputeLayer)]

    @property
    def classes(self):
        return self.layers[-1].in_shape[0]

    def layer(self, name):
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)


# ---------------------------------------------------------------- loading and validation

def _array_path(header_path, header):
    return header_path.with_name(header.get("arrays", header_path.with_suffix(".npz").name))


def read_model(path):
    """The network in ``path``: an xnorflow network header (``.json``, its ``.npz`` beside it)
    or a QONNX model (``.onnx``, imported by ``gen.qonnx``: needs the ``train`` extra);
    ``NetworkFileError`` in one line for any other file."""
    path = Path(path)
    if path.suffix == ".onnx":
        from gen.qonnx import import_qonnx  # QonnxImportError is a NetworkFileError

        return import_qonnx(path)
    if path.suffix != ".json":
        raise NetworkFileError(f"{path}: unsupported model file; accepted: an xnorflow network "
                               f"header (.json, with its .npz beside it) or a QONNX model (.onnx)")
    return load_network(path)


def load_network(path):
    """Read and validate a network file (the ``.json`` header; arrays from the ``.npz`` beside it)."""
    path = Path(path)
    fail = lambda where, what: _fail(path, where, what)
    header = read_json(path, NetworkFileError, "network file")
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        fail("header", f'"format" must be "{FORMAT_NAME}"')
    if header.get("version") != FORMAT_VERSION:
        fail("header", f'"version" must be {FORMAT_VERSION}, not {header.get("version")!r}')
    npz_path = _array_path(path, header)
    try:
        with np.load(npz_path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except FileNotFoundError:
        fail("header", f"array file {npz_path} not found")
    except (ValueError, OSError) as error:
        fail("header", f"array file {npz_path} is not a valid .npz without pickles ({error})")
    return _parse(path, header, arrays)


def _fail(path, where, what):
    raise NetworkFileError(f"{path}: {where}: {what}")


def _int_field(spec, key, where, path, *, minimum, default=None):
    value = spec.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        _fail(path, where, f'"{key}" must be an integer >= {minimum}, not {value!r}')
    return value


def _take_array(arrays, key, shape, where, path, *, values=None):
    if key not in arrays:
        _fail(path, where, f'missing array "{key}" in the .npz')
    array = arrays[key]
    if not np.issubdtype(array.dtype, np.integer):
        _fail(path, where, f'array "{key}" must hold integers, not {array.dtype}')
    if shape is not None and array.shape != tuple(shape):
        _fail(path, where, f'array "{key}" has shape {array.shape}, expected {tuple(shape)}')
    if values is not None and array.size and not np.isin(array, sorted(values)).all():
        _fail(path, where, f'array "{key}" may only hold {sorted(values)}')
    return array.astype(np.int64)


def _parse(path, header, arrays):
    in_spec = header.get("input")
    if not isinstance(in_spec, dict):
        _fail(path, "input", '"input" must be an object with "shape" and "bits"')
    shape = in_spec.get("shape")
    if (not isinstance(shape, list) or len(shape) != 3
            or not all(isinstance(n, int) and n >= 1 for n in shape)):
        _fail(path, "input", f'"shape" must be [height, width, channels] of positive integers, not {shape!r}')
    bits = in_spec.get("bits")
    if bits not in (1, 8):
        _fail(path, "input", f'"bits" must be 8 (bytes) or 1 (bits), not {bits!r}')
    table = None
    if "table" in in_spec:
        if bits != 8:
            _fail(path, "input", 'a "table" needs "bits": 8')
        table = _take_array(arrays, in_spec["table"], (256,), "input", path)
        if table.min() < -128 or table.max() > 127:
            _fail(path, "input", f'table values must fit int8 (-128..127), not {table.min()}..{table.max()}')
    net = Network(name=str(header.get("name", path.stem)), input=InputSpec(tuple(shape), bits, table),
                  description=str(header.get("description", "")))

    layer_specs = header.get("layers")
    if not isinstance(layer_specs, list) or not layer_specs:
        _fail(path, "header", '"layers" must be a non-empty list')
    current_shape, current_bits = tuple(shape), bits
    names = set()
    for index, spec in enumerate(layer_specs):
        if not isinstance(spec, dict):
            _fail(path, f"layer {index}", "must be an object")
        name = spec.get("name", f"layer{index}")
        where = f"layer {index} ({name!r})"
        if not isinstance(name, str) or not name or name in names:
            _fail(path, where, '"name" must be a unique non-empty string')
        names.add(name)
        kind = spec.get("kind")
        if kind not in LAYER_KINDS:
            _fail(path, where, f'unknown kind {kind!r}; accepted: {", ".join(LAYER_KINDS)}')
        if net.layers and net.layers[-1].kind == "label":
            _fail(path, where, "the label layer must be the last layer")
        if current_bits is None and kind != "label":
            _fail(path, where, f'a {kind} layer cannot follow a scores layer; only "label" can')
        if kind in ("conv", "dense"):
            layer = _parse_compute(path, where, spec, kind, name, current_shape, current_bits, arrays,
                                   first=not net.layers)
            current_bits = layer.out_bits
        elif kind == "maxpool":
            if len(current_shape) != 3 or current_bits not in (1, 2):
                _fail(path, where, f"maxpool needs a binary or ternary [H, W, C] input, not "
                                   f"{current_shape} of {current_bits} bits")
            layer = PoolLayer(name=name, in_shape=current_shape, in_bits=current_bits,
                              kernel=_int_field(spec, "kernel", where, path, minimum=1))
            if min(layer.out_shape[:2]) < 1:
                _fail(path, where, f"kernel {layer.kernel} is larger than the input {current_shape[:2]}")
        else:
            if current_bits is not None:
                _fail(path, where, 'label must follow a layer with "output": "scores"')
            layer = LabelLayer(name=name, in_shape=current_shape,
                               top_k=_int_field(spec, "top_k", where, path, minimum=1, default=1))
            if layer.top_k > current_shape[0]:
                _fail(path, where, f"top_k={layer.top_k} exceeds the {current_shape[0]} classes")
        net.layers.append(layer)
        current_shape = layer.out_shape
    if net.layers[-1].kind != "label":
        _fail(path, "header", 'the last layer must be a "label" layer after a "scores" layer')
    return net


def _parse_compute(path, where, spec, kind, name, in_shape, in_bits, arrays, *, first):
    out_channels = _int_field(spec, "out_channels" if kind == "conv" else "out_features", where, path,
                              minimum=1)
    output = spec.get("output", "threshold")
    if output not in OUTPUT_MODES:
        _fail(path, where, f'"output" must be one of {", ".join(OUTPUT_MODES)}, not {output!r}')
    if in_bits not in (1, 2, 8):
        _fail(path, where, f"input of {in_bits} bits per element is not supported (1, 2 or 8)")
    if in_bits == 8 and not first:
        _fail(path, where, "only the first layer can take 8-bit input")
    layer = ComputeLayer(name=name, kind=kind, in_shape=in_shape, in_bits=in_bits,
                         out_channels=out_channels, weights=None, output=output)
    if kind == "conv":
        if len(in_shape) != 3:
            _fail(path, where, f"conv needs an [H, W, C] input, not {in_shape}")
        layer.kernel = _int_field(spec, "kernel", where, path, minimum=1)
        layer.pad = _int_field(spec, "pad", where, path, minimum=0, default=0)
        if layer.pad >= layer.kernel:
            _fail(path, where, f'"pad" must be smaller than the kernel {layer.kernel}, not {layer.pad}')
        if min(layer.out_shape[:2]) < 1:
            _fail(path, where, f"kernel {layer.kernel} with pad {layer.pad} does not fit the input {in_shape[:2]}")
        if in_bits == 8:
            layer.pad_value = spec.get("pad_value", 0)
            if not isinstance(layer.pad_value, int) or not -128 <= layer.pad_value <= 127:
                _fail(path, where, f'"pad_value" must be an int8 (-128..127), not {layer.pad_value!r}')
        elif "pad_value" in spec and spec["pad_value"] != 0:
            _fail(path, where, '"pad_value" applies to 8-bit input only; binary padding is -1 '
                               '(bit 0), and so is ternary padding (count 0)')
    packed = _take_array(arrays, f"{name}.weights", (layer.mh, (layer.mw + 7) // 8), where, path)
    if packed.min(initial=0) < 0 or packed.max(initial=0) > 255:
        _fail(path, where, f'array "{name}.weights" must hold packed bytes (0..255)')
    layer.weights = np.unpackbits(packed.astype(np.uint8), axis=1, count=layer.mw,
                                  bitorder="little").astype(np.uint8)
    if output == "threshold":
        key = f"{name}.thresholds"
        if key in arrays and (arrays[key].ndim != 2 or arrays[key].shape[1] < 1):
            _fail(path, where, f'array "{key}" has shape {arrays[key].shape}, expected ({layer.mh}, T) with T >= 1')
        layer.thresholds = _take_array(arrays, key, (layer.mh, arrays[key].shape[1]) if key in arrays else None,
                                       where, path)
        if layer.thresholds.shape[1] not in (1, 2):
            _fail(path, where, f"{layer.thresholds.shape[1]} thresholds per channel are not "
                               "supported; use 1 (binary output) or 2 (ternary output -1/0/+1)")
        if f"{name}.direction" in arrays:
            layer.direction = _take_array(arrays, f"{name}.direction", (layer.mh,), where, path,
                                          values={-1, 1})
    elif f"{name}.thresholds" in arrays:
        _fail(path, where, f'"output": "scores" takes no thresholds, but "{name}.thresholds" is given')
    return layer


# ---------------------------------------------------------------- saving

def _header(net):
    layers = []
    for layer in net.layers:
        spec = {"name": layer.name, "kind": layer.kind}
        if layer.kind == "conv":
            spec.update(out_channels=layer.out_channels, kernel=layer.kernel, pad=layer.pad)
            if layer.in_bits == 8:
                spec["pad_value"] = layer.pad_value
        elif layer.kind == "dense":
            spec["out_features"] = layer.out_channels
        elif layer.kind == "maxpool":
            spec["kernel"] = layer.kernel
        else:
            spec["top_k"] = layer.top_k
        if isinstance(layer, ComputeLayer):
            spec["output"] = layer.output
        layers.append(spec)
    in_spec = {"shape": list(net.input.shape), "bits": net.input.bits}
    if net.input.table is not None:
        in_spec["table"] = "input.table"
    return {"format": FORMAT_NAME, "version": FORMAT_VERSION, "name": net.name,
            "description": net.description, "input": in_spec, "layers": layers}


def _arrays(net):
    arrays = {}
    if net.input.table is not None:
        arrays["input.table"] = np.asarray(net.input.table, dtype=np.int16)
    for layer in net.compute_layers:
        arrays[f"{layer.name}.weights"] = np.packbits(layer.weights.astype(np.uint8), axis=1,
                                                      bitorder="little")
        if layer.thresholds is not None:
            arrays[f"{layer.name}.thresholds"] = np.asarray(layer.thresholds, dtype=np.int64)
        if layer.direction is not None:
            arrays[f"{layer.name}.direction"] = np.asarray(layer.direction, dtype=np.int8)
    return arrays


def save_network(net, path):
    """Write ``path`` (JSON header) and the ``.npz`` beside it, each through a temporary file."""
    path = Path(path)
    header = _header(net)
    header["arrays"] = path.with_suffix(".npz").name
    # the arrays are renamed into place first (the inner block ends first), then the header
    with replacing(path) as tmp_json, replacing(path.with_suffix(".npz")) as tmp_npz:
        np.savez_compressed(tmp_npz, **_arrays(net))
        tmp_json.write_text(json.dumps(header, indent=2) + "\n")
    return path
