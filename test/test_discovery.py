"""Localhost-only discovery for graphs and tests: the package's Fast DDS profile (loopback UDP,
no shared memory, see docs/graphs.md) where Fast DDS is used, LOCALHOST otherwise."""
import xml.etree.ElementTree as ElementTree

from biosig_ros.discovery import localhost_profile, restrict_discovery_to_localhost

NS = {"dds": "http://www.eprosima.com"}


def test_fast_dds_gets_the_profile_and_a_range_that_leaves_it_alone():
    environment = {"ROS_LOCALHOST_ONLY": "1"}
    restrict_discovery_to_localhost(environment, force=True)
    assert environment == {"FASTDDS_DEFAULT_PROFILES_FILE": str(localhost_profile()),
                           "ROS_AUTOMATIC_DISCOVERY_RANGE": "SYSTEM_DEFAULT"}


def test_a_choice_already_made_is_kept():
    for chosen in ({"ROS_AUTOMATIC_DISCOVERY_RANGE": "SUBNET"}, {"ROS_LOCALHOST_ONLY": "1"}):
        environment = dict(chosen)
        restrict_discovery_to_localhost(environment)
        assert environment == chosen


def test_another_rmw_or_a_profile_of_the_users_gets_the_localhost_range():
    for extra in ({"RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp"},
                  {"FASTDDS_DEFAULT_PROFILES_FILE": "/etc/mine.xml"},
                  {"FASTRTPS_DEFAULT_PROFILES_FILE": "/etc/mine.xml"}):
        environment = dict(extra)
        restrict_discovery_to_localhost(environment)
        assert environment == {**extra, "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    humble = {"ROS_DISTRO": "humble"}
    restrict_discovery_to_localhost(humble)
    assert humble == {"ROS_DISTRO": "humble", "ROS_LOCALHOST_ONLY": "1"}


def test_the_profile_stays_on_the_loopback_interface_without_shared_memory():
    root = ElementTree.parse(localhost_profile()).getroot()
    transports = list(root.iterfind(".//dds:transport_descriptor", NS))
    assert [t.findtext("dds:type", namespaces=NS) for t in transports] == ["UDPv4"]
    assert [a.text for a in transports[0].iterfind("dds:interfaceWhiteList/dds:address", NS)] \
        == ["127.0.0.1"]
    assert int(transports[0].findtext("dds:maxInitialPeersRange", namespaces=NS)) >= 32
    participant = root.find(".//dds:participant", NS)
    assert participant.get("is_default_profile") == "true"
    assert participant.findtext(".//dds:useBuiltinTransports", namespaces=NS) == "false"
    builtin = participant.find(".//dds:builtin", NS)
    assert builtin.find("dds:metatrafficMulticastLocatorList", NS) is None
    for kind in ("metatrafficUnicastLocatorList", "initialPeersList"):
        assert [a.text for a in builtin.iterfind(f"dds:{kind}//dds:address", NS)] == [
            "127.0.0.1"]


# --- the shared-memory stall (issue 21, item 5) ---------------------------------------------

from biosig_ros.discovery import choose_transport, shared_memory_risk  # noqa: E402


def test_the_runner_replaces_an_exported_localhost_range_by_the_profile_and_says_so():
    environment = {"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    for local in (True, False):
        chosen = dict(environment)
        notes = choose_transport(chosen, local=local)
        assert chosen == {"FASTDDS_DEFAULT_PROFILES_FILE": str(localhost_profile()),
                          "ROS_AUTOMATIC_DISCOVERY_RANGE": "SYSTEM_DEFAULT"}
        assert len(notes) == 1 and "replaced by the package's loopback-UDP profile" in notes[0]
        assert shared_memory_risk(chosen) == ""


def test_a_network_graph_gets_udp_as_fast_dds_builtin_transport():
    for given in ({}, {"ROS_AUTOMATIC_DISCOVERY_RANGE": "SUBNET"}):
        chosen = dict(given)
        assert choose_transport(chosen, local=False) == []
        assert chosen == {**given, "FASTDDS_BUILTIN_TRANSPORTS": "UDPv4"}
    mine = {"FASTDDS_BUILTIN_TRANSPORTS": "LARGE_DATA"}  # the user's choice is kept, and named
    (note,) = choose_transport(mine, local=False)
    assert mine == {"FASTDDS_BUILTIN_TRANSPORTS": "LARGE_DATA"}
    assert "shared memory is on" in note and "FASTDDS_BUILTIN_TRANSPORTS=UDPv4" in note


def test_opting_out_keeps_the_environment_and_names_the_risk_and_the_fix():
    environment = {"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    (note,) = choose_transport(environment, local=True, keep_shared_memory=True)
    assert environment == {"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    assert note.startswith("Fast DDS shared memory is on") and str(localhost_profile()) in note


def test_no_risk_is_named_for_another_rmw_or_a_users_profile():
    assert shared_memory_risk({"RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp",
                               "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}) == ""
    assert shared_memory_risk({"FASTRTPS_DEFAULT_PROFILES_FILE": "/etc/mine.xml"}) == ""
    assert shared_memory_risk({}) != ""   # Fast DDS' defaults: shared memory on
