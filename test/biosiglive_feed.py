"""biosiglive's own Server fed with known frames, served the way StreamData.open_server serves
(each request gets the next frame produced after it arrived): used by
test/test_biosiglive_source.py and benchmarks/biosiglive_source.py."""
import threading
import time

import numpy as np
from biosiglive.streaming.server import Server

SAMPLES = 20          # per frame, as StreamData's 100 Hz loop of 2000 Hz EMG


class FeedingServer:
    """biosiglive's Server producing `rate` frames per second whose values are their sample
    indices (channel c: index + 1e6 c); sent[frame] = wall time its reply was sent."""

    def __init__(self, port, rate=100.0, pause_after=None):
        self.server = Server("127.0.0.1", port)
        self.server.start()
        self.rate = rate
        self.frame = 0
        self.sent = {}
        self.new_frame = threading.Condition()
        self.stop = threading.Event()
        self.pause_after = pause_after     # (frame, seconds): no answers for a while
        threading.Thread(target=self._produce, daemon=True).start()
        threading.Thread(target=self._serve, daemon=True).start()

    def _produce(self):
        start = time.monotonic()
        while not self.stop.is_set():
            time.sleep(max(0.0, start + (self.frame + 1) / self.rate - time.monotonic()))
            with self.new_frame:
                self.frame += 1
                self.new_frame.notify_all()

    def _serve(self):
        while not self.stop.is_set():
            try:
                connection, message = self.server.client_listening()
            except OSError:
                return
            with self.new_frame:
                self.new_frame.wait(1.0)
                frame = self.frame
            if self.pause_after and frame == self.pause_after[0]:
                time.sleep(self.pause_after[1])       # a slow server: frames go to nobody
            first = frame * SAMPLES
            data = np.arange(first, first + SAMPLES, dtype=float)[None, :] + \
                np.array([[0.0], [1e6]])
            self.sent[frame] = time.time()
            try:
                self.server.send_data({"raw_device_data": [data]}, connection, message)
            except OSError:
                pass                                  # the client gave up: its frame is lost
            connection.close()

    def close(self):
        self.stop.set()
        self.server.server.close()
