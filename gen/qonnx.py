"""Import a QONNX model (``brevitas.export.export_qonnx``, FINN) as an xnorflow network.

The model must be a chain — network input, elementwise input scaling, input quantizer, then
layers of [Pad] Conv/Gemm/MatMul (binary weights), per-channel scalings and at most one
BatchNormalization, an activation quantizer (1 bit, or 2-bit narrow range = −1/0/+1) and an
optional MaxPool, and a last Gemm/MatMul whose scores may be scaled by one scalar affine map
(Brevitas' ``TensorNorm``). Everything after an accumulation is folded, per channel and in exact
rational arithmetic, into integer thresholds in the ``acc`` domain; the input part is evaluated
into the 256-entry input table. docs/qonnx-import.md says what is supported and how.

Anything else stops the import with one line naming the ONNX node (name and op type) and what is
supported (``QonnxImportError``, a ``NetworkFileError``: exit code 2 from the command line).
"""
import math
from fractions import Fraction
from pathlib import Path

import numpy as np

from gen.ir import ComputeLayer, InputSpec, LabelLayer, Network, NetworkFileError, PoolLayer
from gen.qonnx_quant import (ROUNDING_MODES, Affine, fold_thresholds, int_quant, quant_range,
                             rounds_at_least)

QUANT_DOMAINS = ("qonnx.custom_op.general", "finn.custom_op.general", "onnx.brevitas")
LAYOUT_OPS = ("Reshape", "Flatten", "Transpose", "Identity", "Dropout")
SCALING_OPS = ("Mul", "Div", "Add", "Sub")
CONSTANT_OPS = ("Constant", "Identity", "BipolarQuant", "Quant", "Transpose", "Reshape", "Flatten",
                "Mul", "Div", "Add", "Sub", "Neg", "Sqrt", "Pow", "Reciprocal", "Cast",
                "Unsqueeze", "Squeeze", "Shape", "Gather", "Concat", "Slice", "ConstantOfShape")
SUPPORTED = ("Conv (stride 1, square kernel) / Gemm / MatMul with binary weights (BipolarQuant), "
             "Mul/Div/Add/Sub by constants, BatchNormalization, Quant/BipolarQuant (input: any "
             "that fits int8; activations: 1 bit or 2-bit narrow range), MaxPool (kernel = stride), "
             "Pad (constant), Reshape/Flatten/Transpose/Identity/Dropout")
DEFAULT_PIXEL_DIVISOR = 255.0


class QonnxImportError(NetworkFileError):
    """A QONNX model that cannot be imported; the message is one line naming file and node."""


def _canonical(shape):
    """Our HWC element positions of an ONNX tensor ``[C, H, W]`` (or ``[F]``), in ONNX order."""
    if len(shape) == 3:
        c, h, w = shape
        return np.arange(h * w * c).reshape(h, w, c).transpose(2, 0, 1)
    return np.arange(int(np.prod(shape))).reshape(shape)


def _attrs(node):
    from onnx import helper

    values = {}
    for attribute in node.attribute:
        value = helper.get_attribute_value(attribute)
        values[attribute.name] = value.decode() if isinstance(value, bytes) else value
    return values


def _fraction(value):
    return Fraction(float(value))


