"""How far a solved pose can be trusted: DoFs outside the model's ranges, and segments whose
visible markers cannot determine their DoFs.

A marker fixes 3 coordinates, but what it can determine depends on the DoFs it must explain:
on a segment that may translate, the first marker fixes 3 DoFs, a second 2 more (its distance
to the first is fixed), a third the last one; on a segment that only rotates about its joint,
a marker fixes 2 (its distance to the joint centre is fixed) and a second the third. So a free
6-DoF thorax needs 3 visible markers, a 3-DoF shoulder 2, an elbow 1.

The markers of a segment determine the DoFs between it and the nearest ancestor that carries
markers of its own: in the Wu model the clavicle's markers determine the two sternoclavicular
rotations, which sit on the intermediate segments `clavicle_sternoclavicular_r1/r2`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from biosig_ros.processing.ik_model import IkModel

_GAINS_FREE = (3, 2, 1)     # DoFs fixed by the 1st, 2nd, 3rd marker of a translating segment
_GAINS_JOINTED = (2, 1)     # ... of a segment that only rotates


def markers_needed(translations: int, rotations: int) -> int | None:
    """Visible markers needed to determine these DoFs (None: no number of markers can)."""
    total = translations + rotations
    fixed = 0
    for count, gain in enumerate(_GAINS_FREE if translations else _GAINS_JOINTED, start=1):
        if fixed >= total:
            return count - 1
        fixed += gain
    return len(_GAINS_FREE if translations else _GAINS_JOINTED) if fixed >= total else None


@dataclass(frozen=True)
class Body:
    """A segment with markers and the DoFs those markers must determine."""

    name: str
    dofs: tuple[int, ...]
    markers: tuple[int, ...]
    needed: int | None       # visible markers needed; None: never determined by markers


def bodies(model: IkModel) -> list[Body]:
    """The model's segments that carry markers, each with the DoFs it determines, then (named
    after their segment) DoFs that no marker can reach."""
    marked = [bool(markers) for markers in model.segment_markers]
    covered: set[int] = set()
    result = []
    for index, markers in enumerate(model.segment_markers):
        if not markers:
            continue
        dofs: list[int] = []
        segment = index
        while segment >= 0:
            dofs[:0] = model.segment_dofs[segment]
            segment = model.segment_parents[segment]
            if segment >= 0 and marked[segment]:
                break
        covered.update(dofs)
        result.append(_body(model, model.segment_names[index], dofs, markers))
    for index, dofs in enumerate(model.segment_dofs):
        lost = [d for d in dofs if d not in covered]
        if lost:
            result.append(Body(model.segment_names[index], tuple(lost), (), None))
    return [body for body in result if body.dofs]


def _body(model: IkModel, name: str, dofs: list[int], markers) -> Body:
    rotations = int(model.rotational[dofs].sum()) if dofs else 0
    return Body(name, tuple(dofs), tuple(markers),
                markers_needed(len(dofs) - rotations, rotations))


@dataclass
class PoseQuality:
    out_of_range: list[int]        # DoF indices outside the model's ranges
    underdetermined: list[str]     # body names with too few visible markers


class QualityCheck:
    """Per frame: which DoFs left the model's ranges and which segments were under-determined
    (a cost of a few microseconds: comparisons and one sum per segment)."""

    def __init__(self, model: IkModel, range_tolerance: float = 1e-6):
        self.model = model
        self.bodies = bodies(model)
        self._low = model.q_min - range_tolerance
        self._high = model.q_max + range_tolerance

    def check(self, q: np.ndarray, visible: np.ndarray) -> PoseQuality:
        outside = np.flatnonzero((q < self._low) | (q > self._high) | ~np.isfinite(q))
        under = [body.name for body in self.bodies
                 if body.needed is None or int(visible[list(body.markers)].sum()) < body.needed]
        return PoseQuality(outside.tolist(), under)
