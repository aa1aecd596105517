# fwtest: the few helpers tier-1 tests share; runs on CPython (pytest) and MicroPython.
# SPDX-License-Identifier: MIT
import sys

MICROPYTHON = sys.implementation.name == "micropython"
VERBOSE = False

if MICROPYTHON:

    class Skipped(Exception):
        pass

else:
    import pytest

    Skipped = pytest.skip.Exception


def skip(reason):
    raise Skipped(reason)


def need_micropython(what="this test"):
    if not MICROPYTHON:
        skip(what + " needs the MicroPython runtime")


def raises(exc, fn, *args):
    """Call fn(*args) and return the exception it raised; fail if it did not raise exc."""
    try:
        fn(*args)
    except exc as e:
        return e
    raise AssertionError("%s not raised" % exc.__name__)


def heap_locked(fn):
    """Run fn() with the heap locked (MicroPython); return bytes allocated meanwhile.

    Warm up first by calling fn() yourself. On the unix port an allocation inside a
    heap_lock() raises MemoryError, which is reported as a failure; the return value is
    then the difference of gc.mem_alloc() around the call (0 when nothing allocated).
    """
    need_micropython("allocation check")
    import gc

    import micropython

    gc.collect()
    gc.disable()
    before = gc.mem_alloc()
    micropython.heap_lock()
    try:
        fn()
    finally:
        micropython.heap_unlock()
        gc.enable()
    return gc.mem_alloc() - before
