"""StampPairing: an input meets the quality of its frame whichever arrives first."""
import math

from biosig_ros.robot.stamp_pairing import StampPairing


def test_quality_first_then_input():
    pairing = StampPairing()
    assert pairing.quality(1.01, "flagged") is None
    assert pairing.input(1.01, ("pose",)) == "flagged"
    assert pairing.input(1.01, ("again",)) is None  # the quality was used once


def test_input_first_waits_for_its_own_frame_only():
    pairing = StampPairing()
    assert pairing.input(2.0, ("a",)) is None
    assert pairing.quality(1.99, "") is None          # another frame's: kept
    assert pairing.quality(2.0, "") == ("a",)
    assert pairing.quality(2.0, "") is None            # nothing waits any more
    assert pairing.input(1.99, ("old",)) == ""         # meets the kept quality


def test_a_newer_input_replaces_the_waiting_one():
    pairing = StampPairing()
    pairing.input(3.0, ("first",))
    pairing.input(3.01, ("second",))
    assert pairing.quality(3.0, "") is None
    assert pairing.quality(3.01, "") == ("second",)


def test_non_finite_stamps_never_pair_and_never_raise():
    pairing = StampPairing()
    assert pairing.input(math.nan, ("x",)) == ""       # through at once: freshness refuses it
    assert pairing.quality(math.inf, "") is None


def test_only_the_newest_qualities_are_kept():
    pairing = StampPairing(kept=3)
    for k in range(5):
        pairing.quality(float(k), f"q{k}")
    assert pairing.input(0.0, ("x",)) is None and pairing.input(1.0, ("x",)) is None
    assert pairing.input(4.0, ("x",)) == "q4"


def test_recent_by_stamp_keeps_the_newest_and_matches_stamps_to_the_nanosecond():
    from biosig_ros.robot.stamp_pairing import RecentByStamp

    recent = RecentByStamp(kept=2)
    for k, stamp in enumerate((1.0, 1.01, 1.02)):
        recent.keep(stamp, f"v{k}")
    assert 1.0 not in recent and 1.01 in recent and 1.010000001 not in recent
    assert recent.pop(1.02) == "v2" and recent.pop(1.02) is None
