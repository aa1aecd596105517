"""Tier 3: the tier-1 suite on the device through `mpremote mount`, then a PN532 check."""

import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# the venv's mpremote, beside the interpreter running the tests: `make test-hw` works without
# an activated venv (PATH without .venv/bin), as cmd_flash and emu.romfs find it
MPREMOTE = os.path.join(os.path.dirname(sys.executable), "mpremote")
if not os.path.exists(MPREMOTE):
    MPREMOTE = shutil.which("mpremote") or "mpremote"


def test_hw_when_mounted_tier1_runs_on_device():
    port = os.environ["YKT_PORT"]
    r = subprocess.run([MPREMOTE, "connect", port, "mount", ROOT, "exec",
                        "import sys; sys.path[:0] = ['/remote/firmware', '/remote/host_tools',"
                        " '/remote/tests']; sys.argv = ['mprun', 'pn532']; "
                        "exec(open('/remote/tests/mprun.py').read())"],
                       capture_output=True, text=True, timeout=600)
    assert " 0 failed" in r.stdout, r.stdout + r.stderr
