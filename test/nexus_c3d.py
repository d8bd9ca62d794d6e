"""A `.c3d` file in the layout of a Vicon Nexus export, written with ezc3d for the tests.

Markers `Subj01:NAME` from the Wu model's own forward kinematics (millimetres, Z up), two
markers the model does not know, one unlabelled trajectory `*12`, one model marker absent
(SCAP_AA), NaN gaps; analogs: 16 Trigno EMG channels labelled `Muscle.EMGn` / `Sensor n.EMGn`,
force-plate channels `Fx1`... and a `Voltage.Sync` channel.

Options make it a real lab's capture (#22): a second labelled object (`second_subject`: its
markers `Obj:B1`... match no model marker), flat analog channels (`flat`: EMG labels made all
zero, and `im_emg` extra `IM EMGn` channels, all zero), and model markers labelled otherwise
(`rename`: {model name: label}, e.g. {"Acrom": "ACRO_tip", "STER": "ster"}).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

WU_MODEL = Path(__file__).resolve().parent.parent / "data" / "Wu_Shoulder_Model_mod_wt_wrapp.bioMod"

SUBJECT = "Subj01"
EMG_LABELS = ["Delt_ant.EMG1", "Delt_med.EMG2", "Delt_post.EMG3", "Biceps.EMG4",
              "Triceps.EMG5", "Trap_sup.EMG6"] + [f"Sensor {i}.EMG{i}" for i in range(7, 17)]
OTHER_ANALOGS = ["Fx1", "Fy1", "Fz1", "Mx1", "My1", "Mz1", "Voltage.Sync"]
EXTRA_MARKERS = ["RFIN", "LSHO"]
ABSENT = "SCAP_AA"
GAPS = {"DELT": (20, 35), "EPICm": (100, 104)}  # frames (inclusive) where a marker is NaN


def write_nexus_c3d(path, seconds: float = 2.0, seed: int = 0, second_subject: str = "",
                    flat: tuple[str, ...] = (), im_emg: int = 0,
                    rename: dict[str, str] | None = None) -> dict:
    """Write the file; returns what the tests check against (names, counts, data)."""
    import ezc3d

    from biosig_ros.processing.ik_model import load_model
    from biosig_ros.processing.ik_synthetic import synthetic_trajectory

    model = load_model(str(WU_MODEL))
    trajectory = synthetic_trajectory(model, seconds=seconds, noise=0.0005, seed=seed)
    names = [n for n in trajectory.marker_names if n != ABSENT]
    markers = trajectory.markers[:, [trajectory.marker_names.index(n) for n in names]] * 1000
    rng = np.random.default_rng(seed)
    frames = markers.shape[0]
    extra = rng.uniform(-500, 1500, (frames, len(EXTRA_MARKERS) + 1, 3))
    positions = np.concatenate([markers, extra], axis=1)              # frames x markers x 3
    for name, (first, last) in GAPS.items():
        positions[first:last + 1, names.index(name)] = np.nan
    rename = rename or {}
    labels = [f"{SUBJECT}:{rename.get(n, n)}" for n in names + EXTRA_MARKERS] + ["*12"]
    if second_subject:
        box = rng.uniform(-500, 1500, (frames, 4, 3))
        positions = np.concatenate([positions, box], axis=1)
        labels += [f"{second_subject}:B{i + 1}" for i in range(4)]

    analog_rate = 2000
    samples = frames * analog_rate // 100
    emg = rng.normal(0, 1e-4, (len(EMG_LABELS), samples))
    for label in flat:
        emg[EMG_LABELS.index(label)] = 0.0
    other = rng.normal(0, 1.0, (len(OTHER_ANALOGS), samples))
    im_labels = [f"IM EMG{i + 1}" for i in range(im_emg)]
    analogs = np.concatenate([emg, other, np.zeros((im_emg, samples))])

    c3d = ezc3d.c3d()
    c3d["parameters"]["POINT"]["RATE"]["value"] = [100]
    c3d["parameters"]["POINT"]["LABELS"]["value"] = labels
    c3d["parameters"]["POINT"]["UNITS"]["value"] = ["mm"]
    points = np.ones((4, len(labels), frames))
    points[:3] = np.transpose(positions, (2, 1, 0))
    c3d["data"]["points"] = points
    c3d["parameters"]["ANALOG"]["RATE"]["value"] = [analog_rate]
    c3d["parameters"]["ANALOG"]["LABELS"]["value"] = EMG_LABELS + OTHER_ANALOGS + im_labels
    c3d["parameters"]["ANALOG"]["UNITS"]["value"] = ["V"] * len(EMG_LABELS) + ["N"] * 3 + \
        ["Nmm"] * 3 + ["V"] + ["V"] * im_emg
    c3d["data"]["analogs"] = analogs[np.newaxis]
    c3d.write(str(path))
    return {"frames": frames, "samples": samples, "marker_names": names + EXTRA_MARKERS,
            "model_names": list(trajectory.marker_names), "emg": emg, "positions_mm": positions,
            "flat": list(flat) + im_labels,
            "live_emg": [label for label in EMG_LABELS if label not in flat]}
