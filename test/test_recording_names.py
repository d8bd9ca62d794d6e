"""Any recording name given to start_recording is refused with a reason or used, never a crash
(#22): 260 characters, control characters (NUL), '..', slashes, a directory name; checked in
the shared path code and over the service of both recorders (the node stays up and records a
good name afterwards)."""
import pytest
from std_srvs.srv import Trigger

from biosig_ros.bridge.bio_recorder import BioRecorder, RecorderSettings
from biosig_ros.bridge.record_files import PathRefused, RecordFileSettings
from biosig_ros.errors import ConfigError
from biosig_ros.srv import StartRecording
from ros_harness import NodeProcess, RosProbe

# (name, a word of the reason)
BAD_NAMES = [
    ("x" * 260, "too long"),
    ("day1/" + "y" * 250 + ".bio", "too long"),
    ("nul\x00name", "control characters"),
    ("line\nbreak", "control characters"),
    ("..", "'..'"),
    ("a/../../b", "'..'"),
    ("/", "absolute"),
    ("/etc/passwd", "absolute"),
    ("day1/", "directory"),
    (".", "directory"),
    ("   ", "empty"),
]


@pytest.mark.parametrize("name, reason", BAD_NAMES)
def test_bad_names_are_refused_with_the_reason(tmp_path, name, reason):
    recorder = BioRecorder({"raw_device_data": 1},
                           RecorderSettings(record_directory=str(tmp_path / "records")))
    with pytest.raises(PathRefused, match=reason):
        recorder.start(name)
    assert not recorder.recording
    assert not (tmp_path / "records").exists() or not any((tmp_path / "records").rglob("*.bio"))


def test_long_and_nested_names_within_the_limits_are_used(tmp_path):
    recorder = BioRecorder({"raw_device_data": 1}, RecorderSettings(
        record_directory=str(tmp_path), max_file_bytes=0))
    name = "day 1/" + "é" * 100          # 200 bytes in UTF-8: allowed
    path = recorder.start(name)
    recorder.stop()
    assert path == tmp_path / "day 1" / ("é" * 100 + ".bio") and path.is_file()


def test_a_bad_record_path_parameter_is_a_configuration_error():
    with pytest.raises(ConfigError, match="record_path.*too long"):
        RecordFileSettings(record_path="z" * 300)


@pytest.mark.parametrize("module, name, suffix", [
    ("biosig_ros.nodes.bridge_node", "bridge", ".bio"),
    ("biosig_ros.nodes.mcap_recorder_node", "mcap_recorder", ".mcap"),
])
@pytest.mark.integration
def test_the_recorders_refuse_bad_names_over_the_service_and_keep_running(
        tmp_path, module, name, suffix):
    params = {"record_directory": str(tmp_path), "max_file_bytes": 0}
    if name == "bridge":
        params["port"] = 0
    with RosProbe(f"names_probe_{name}") as probe, NodeProcess(module, name, params) as node:
        service = f"/{name}/start_recording"
        for bad, reason in BAD_NAMES:
            response = probe.call(StartRecording, service, StartRecording.Request(path=bad))
            if "\x00" in bad:  # a ROS string ends at NUL: the node sees "nul", a good name
                assert response.success and response.path.endswith(f"nul{suffix}")
                assert probe.call(Trigger, f"/{name}/stop_recording", Trigger.Request()).success
            else:
                assert not response.success and reason in response.message, (bad,
                                                                              response.message)
            assert node.alive(), node.output()
        response = probe.call(StartRecording, service, StartRecording.Request(path="good"))
        assert response.success, response.message
        assert response.path == str(tmp_path / f"good{suffix}")
        assert node.alive()
        assert "Traceback" not in node.output(), node.output()
