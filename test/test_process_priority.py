"""lower_priority: every thread of the process gets the added nice value (in a process of its
own: lowering the test runner's priority would slow the rest of the run)."""
import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration

SCRIPT = """
import json, os, threading
from biosig_ros.ros.process_priority import lower_priority
assert lower_priority(0) == (True, "")
started, stop, seen = threading.Event(), threading.Event(), {}
def other():
    seen["tid"] = threading.get_native_id(); started.set(); stop.wait(5)
thread = threading.Thread(target=other); thread.start(); started.wait(5)
before = [os.getpriority(os.PRIO_PROCESS, t) for t in (0, seen["tid"])]
lowered, text = lower_priority(3)
after = [os.getpriority(os.PRIO_PROCESS, t) for t in (0, seen["tid"])]
stop.set(); thread.join()
print(json.dumps([before, after, lowered, text]))
"""


def test_every_thread_is_lowered_and_zero_changes_nothing():
    output = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                            timeout=60, check=True).stdout
    before, after, lowered, text = json.loads(output)
    assert after == [min(v + 3, 19) for v in before] and lowered, output
    assert text.startswith(f"nice {after[0]}"), output
