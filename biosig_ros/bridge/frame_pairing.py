"""Frame numbers for joint states: sensor_msgs/JointState carries no index, but ik_node
publishes, for every solved frame, a MarkerResiduals with the frame_number of the marker frame
and the same header stamp. Pairing the two by stamp gives each recorded kinematics sample the
IK frame number, so frames IK skipped show as gaps in the recording's kinematics_data_index.

Joint states wait (in order) for their frame number. Without a frame-number topic
(`numbered=False`) they are numbered by a running counter at once. A joint state whose
residuals never come (lost, or the topic is silent) is released after `max_pending` later ones
with the previous number + 1, an estimate, counted in `estimated`.
"""
from __future__ import annotations

from collections import OrderedDict, deque

_REMEMBERED = 512  # stamps of recent frame numbers kept for joint states arriving late


class StampPairing:
    def __init__(self, numbered: bool = True, max_pending: int = 50):
        self.numbered = numbered
        self.max_pending = max_pending
        self._numbers: OrderedDict[int, int] = OrderedDict()   # stamp (ns) -> frame number
        self._pending: deque = deque()                          # (stamp_ns, payload)
        self._last: int | None = None
        self.counter = 0
        self.estimated = 0
        self.paired = 0

    def source(self) -> str:
        """How the indices are made, for diagnostics."""
        if not self.numbered:
            return "counter"
        return f"frame_number ({self.paired} paired, {self.estimated} estimated)"

    def on_number(self, stamp_ns: int, frame_number: int) -> list[tuple[object, int]]:
        """A MarkerResiduals: remember its frame number; returns the joint states it releases
        as (payload, frame number), in arrival order."""
        self._numbers[stamp_ns] = int(frame_number)
        if len(self._numbers) > _REMEMBERED:
            self._numbers.popitem(last=False)
        return self._drain()

    def on_item(self, stamp_ns: int, payload) -> list[tuple[object, int]]:
        """A joint state: returns what can be released now (maybe nothing yet)."""
        if not self.numbered:
            self.counter += 1
            return [(payload, self.counter - 1)]
        self._pending.append((stamp_ns, payload))
        return self._drain()

    def _drain(self) -> list[tuple[object, int]]:
        released = []
        while self._pending:
            stamp_ns, payload = self._pending[0]
            number = self._numbers.get(stamp_ns)
            if number is not None:
                self.paired += 1
            elif len(self._pending) > self.max_pending:
                number = (self._last + 1) if self._last is not None else 0
                self.estimated += 1
            else:
                break
            self._pending.popleft()
            self._last = number
            released.append((payload, number))
        return released
