"""The panel's buttons: which service each calls, relative to the chosen namespace, and how
its answer reads (no ROS: the adapter maps `kind` to a service type and request)."""
from __future__ import annotations

from dataclasses import dataclass

START_RECORDING = "start_recording"  # biosig_ros/srv/StartRecording (path)
TRIGGER = "trigger"                  # std_srvs/srv/Trigger
CALIBRATE_MVC = "calibrate_mvc"      # biosig_ros/srv/CalibrateMvc (duration, output_file)
SET_TRUE = "set_true"                # std_srvs/srv/SetBool, data = true
SET_FALSE = "set_false"              # std_srvs/srv/SetBool, data = false


@dataclass(frozen=True)
class Action:
    key: str
    label: str
    service: str      # relative to the namespace
    kind: str
    group: str
    confirm: str = ""  # asked before calling (empty: no question)


ACTIONS = (
    Action("bridge_start", "Start .bio", "bridge/start_recording", START_RECORDING,
           "Recording"),
    Action("bridge_stop", "Stop .bio", "bridge/stop_recording", TRIGGER, "Recording"),
    Action("mcap_start", "Start MCAP", "mcap_recorder/start_recording", START_RECORDING,
           "Recording"),
    Action("mcap_stop", "Stop MCAP", "mcap_recorder/stop_recording", TRIGGER, "Recording"),
    Action("calibrate", "Calibrate MVC", "emg_processing/calibrate_mvc", CALIBRATE_MVC, "EMG"),
    Action("assist_enable", "Enable assist", "assist/enable", SET_TRUE, "Assist",
           confirm="Enable the exoskeleton's assistance? It will apply torques to the "
                   "subject's joints."),
    Action("assist_disable", "Disable", "assist/enable", SET_FALSE, "Assist"),
    Action("assist_stop", "STOP (latched)", "assist/stop", TRIGGER, "Assist"),
    Action("assist_reset", "Reset fault / stop", "assist/reset", TRIGGER, "Assist"),
)
ACTIONS_BY_KEY = {action.key: action for action in ACTIONS}


def service_name(namespace: str, action: Action) -> str:
    """The absolute service name of `action` in `namespace` ("/" or "/subject1")."""
    return "/" + "/".join(part for part in (namespace.strip("/"), action.service) if part)


def describe_answer(fields: dict) -> tuple[bool, str]:
    """(success, one line) from a response's fields (success, message, path, channel_names,
    mvc)."""
    success = bool(fields.get("success", False))
    text = fields.get("message", "") or ("done" if success else "refused")
    names, mvc = fields.get("channel_names") or [], fields.get("mvc") or []
    if success and len(mvc):
        text += " - MVC: " + ", ".join(f"{n} {v:.3g} V" for n, v in zip(names, mvc))
    return success, text


@dataclass
class Answer:
    """What a button's call came to, as the panel shows it."""
    action: Action
    service: str
    success: bool
    text: str
    absent: bool = False  # no server answered within the timeout

    def line(self) -> str:
        status = "OK" if self.success else ("ABSENT" if self.absent else "FAILED")
        return f"{self.action.label} [{self.service}]: {status}: {self.text}"


def absent_answer(action: Action, service: str, timeout: float) -> Answer:
    return Answer(action, service, False,
                  f"no {service} service in the graph (nothing answered within {timeout:g} s):"
                  " is its node running in this namespace?", absent=True)
