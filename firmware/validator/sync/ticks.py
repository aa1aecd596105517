# validator.sync.ticks: a monotonic ms clock (hal Clock subset) for sessions built without one.
# SPDX-License-Identifier: MIT
#
# Only tests and depot.devsim construct a Session without a clock; a validator passes its
# board clock, so the firmware never imports this module. Common subset.


class TicksClock:
    def __init__(self, time):
        self._t = time  # the time module, imported by the caller (sync/session.py)
        self._ms = getattr(time, "ticks_ms", None)

    def ticks_ms(self):
        if self._ms is not None:
            return self._ms()
        return int(self._t.monotonic() * 1000) & 0x3FFFFFFF

    def ticks_diff(self, a, b):
        d = getattr(self._t, "ticks_diff", None)
        if d is not None:
            return d(a, b)
        return ((a - b + 0x20000000) & 0x3FFFFFFF) - 0x20000000
