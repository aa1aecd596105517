"""argparse types for ykt options: bad input fails before any work, in one line naming the
option, the value and what is expected (argparse adds "argument --city:" and the value)."""

import argparse
import datetime


def _bad(what, v):
    return argparse.ArgumentTypeError("expected %s, got %r" % (what, v))


def decimal_digits(n):
    def conv(v):
        if len(v) != n or not v.isdigit() or not v.isascii():
            raise _bad("%d decimal digits" % n, v)
        return v
    conv.__name__ = "%d decimal digits" % n
    return conv


def is_hex(v):
    try:
        bytes.fromhex(v)
    except ValueError:
        return False
    return len(v) % 2 == 0 and " " not in v


def serial(v):
    if not 1 <= len(v) <= 20 or not v.isdigit() or not v.isascii():
        raise _bad("up to 20 decimal digits", v)
    return v


def hex_digits(n):
    def conv(v):
        if len(v) != n or not is_hex(v):
            raise _bad("%d hex digits" % n, v)
        return v
    conv.__name__ = "%d hex digits" % n
    return conv


def int_range(lo, hi, unit=""):
    def conv(v):
        try:
            x = int(v, 10)
        except ValueError:
            raise _bad("a whole number%s from %d to %d" % (unit, lo, hi), v)
        if not lo <= x <= hi:
            raise _bad("a whole number%s from %d to %d" % (unit, lo, hi), v)
        return x
    conv.__name__ = "number"
    return conv


def yyyymmdd(v):
    try:
        if len(v) != 8 or not v.isdigit():
            raise ValueError
        datetime.date(int(v[:4]), int(v[4:6]), int(v[6:]))
    except ValueError:
        raise _bad("a real date YYYYMMDD", v)
    return v


FEN_MAX = 2 ** 31 - 1
fen = int_range(0, FEN_MAX, " of fen")
