"""Tier 3: device tests, skipped unless a board is named (make test-hw BOARD=... PORT=...)."""

import os

import pytest


def pytest_collection_modifyitems(config, items):
    if not os.environ.get("YKT_BOARD"):
        skip = pytest.mark.skip(reason="no board named (make test-hw BOARD=... PORT=...)")
        for item in items:
            item.add_marker(skip)
