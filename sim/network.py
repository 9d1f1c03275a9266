"""Simulate a whole accelerator in Verilator on a batch of images and compare with the golden model."""
from dataclasses import dataclass

import numpy as np
from amaranth import Shape

from gen import golden
from gen.build import TOP_NAME, elaborate
from sim.runner import run_cocotb

# Frames whose output is ignored when measuring the steady-state interval (pipeline filling).
WARMUP_FRAMES = 2


@dataclass
class NetworkSimResult:
    images: int
    labels: np.ndarray          # [N, top_k] from the RTL
    scores: np.ndarray          # [N, classes] from the RTL
    expected_labels: np.ndarray
    expected_scores: np.ndarray
    label_cycles: list          # cycle at which each frame's label left the accelerator
    expected_interval: int

    @property
    def labels_matching(self):
        return int((self.labels == self.expected_labels).all(axis=1).sum())

    @property
    def scores_matching(self):
        return int((self.scores == self.expected_scores).all(axis=1).sum())

    @property
    def measured_interval(self):
        """Mean cycles between consecutive labels after the pipeline has filled (None if too few)."""
        cycles = self.label_cycles[WARMUP_FRAMES:]
        if len(cycles) < 2:
            return None
        return (cycles[-1] - cycles[0]) / (len(cycles) - 1)


def image_words(images, lanes):
    """Input words (lists of ``lanes`` raw elements) for a batch of HWC images."""
    flat = np.asarray(images, dtype=np.int64).reshape(-1, lanes)
    return flat.tolist()


def simulate_network(net, fold, images, *, valid_probability=1.0, ready_probability=1.0, seed=0,
                     cxx_opt=0):
    """Run ``images`` ([N, H, W, C]) through the RTL of ``net`` (its C++ compiled at
    ``-O{cxx_opt}``); returns a ``NetworkSimResult``."""
    images = np.asarray(images)
    expected = golden.execute(net, images)
    graph, verilog_text = elaborate(net, fold)
    score_shape = Shape.cast(graph.score_stage.component.out_shape)
    label = graph.stages[-1].component
    params = {
        "seed": seed,
        "images": int(images.shape[0]),
        "input_words": image_words(images, graph.input_lanes),
        "input_lanes": graph.input_lanes,
        "input_width": net.input.bits,
        "label_lanes": len(label.o.payload),
        "label_width": Shape.cast(label.o.payload.shape().elem_shape).width,
        "classes": net.classes,
        "score_lanes": graph.stages[-2].out_lanes,
        "score_width": score_shape.width,
        "valid_probability": valid_probability,
        "ready_probability": ready_probability,
        "timeout_cycles": 20 * graph.interval + 10_000,
    }
    result = run_cocotb(verilog_text=verilog_text, toplevel=TOP_NAME,
                        test_module="sim.tb.network_tb", params=params, seed=seed,
                        cxx_opt=cxx_opt)
    return NetworkSimResult(
        images=int(images.shape[0]),
        labels=np.array(result["labels"]).reshape(expected.labels.shape),
        scores=np.array(result["scores"]).reshape(expected.scores.shape),
        expected_labels=expected.labels, expected_scores=expected.scores,
        label_cycles=result["label_cycles"], expected_interval=graph.interval)
