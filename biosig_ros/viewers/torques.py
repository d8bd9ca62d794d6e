"""Joint torques for the live page: torque_node's two JointState streams (torque/muscle and
torque/inverse_dynamics: effort in N.m per DoF, stamp = the pose's capture time), kept on the
chosen DoFs only.

Each stream is a PoseSeries of its own (own stamps, own running message index, decimated by a
RateGate on the stamps); a point's values follow the chosen DoFs' order, null for a chosen DoF
the message does not name (the page says which). Cost per message: the chosen DoFs' lookup.
"""
from __future__ import annotations

from biosig_ros.viewers.streams import PoseSeries

TORQUE_UNIT = "N.m"
# Stream name on the page -> torque_node's source (the panel's names for them).
TORQUE_STREAMS = {"torque_muscle": "muscle", "torque_inverse_dynamics": "inverse_dynamics"}


def chosen_dofs(dofs) -> list[str]:
    """The DoFs to plot: blank names dropped (a parameter file's [''] = none)."""
    return [dof.strip() for dof in dofs if dof and dof.strip()]


class TorqueSeries(PoseSeries):
    """Efforts of the chosen DoFs from one torque topic."""

    def __init__(self, dofs: list[str], window_s: float, target_rate: float):
        super().__init__(window_s, target_rate)
        self.channel_names, self.unit = list(dofs), TORQUE_UNIT
        self._message_names: tuple = ()
        self._columns: list[int | None] = [None] * len(dofs)
        self.missing: list[str] = list(dofs)  # chosen DoFs the messages do not name
        self.available = 0                    # DoFs the messages name

    def meta(self) -> dict:
        return {**super().meta(), "missing": self.missing, "available": self.available}

    def add_efforts(self, names: list[str], efforts, stamp: float) -> None:
        """One JointState: its DoF names and efforts (N.m). ValueError when they do not pair."""
        if len(efforts) != len(names):
            raise ValueError(f"{len(names)} names, {len(efforts)} efforts")
        if tuple(names) != self._message_names:
            self._message_names = tuple(names)
            where = {name: i for i, name in enumerate(names)}
            self._columns = [where.get(dof) for dof in self.channel_names]
            self.missing = [d for d, c in zip(self.channel_names, self._columns) if c is None]
            self.available = len(names)
            self.version += 1  # the page learns which DoFs are missing
        # (non-finite efforts travel as null: see live_state.dumps_numbers)
        values = [None if c is None else float(efforts[c]) for c in self._columns]
        self.add_frame(values, stamp, self.channel_names, TORQUE_UNIT)

