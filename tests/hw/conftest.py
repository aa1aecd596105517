"""Tier 3: device tests, skipped unless a board is named (make test-hw BOARD=... PORT=...)."""

import os

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


def pytest_collection_modifyitems(config, items):
    if os.environ.get("YKT_BOARD"):
        return
    skip = pytest.mark.skip(reason="no board named (make test-hw BOARD=... PORT=...)")
    for item in items:  # this hook sees every collected item: touch only tests/hw ones
        if str(item.path).startswith(HERE + os.sep):
            item.add_marker(skip)
