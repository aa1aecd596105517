# Test path setup: firmware, host tools, the CPython micropython shim and tests/ itself.
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for p in ("firmware", "host_tools", "host_tools/shims", "tests"):
    path = os.path.join(ROOT, p)
    if path not in sys.path:
        sys.path.insert(0, path)
