# time (shim): the unix port's time module with the ESP32's wall clock (MicroPython ports
# count seconds from 2000-01-01; the unix port counts from 1970 and follows the host).
# SPDX-License-Identifier: MIT
#
# ticks_* are the unix port's own. time()/gmtime()/localtime()/mktime() use a wall clock
# that starts at 0 (2000-01-01 00:00:00) when the process starts, like the ESP32's
# internal RTC after power-up, and that machine.RTC().datetime(...) sets (set_wall).
import sys

_p = sys.path
sys.path = []  # hide this file: the built-in time is imported
try:
    import time as _t
finally:
    sys.path = _p
del _p

# the names the firmware and the frozen asyncio use, not a star import (heap: a module
# dict entry per name)
ticks_ms = _t.ticks_ms
ticks_us = _t.ticks_us
ticks_diff = _t.ticks_diff
ticks_add = _t.ticks_add
sleep = _t.sleep
sleep_ms = _t.sleep_ms
sleep_us = _t.sleep_us
_EPOCH = 946684800  # 2000-01-01 in Unix seconds
_base = [0, _t.ticks_ms()]  # wall seconds at the tick count


def set_wall(secs):
    _base[0] = secs
    _base[1] = _t.ticks_ms()


def time():
    return _base[0] + _t.ticks_diff(_t.ticks_ms(), _base[1]) // 1000


def gmtime(secs=None):
    return _t.gmtime((time() if secs is None else secs) + _EPOCH)


localtime = gmtime


def mktime(t):
    return _t.mktime(t) - _EPOCH
