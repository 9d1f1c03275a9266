"""boards.host: the serial protocol against a fake board that answers with the golden executor."""
import json
import threading
import time

import numpy as np
import pytest

from boards.host import HostError, classify, main
from gen import golden
from gen.networks import random_network


class FakeBoard:
    """A pyserial-like port: bytes written are images; each complete one is answered with its
    golden class indices. A break drops a partial image, as the UART top does."""

    def __init__(self, net, *, answer=True):
        self.net, self.answer = net, answer
        self.frame = int(np.prod(net.input.shape))
        self.pending, self.replies = bytearray(), bytearray()
        self.lock = threading.Lock()
        self.breaks = 0

    def reset_input_buffer(self):
        with self.lock:
            self.replies.clear()

    def send_break(self, duration):
        self.breaks += 1
        self.pending.clear()

    def write(self, data):
        self.pending += data
        while len(self.pending) >= self.frame:
            image = np.frombuffer(bytes(self.pending[:self.frame]), dtype=np.uint8)
            del self.pending[:self.frame]
            labels = golden.execute(self.net, image.reshape((1,) + tuple(self.net.input.shape)))
            if self.answer:
                with self.lock:
                    self.replies += bytes(int(v) for v in labels.labels[0])
        return len(data)

    def read(self, size):
        time.sleep(0.001)
        with self.lock:
            data = bytes(self.replies[:size])
            del self.replies[:size]
        return data


def small_net(top_k=1):
    return random_network("small", (4, 4, 3), [("dense", 12), ("dense", 5)], seed=1, top_k=top_k)


@pytest.mark.parametrize("top_k", [1, 2])
def test_classify_streams_images_and_reads_every_answer(top_k):
    net = small_net(top_k)
    images = np.random.default_rng(0).integers(0, 256, (25, 4, 4, 3))
    port = FakeBoard(net)
    labels, seconds = classify(port, images, top_k=top_k, baud=1_000_000)
    assert port.breaks == 1 and seconds > 0
    assert (labels == golden.execute(net, images).labels).all()


def test_a_silent_board_is_reported():
    net = small_net()
    with pytest.raises(HostError, match=r"the board answered 0 of 3 bytes in 0.2 s"):
        classify(FakeBoard(net, answer=False), np.zeros((3, 4, 4, 3)), baud=115_200,
                 timeout=0.2)


def test_host_refuses_a_build_of_another_target(tmp_path, capsys):
    (tmp_path / "report.json").write_text(json.dumps({"target": "ultrascale"}))
    assert main(["--port", "/dev/null", "--build", str(tmp_path)]) == 2
    assert "is a 'ultrascale' build; the host talks to an ecp5 build" in capsys.readouterr().err
