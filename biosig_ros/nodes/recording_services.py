"""Services and diagnostics of a RotatingRecorder, shared by bridge_node and mcap_recorder:
~/start_recording (biosig_ros/srv/StartRecording: a name inside the record directory, '' for
a timestamped one) and ~/stop_recording (std_srvs/srv/Trigger)."""
from __future__ import annotations

from rclpy.node import Node
from std_srvs.srv import Trigger

from biosig_ros.bridge.rotating_recorder import RecorderError
from biosig_ros.errors import ConfigError
from biosig_ros.srv import StartRecording


def recording_service(node: Node, recorder, what: str):
    """~/start_recording and ~/stop_recording for a RotatingRecorder (shared by the bridge
    and mcap_recorder); `what` names the sizes in the stop reply."""
    logger = node.get_logger()

    def start(request, response):
        try:
            path = recorder.start(request.path)
        except (RecorderError, ConfigError) as error:
            response.success, response.message = False, str(error)
            logger.warning(f"start_recording refused: {error}")
            return response
        except Exception as error:  # noqa: BLE001 - a request must never end the node
            response.success = False
            response.message = f"cannot record to that name: {type(error).__name__}: {error}"
            logger.error(f"start_recording refused: {response.message}")
            return response
        logger.info(f"recording to {path}")
        response.success, response.message, response.path = True, f"recording to {path}", str(path)
        return response

    def stop(request, response):
        try:
            path = recorder.stop()
        except RecorderError as error:
            response.success, response.message = False, str(error)
            return response
        logger.info(f"recording stopped: {path}")
        response.success = True
        response.message = f"{path} ({len(recorder.parts)} file(s)): {what()}"
        return response

    node.create_service(StartRecording, "~/start_recording", start)
    node.create_service(Trigger, "~/stop_recording", stop)


def recording_values(recorder) -> dict:
    """The recorder's state for diagnostics."""
    return {"recording": str(recorder.path) if recorder.recording else "no",
            "parts": len(recorder.parts), "records_written": recorder.records_written,
            "record_directory": str(recorder.directory)}


def recording_problem(recorder) -> str:
    """'' or the ERROR a recorder is in: stopped by itself, or failing writes."""
    if recorder.stopped_by:
        return recorder.stopped_by
    return recorder.last_error if recorder.write_errors and recorder.recording else ""
