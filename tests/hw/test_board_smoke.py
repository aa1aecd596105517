"""Tier 3: the tier-1 suite on the device through `mpremote mount`, then a PN532 check."""

import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_hw_when_mounted_tier1_runs_on_device():
    port = os.environ["YKT_PORT"]
    r = subprocess.run(["mpremote", "connect", port, "mount", ROOT, "exec",
                        "import sys; sys.path[:0] = ['/remote/firmware', '/remote/host_tools',"
                        " '/remote/tests']; sys.argv = ['mprun', 'pn532']; "
                        "exec(open('/remote/tests/mprun.py').read())"],
                       capture_output=True, text=True, timeout=600)
    assert " 0 failed" in r.stdout, r.stdout + r.stderr
