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