class _Importer:
    def __init__(self, path, model, pixel_divisor):
        from onnx import numpy_helper

        self.path, self.pixel_divisor = path, pixel_divisor
        graph = model.graph
        self.consts = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
        self.const_node = {}                     # constant tensor -> the node that computed it
        self.inputs = [value for value in graph.input if value.name not in self.consts]
        self.outputs = [value.name for value in graph.output]
        # Tensors computed from the network input are the chain; a Shape of one is a constant
        # once the walk knows that shape (TorchScript exports compute Reshape targets so).
        # Everything else is a constant, evaluated when a layer needs it.
        self.computed = {value.name for value in self.inputs}
        self.producer, self.consumers = {}, {}
        for node in graph.node:                  # ONNX lists nodes in topological order
            for name in node.output:
                self.producer[name] = node
            inputs = [name for name in node.input if name in self.computed]
            for name in inputs:
                self.consumers.setdefault(name, []).append(node)
            if inputs and node.op_type != "Shape":
                self.computed.update(name for name in node.output if name)

    # -------------------------------------------------------- errors and constants

    def fail(self, node, what):
        raise QonnxImportError(f"{self.path}: node {node.name!r} ({node.op_type}): {what}")

    def fail_graph(self, what):
        raise QonnxImportError(f"{self.path}: graph: {what}")

    def const(self, node, index, what):
        if index >= len(node.input) or not node.input[index]:
            self.fail(node, f"needs {what} as input {index}")
        name = node.input[index]
        if not self.resolve(name):
            self.fail(node, f"{what} ({name!r}) must be a constant, not a computed tensor")
        return self.consts[name]

    def resolve(self, name):
        """Evaluate constant tensor ``name`` (and what it needs); False if it is not constant."""
        if name in self.consts:
            return True
        producer = self.producer.get(name)
        if name in self.computed or producer is None:
            return False
        if not all(self.resolve(x) for x in producer.input if x):
            return False
        self._fold_constant(producer)
        return name in self.consts

    def scalar(self, node, index, what, *, positive=False, integer=False):
        value = np.asarray(self.const(node, index, what), dtype=np.float64)
        if value.size == 0 or not (value == value.reshape(-1)[0]).all():
            self.fail(node, f"{what} must be one value for the whole tensor, not {value.shape}-shaped "
                            "per-channel values")
        value = value.reshape(-1)[0]
        if positive and not value > 0:
            self.fail(node, f"{what} must be positive, not {value}")
        if integer and value != round(value):
            self.fail(node, f"{what} must be an integer, not {value}")
        return value

    def _fold_constant(self, node):
        from onnx import numpy_helper

        op, a = node.op_type, _attrs(node)
        args = [self.consts[name] if name else None for name in node.input]
        if op not in CONSTANT_OPS:
            self.fail(node, f"computes on constants with an op the importer does not evaluate; "
                            f"supported there: {', '.join(CONSTANT_OPS)}")
        if op == "Constant":
            if "value" in a:
                out = numpy_helper.to_array(a["value"])
            else:
                key = next((k for k in ("value_float", "value_floats", "value_int", "value_ints")
                            if k in a), None)
                if key is None:
                    self.fail(node, f"only tensor, float and int values are supported, not {sorted(a)}")
                out = np.asarray(a[key], dtype=np.float32 if "float" in key else np.int64)
        elif op in ("Identity", "Cast"):
            out = args[0] if op == "Identity" else args[0].astype(
                {1: np.float32, 6: np.int32, 7: np.int64, 11: np.float64}.get(a.get("to"), np.float32))
        elif op == "BipolarQuant":
            out = np.where(args[0] >= 0, 1.0, -1.0).astype(args[0].dtype) * args[1]
        elif op == "Quant":
            self._check_rounding(node, a)
            ints = int_quant(args[0], args[1], args[2], int(np.asarray(args[3]).reshape(-1)[0]),
                             a.get("signed", 1), a.get("narrow", 0), a.get("rounding_mode", "ROUND"))
            out = (ints * args[1]).astype(args[0].dtype)
        elif op == "Transpose":
            out = np.transpose(args[0], a.get("perm"))
        elif op == "Reshape":
            shape = [d if d != 0 or a.get("allowzero", 0) else args[0].shape[i]
                     for i, d in enumerate(args[1].tolist())]
            out = args[0].reshape(shape)
        elif op == "Flatten":
            axis = a.get("axis", 1) % max(1, args[0].ndim)
            out = args[0].reshape(int(np.prod(args[0].shape[:axis])), -1)
        elif op == "Shape":
            out = np.array(args[0].shape, dtype=np.int64)[a.get("start", 0):a.get("end", None)]
        elif op == "Gather":
            out = np.take(args[0], args[1], axis=a.get("axis", 0))
        elif op == "Concat":
            out = np.concatenate([np.atleast_1d(x) for x in args], axis=a.get("axis", 0))
        elif op == "ConstantOfShape":
            fill = numpy_helper.to_array(a["value"]) if "value" in a else np.zeros(1, np.float32)
            out = np.full(args[0].astype(np.int64).tolist(), fill.reshape(-1)[0], dtype=fill.dtype)
        elif op == "Slice":
            starts, ends = args[1].tolist(), args[2].tolist()
            axes = args[3].tolist() if len(args) > 3 and args[3] is not None else range(len(starts))
            steps = args[4].tolist() if len(args) > 4 and args[4] is not None else [1] * len(starts)
            window = [slice(None)] * args[0].ndim
            for axis, start, end, step in zip(axes, starts, ends, steps):
                window[axis] = slice(start, end, step)  # Python clamps out-of-range bounds as ONNX
            out = args[0][tuple(window)]
        elif op in ("Unsqueeze", "Squeeze"):
            axes = a.get("axes", None if len(args) < 2 or args[1] is None else args[1].tolist())
            out = (np.expand_dims(args[0], tuple(axes)) if op == "Unsqueeze"
                   else np.squeeze(args[0], None if axes is None else tuple(axes)))
        else:
            functions = {"Mul": np.multiply, "Div": np.divide, "Add": np.add, "Sub": np.subtract,
                         "Pow": np.power}
            if op in functions:
                out = functions[op](args[0], args[1])
            else:
                out = {"Neg": np.negative, "Sqrt": np.sqrt, "Reciprocal": np.reciprocal}[op](args[0])
        for name in node.output[:1]:
            self.consts[name] = np.asarray(out)
            self.const_node[name] = node

    def _check_rounding(self, node, a):
        mode = str(a.get("rounding_mode", "ROUND")).upper()
        if mode not in ROUNDING_MODES:
            self.fail(node, f"rounding_mode {mode!r} is not supported; supported: "
                            f"{', '.join(ROUNDING_MODES)}")
        a["rounding_mode"] = mode
        return mode

    # -------------------------------------------------------- weights

    def binary_weights(self, node, index, out_axis):
        """Bits ``[O, ...]`` (1 ↔ +1) and positive per-output-channel scales of a weight input."""
        weights = np.asarray(self.const(node, index, "the weights"), dtype=np.float64)
        weights = np.moveaxis(weights, out_axis, 0)
        rows = np.abs(weights.reshape(weights.shape[0], -1))
        scales = rows[:, :1]
        if (rows == scales).all() and (scales > 0).all():
            return (weights > 0).astype(np.uint8), [_fraction(s) for s in scales[:, 0]]
        source = self.const_node.get(node.input[index])
        while source is not None and source.op_type in ("Transpose", "Reshape", "Identity", "Cast"):
            source = self.const_node.get(source.input[0])
        values = np.unique(weights)
        shown = ", ".join(f"{v:g}" for v in values[:5]) + (", ..." if len(values) > 5 else "")
        supported = ("supported: binary weights, ±scale per output channel (BipolarQuant, or a "
                     "Quant whose outputs are all ±scale)")
        if source is not None and source.op_type == "Quant":
            bits = int(np.asarray(self.consts[source.input[3]]).reshape(-1)[0])
            self.fail(source, f"quantizes weights of {node.name!r} to {bits} bits ({len(values)} "
                              f"values: {shown}); {supported}")
        self.fail(node, f"weights are not binary ({len(values)} values: {shown}); {supported}")

    # -------------------------------------------------------- the walk along the chain

    def run(self, name, top_k):
        if len(self.inputs) != 1 or len(self.outputs) != 1:
            self.fail_graph(f"needs exactly one input and one output, not {len(self.inputs)} "
                            f"and {len(self.outputs)}")
        dims = [d.dim_value for d in self.inputs[0].type.tensor_type.shape.dim]
        if len(dims) not in (2, 4) or not all(d > 0 for d in dims[1:]):
            self.fail_graph(f"the input must be [N, C, H, W] or [N, F] with known sizes, not {dims}")
        self.batch = dims[0] if dims[0] > 0 else 1
        onnx_shape = tuple(dims[1:])
        shape = (onnx_shape[1], onnx_shape[2], onnx_shape[0]) if len(dims) == 4 else (1, 1, dims[1])
        index = _canonical(onnx_shape)
        net = Network(name=name, input=InputSpec(shape, 8, None), description="")
        facts = {"layers": {}, "ties": 0, "input_scale": None, "score_scale": None,
                 "score_offset": None, "score_sign": 1, "pixel_divisor": self.pixel_divisor}
        state, pre_ops = "input", []
        act = None                     # (kind, scale): "input" / "binary" / "ternary"
        pending_pad = None             # (pad node, pads, value)
        layer = affine = None
        counts = {"conv": 0, "pool": 0, "fc": 0}
        cur, last_node = self.inputs[0].name, None

        while True:
            users = []
            for user in self.consumers.get(cur, []):
                if user.op_type == "Shape":      # a constant now: this tensor's shape
                    a = _attrs(user)
                    shape = np.array((self.batch,) + index.shape, dtype=np.int64)
                    self.consts[user.output[0]] = shape[a.get("start", 0):a.get("end", None)]
                else:
                    users.append(user)
            if not users:
                if cur not in self.outputs:
                    self.fail(last_node, f"output {cur!r} is not used")
                break
            if len(users) > 1:
                self.fail(users[1], f"tensor {cur!r} feeds {len(users)} nodes "
                                    f"({', '.join(repr(u.name) for u in users)}); branches such as "
                                    "residual connections are not supported, only a chain of layers")
            node = users[0]
            op = node.op_type
            computed = [i for i in node.input if i in self.computed]
            if len(computed) != 1:
                self.fail(node, "takes several computed tensors (a residual or concatenation); "
                                "only a chain of layers is supported")
            for extra in node.output[1:]:
                if extra and (extra in self.consumers or extra in self.outputs):
                    self.fail(node, f"its output {extra!r} is used; only the first output may be")
            is_quant = op in ("Quant", "BipolarQuant")
            if is_quant and node.domain not in QUANT_DOMAINS:
                self.fail(node, f"domain {node.domain!r} is not a QONNX domain "
                                f"({', '.join(QUANT_DOMAINS)})")
            if pending_pad is not None and op != "Conv":
                self.fail(node, "follows a Pad; supported: a Pad right before a Conv")

            if op in ("Identity", "Dropout"):
                pass
            elif op in LAYOUT_OPS:
                if state == "acc":
                    self.fail(node, "changes the layout of an accumulation before its activation; "
                                    "supported: Reshape/Flatten/Transpose between an activation "
                                    "and the next layer")
                index = self.layout(node, index)
            elif state == "input":
                if op in SCALING_OPS:
                    pre_ops.append(self.input_op(node))
                elif is_quant:
                    table, scale = self.input_table(node, pre_ops)
                    net.input.table = table
                    act, state = ("input", scale), "act"
                    facts["input_scale"] = float(scale)
                elif op in ("Conv", "Gemm", "MatMul"):
                    self.fail(node, "takes the unquantized network input; supported: a Quant or "
                                    "BipolarQuant on the input (after Mul/Div/Add/Sub) first")
                else:
                    self.unsupported(node)
            elif state == "act":
                if op == "Pad":
                    pending_pad = self.pad(node, index)
                elif op == "MaxPool":
                    if act[0] == "input":
                        self.fail(node, "pools the network input; supported: MaxPool after a "
                                        "binary or ternary activation")
                    k = self.maxpool(node, index)
                    c, h, w = index.shape
                    layer = PoolLayer(name=f"pool{counts['pool']}", in_shape=(h, w, c), kernel=k,
                                      in_bits=1 if act[0] == "binary" else 2)
                    counts["pool"] += 1
                    net.layers.append(layer)
                    facts["layers"][layer.name] = node.name
                    index = _canonical((c, h // k, w // k))
                elif op in ("Conv", "Gemm", "MatMul"):
                    in_shape = net.layers[-1].out_shape if net.layers else shape
                    if op == "Conv":
                        layer, affine = self.conv(node, index, act, pending_pad,
                                                  f"conv{counts['conv']}", in_shape)
                        counts["conv"] += 1
                        index = _canonical((layer.out_channels,) + layer.out_shape[:2])
                    else:
                        layer, affine = self.dense(node, index, act, f"fc{counts['fc']}", in_shape)
                        counts["fc"] += 1
                        index = _canonical((layer.out_channels,))
                    pending_pad = None
                    net.layers.append(layer)
                    facts["layers"][layer.name] = node.name
                    state = "acc"
                elif is_quant:
                    self.fail(node, "quantizes an already quantized tensor; supported: one "
                                    "quantizer after each layer")
                else:
                    self.unsupported(node)
            else:                                        # state == "acc"
                if op in SCALING_OPS:
                    self.scaling(node, index, affine)
                elif op == "BatchNormalization":
                    self.batch_norm(node, index, affine)
                elif is_quant:
                    kind, scale, levels = self.activation(node)
                    bound = self.acc_bound(net, layer)
                    layer.thresholds, layer.direction, ties = fold_thresholds(affine, levels, bound)
                    facts["ties"] += ties
                    act, state = (kind, scale), "act"
                else:
                    self.unsupported(node)
            last_node, cur = node, node.output[0]

        if state != "acc" or layer is None or layer.kind != "dense":
            what = ("ends the graph; supported: a graph that ends with the scores of a last "
                    "Gemm/MatMul (optionally scaled by one scale and offset, e.g. TensorNorm)")
            if last_node is None:
                self.fail_graph(what.replace("ends the graph", "the input is the output"))
            self.fail(last_node, what)
        self.scores(last_node, layer, affine, facts)
        net.layers.append(LabelLayer(name="label", in_shape=layer.out_shape, top_k=top_k))
        return net, facts

    def unsupported(self, node):
        self.fail(node, f"unsupported op here; supported: {SUPPORTED}")

    # -------------------------------------------------------- layout

    def layout(self, node, index):
        op, a = node.op_type, _attrs(node)
        full = (self.batch,) + index.shape
        if op == "Transpose":
            perm = list(a.get("perm", range(len(full))[::-1]))
            if perm[0] != 0:
                self.fail(node, f"moves the batch axis (perm {perm}); supported: perm[0] = 0")
            return index.transpose([p - 1 for p in perm[1:]])
        if op == "Flatten":
            if a.get("axis", 1) != 1:
                self.fail(node, f"axis {a.get('axis')} is not supported; supported: axis 1")
            return index.reshape(-1)
        target = [int(d) for d in np.asarray(self.const(node, 1, "the shape")).reshape(-1)]
        target = [full[i] if d == 0 and not a.get("allowzero", 0) else d
                  for i, d in enumerate(target)]
        try:
            reshaped = np.empty(full, dtype=np.int8).reshape(target).shape
        except ValueError:
            self.fail(node, f"cannot reshape {list(full)} to {target}")
        if reshaped[0] != self.batch:
            self.fail(node, f"reshapes {list(full)} to {list(reshaped)}, mixing the batch axis; "
                            "supported: reshapes that keep the batch axis")
        return index.reshape(reshaped[1:])

    # -------------------------------------------------------- the input quantizer

    def input_op(self, node):
        index = 1 if node.input[0] in self.computed else 0
        value = np.float32(self.scalar(node, index, "the constant"))
        first = index == 0                                 # constant on the left: c - x, c / x
        functions = {"Mul": np.multiply, "Div": np.divide, "Add": np.add, "Sub": np.subtract}
        function = functions[node.op_type]
        return (lambda x: function(value, x)) if first else (lambda x: function(x, value))

    def input_table(self, node, pre_ops):
        """The int8 values of raw bytes p (x = p / pixel_divisor, in float32 as the model)."""
        x = np.arange(256, dtype=np.float32) / np.float32(self.pixel_divisor)
        for function in pre_ops:
            x = function(x).astype(np.float32)
        scale = self.scalar(node, 1, "the scale", positive=True)
        if node.op_type == "BipolarQuant":
            ints = np.where(x >= 0, 1, -1)
        else:
            a = _attrs(node)
            mode = self._check_rounding(node, a)
            zeropt = self.scalar(node, 2, "the zero point", integer=True)
            bits = int(self.scalar(node, 3, "the bit width", integer=True))
            ints = int_quant(x, np.float32(scale), np.float32(zeropt), bits, a.get("signed", 1),
                             a.get("narrow", 0), mode)
        if ints.min() < -128 or ints.max() > 127:
            self.fail(node, f"maps raw bytes to integers {ints.min()}..{ints.max()} (x = p/"
                            f"{self.pixel_divisor:g}); supported: an input quantizer whose values "
                            "fit int8 (-128..127)")
        return ints.astype(np.int64), _fraction(np.float32(scale))

    # -------------------------------------------------------- layers

    def pad(self, node, index):
        a = _attrs(node)
        if a.get("mode", "constant") != "constant":
            self.fail(node, f"mode {a.get('mode')!r} is not supported; supported: constant")
        pads = a.get("pads")
        if pads is None:
            pads = np.asarray(self.const(node, 1, "the pads")).tolist()
        value = a.get("value", 0.0)
        if len(node.input) > 2 and node.input[2]:
            value = self.scalar(node, 2, "the pad value")
        if len(node.input) > 3 and node.input[3]:
            self.fail(node, "an axes input is not supported")
        p = pads[2] if len(pads) == 8 else -1
        if index.ndim != 3 or list(pads) != [0, 0, p, p, 0, 0, p, p] or p < 0:
            self.fail(node, f"pads {list(pads)} are not supported; supported: the same padding on "
                            "all four sides of an [N, C, H, W] tensor")
        return node, p, float(value)

    def conv(self, node, index, act, pending_pad, name, in_shape):
        a = _attrs(node)
        bits, scales = self.binary_weights(node, 1, 0)       # [O, C, kh, kw]
        out_channels, channels, kh, kw = bits.shape
        if a.get("group", 1) != 1:
            self.fail(node, f"group {a.get('group')} is not supported; supported: group 1")
        if kh != kw:
            self.fail(node, f"kernel {kh}x{kw} is not supported; supported: square kernels")
        if any(s != 1 for s in a.get("strides", [1, 1])):
            self.fail(node, f"strides {list(a['strides'])} are not supported; supported: stride 1")
        if any(d != 1 for d in a.get("dilations", [1, 1])):
            self.fail(node, f"dilations {list(a['dilations'])} are not supported; supported: 1")
        if a.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
            self.fail(node, f"auto_pad {a['auto_pad']} is not supported; supported: explicit pads")
        pads = list(a.get("pads", [0, 0, 0, 0]))
        if len(set(pads)) != 1:
            self.fail(node, f"pads {pads} are not supported; supported: the same on all sides")
        pad, pad_value = pads[0], 0
        if index.ndim != 3 or not np.array_equal(index, _canonical(index.shape)):
            self.fail(node, "takes a tensor whose layout was changed by Reshape/Transpose; "
                            "supported: a Conv on the [N, C, H, W] output of the layer before")
        if index.shape[0] != channels:
            self.fail(node, f"weights for {channels} input channels, but the input has "
                            f"{index.shape[0]}")
        kind, scale = act
        if pending_pad is not None:
            pad_node, p, value = pending_pad
            if pad:
                self.fail(node, "pads a tensor that a Pad node already padded; supported: one")
            pad = p
            if kind == "input":
                level = _fraction(np.float32(value)) / scale
                if level.denominator != 1 or not -128 <= level <= 127:
                    self.fail(pad_node, f"pads with {value}, which is {float(level)} input steps; "
                                        "supported: an integer number of steps that fits int8")
                pad_value = int(level)
            elif _fraction(np.float32(value)) != -scale:
                self.fail(pad_node, f"pads a {kind} feature map with {value}; supported: its -1 "
                                    f"level ({-float(scale)})")
        elif pad and kind != "input":
            self.fail(node, f"pads a {kind} feature map with 0, which is not one of its values; "
                            "supported: -1 padding (a Pad node with the -1 level before an "
                            "unpadded Conv)")
        if pad >= kh:
            self.fail(node, f"pads {pad} with a {kh}x{kh} kernel; supported: pad < kernel")
        if min(in_shape[:2]) + 2 * pad < kh:
            self.fail(node, f"a {kh}x{kh} kernel does not fit the {in_shape[0]}x{in_shape[1]} input")
        layer = ComputeLayer(name=name, kind="conv", in_shape=in_shape,
                             in_bits={"input": 8, "binary": 1, "ternary": 2}[kind],
                             out_channels=out_channels, kernel=kh, pad=pad, pad_value=pad_value,
                             weights=bits.transpose(0, 2, 3, 1).reshape(out_channels, -1))
        affine = Affine([scale * s for s in scales])
        if len(node.input) > 2 and node.input[2]:
            affine.shift([_fraction(v) for v in np.asarray(self.const(node, 2, "the bias")).reshape(-1)])
        return layer, affine

    def dense(self, node, index, act, name, in_shape):
        a = _attrs(node)
        if node.op_type == "Gemm":
            if a.get("transA", 0):
                self.fail(node, "transA = 1 is not supported; supported: transA = 0")
            bits, scales = self.binary_weights(node, 1, 0 if a.get("transB", 0) else 1)
        else:
            bits, scales = self.binary_weights(node, 1, 1)
        if bits.ndim != 2:
            self.fail(node, f"weights of rank {bits.ndim} are not supported; supported: a matrix")
        if index.ndim != 1:
            self.fail(node, f"multiplies a rank-{index.ndim + 1} tensor; supported: [N, F] input "
                            "(Flatten or Reshape a feature map first)")
        if bits.shape[1] != index.size:
            self.fail(node, f"weights for {bits.shape[1]} inputs, but the input has {index.size}")
        weights = np.zeros_like(bits)
        weights[:, index] = bits              # ONNX column j is our HWC-flattened input index[j]
        kind, scale = act
        layer = ComputeLayer(name=name, kind="dense", in_shape=in_shape,
                             in_bits={"input": 8, "binary": 1, "ternary": 2}[kind],
                             out_channels=bits.shape[0], weights=weights)
        alpha = _fraction(np.float32(a.get("alpha", 1.0))) if node.op_type == "Gemm" else 1
        affine = Affine([scale * s * alpha for s in scales])
        if node.op_type == "Gemm" and len(node.input) > 2 and node.input[2]:
            beta = _fraction(np.float32(a.get("beta", 1.0)))
            outputs = _canonical((bits.shape[0],))
            affine.shift([beta * c for c in self.channel_values(node, 2, outputs, "the bias")])
        return layer, affine

    def maxpool(self, node, index):
        a = _attrs(node)
        kernel = list(a.get("kernel_shape", []))
        if len(kernel) != 2 or kernel[0] != kernel[1]:
            self.fail(node, f"kernel {kernel} is not supported; supported: square kernels")
        k = kernel[0]
        checks = [
            (list(a.get("strides", [1, 1])) == [k, k], f"strides {a.get('strides')}",
             "stride = kernel"),
            (not any(a.get("pads", [])), f"pads {a.get('pads')}", "no padding"),
            (not a.get("ceil_mode", 0), "ceil_mode 1", "floor mode"),
            (all(d == 1 for d in a.get("dilations", [1, 1])), f"dilations {a.get('dilations')}",
             "no dilation"),
            (a.get("auto_pad", "NOTSET") in ("NOTSET", "VALID"), f"auto_pad {a.get('auto_pad')}",
             "explicit pads")]
        for ok, what, supported in checks:
            if not ok:
                self.fail(node, f"{what} is not supported; supported: {supported}")
        if index.ndim != 3 or not np.array_equal(index, _canonical(index.shape)):
            self.fail(node, "pools a tensor whose layout was changed by Reshape/Transpose")
        if k > min(index.shape[1:]):
            self.fail(node, f"kernel {k} is larger than the {index.shape[1]}x{index.shape[2]} input")
        return k

    # -------------------------------------------------------- what follows an accumulation

    def channel_values(self, node, input_index, index, what, *, vector=False):
        """A constant's value per channel (axis 1 of [N, C, ...]) as Fractions; ``vector``: the
        constant is a [C] vector (a batch norm's parameters), else it broadcasts to the tensor."""
        value = np.asarray(self.const(node, input_index, what), dtype=np.float32)
        if vector:
            if value.shape != index.shape[:1]:
                self.fail(node, f"{what} has shape {list(value.shape)}, expected "
                                f"[{index.shape[0]}]")
            return [_fraction(v) for v in value]
        full = (1,) + index.shape
        try:
            if value.ndim > len(full):
                raise ValueError
            spread = np.broadcast_to(value, full)
        except ValueError:
            self.fail(node, f"{what} of shape {list(value.shape)} does not fit the tensor "
                            f"{list(full)}")
        per_channel = spread[0].reshape(index.shape[0], -1)
        if not (per_channel == per_channel[:, :1]).all():
            self.fail(node, f"{what} varies within a channel; supported: one value per channel")
        return [_fraction(v) for v in per_channel[:, 0]]

    def scaling(self, node, index, affine):
        op = node.op_type
        first = node.input[0] not in self.computed
        values = self.channel_values(node, 0 if first else 1, index, "the constant")
        if op == "Mul":
            affine.scale(values)
        elif op == "Div":
            if first:
                self.fail(node, "divides a constant by the accumulation; supported: x / constant")
            if any(v == 0 for v in values):
                self.fail(node, "divides by 0")
            affine.scale([1 / v for v in values])
        elif op == "Add":
            affine.shift(values)
        else:                                          # Sub: x - c, or c - x
            if first:
                affine.scale([Fraction(-1)] * len(values))
                affine.shift(values)
            else:
                affine.shift([-v for v in values])

    def batch_norm(self, node, index, affine):
        a = _attrs(node)
        if affine.v is not None:
            self.fail(node, "is a second batch norm on one accumulation; supported: one")
        if a.get("training_mode", 0):
            self.fail(node, "training_mode = 1 is not supported; supported: inference")
        gamma, beta, mean, var = (self.channel_values(node, i, index, what, vector=True)
                                  for i, what in
                                  ((1, "scale"), (2, "bias"), (3, "mean"), (4, "variance")))
        eps = _fraction(np.float32(a.get("epsilon", 1e-5)))
        var = [v + eps for v in var]
        if any(v <= 0 for v in var):
            self.fail(node, "has a variance + epsilon that is not positive")
        affine.batch_norm(gamma, beta, mean, var)

    def activation(self, node):
        """``(kind, scale, levels)`` of an activation quantizer: levels ``(θ, strict)``."""
        scale = self.scalar(node, 1, "the scale", positive=True)
        s = _fraction(np.float32(scale))
        supported = ("supported: 1-bit (BipolarQuant, or a 1-bit signed Quant) or 2-bit signed "
                     "narrow-range (-1/0/+1) activations with zero point 0")
        if node.op_type == "BipolarQuant":
            return "binary", s, [(Fraction(0), False)]
        a = _attrs(node)
        mode = self._check_rounding(node, a)
        zeropt = self.scalar(node, 2, "the zero point")
        bits = int(self.scalar(node, 3, "the bit width", integer=True))
        signed, narrow = bool(a.get("signed", 1)), bool(a.get("narrow", 0))
        if zeropt != 0:
            self.fail(node, f"zero point {zeropt} is not supported; {supported}")
        if bits == 1 and signed:
            return "binary", s, [(Fraction(0), False)]
        low, high = quant_range(signed, narrow, bits)
        if (bits, signed, narrow) != (2, True, True):
            self.fail(node, f"activations of {bits} bits ({'signed' if signed else 'unsigned'}"
                            f"{', narrow range' if narrow else ''}: levels {low}..{high}) are not "
                            f"supported; {supported}")
        levels = []
        for m in (0, 1):                    # count >= 1 iff q >= 0; count >= 2 iff q >= 1
            c, strict = rounds_at_least(mode, m)
            levels.append((s * c, strict))
        return "ternary", s, levels

    def acc_bound(self, net, layer):
        """The largest |acc| of ``layer``: MW times the largest input magnitude."""
        if layer.in_bits != 8:
            return layer.mw
        largest = max(int(np.abs(net.input.table).max()), abs(layer.pad_value))
        return layer.mw * max(1, largest)

    def scores(self, node, layer, affine, facts):
        channels = list(zip(affine.k, affine.l, affine.m, affine.v or [None] * len(affine.k)))
        if len(set(channels)) != 1:
            self.fail(node, "scales or offsets the class scores per class, which can change "
                            "their order; supported: one scale and offset for all classes "
                            "(e.g. Brevitas TensorNorm)")
        k, l, m, v = channels[0]
        if k == 0:
            self.fail(node, "scales every class score by 0")
        root_v = 1.0 if v is None else math.sqrt(float(v))
        if k < 0:                                   # scores = -acc keep the argmax
            layer.weights = 1 - layer.weights
            facts["score_sign"] = -1
        facts["score_scale"] = abs(float(k)) / root_v
        facts["score_offset"] = float(l) / root_v + float(m)
        layer.output = "scores"


def _load(path):
    try:
        import onnx
    except ImportError:
        raise QonnxImportError(f"{path}: importing QONNX needs the onnx package "
                               "(pip install -e '.[train]')") from None
    try:
        return onnx.load(str(path))
    except FileNotFoundError:
        raise QonnxImportError(f"{path}: no such QONNX file") from None
    except Exception as error:                      # onnx raises DecodeError and others
        raise QonnxImportError(f"{path}: not an ONNX model ({type(error).__name__})") from None


def import_qonnx_with_facts(path, *, name=None, pixel_divisor=DEFAULT_PIXEL_DIVISOR, top_k=1):
    """``(network, facts)`` for the QONNX file ``path``; see ``import_qonnx``.

    ``facts``: ``layers`` (our layer name → ONNX node name), ``input_scale`` (the float value of
    one input table step), ``score_scale``/``score_offset``/``score_sign`` (the model's outputs are
    ``score_scale * scores + score_offset``, with ``scores`` the network's integer scores, whose
    weights were negated where ``score_sign`` is −1), ``ties`` (thresholds where the folded value
    equals a quantizer boundary exactly: float evaluation may go either way there).
    """
    path = Path(path)
    model = _load(path)
    importer = _Importer(path, model, float(pixel_divisor))
    net, facts = importer.run(name or path.stem, top_k)
    net.description = (f"imported from QONNX {path.name}; raw input bytes p are x = p/"
                       f"{pixel_divisor:g}")
    return net, facts


def import_qonnx(path, *, name=None, pixel_divisor=DEFAULT_PIXEL_DIVISOR, top_k=1):
    """The ``gen.ir.Network`` of the QONNX file ``path``.

    The hardware takes raw bytes ``p``; the model is evaluated at ``x = p / pixel_divisor``
    (``float32``, as ``torch.tensor(image) / 255`` does) to make the input table. Raises
    ``QonnxImportError`` (one line naming the node) on anything unsupported.
    """
    return import_qonnx_with_facts(path, name=name, pixel_divisor=pixel_divisor, top_k=top_k)[0]
