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


def seconds(lo, hi):
    def conv(v):
        try:
            x = float(v)
        except ValueError:
            x = None
        if x is None or not lo <= x <= hi:  # also refuses nan
            raise _bad("seconds from %g to %g" % (lo, hi), v)
        return x
    conv.__name__ = "seconds"
    return conv


NET_SCHEMES = ("listen://", "tcp://", "socket://")


def host_port(v):
    """HOST:PORT (HOST may be empty = 127.0.0.1), PORT 1..65535 (0 too: any free port)."""
    host, sep, port = v.rpartition(":")
    if not sep or not port.isdigit() or not port.isascii() or not 0 <= int(port) <= 65535 \
            or any(c.isspace() for c in host):
        raise _bad("HOST:PORT with PORT 0..65535", v)
    return v


def port_url(v):
    """A serial device path (or a pyserial URL such as rfc2217://, loop://), or
    listen://HOST:PORT, tcp://HOST:PORT, socket://HOST:PORT with a valid port number."""
    for s in NET_SCHEMES:
        if v.startswith(s):
            try:
                host_port(v[len(s):])
            except argparse.ArgumentTypeError:
                raise _bad("%sHOST:PORT with PORT 0..65535" % s, v)
            return v
    if not v or v != v.strip():
        raise _bad("a serial device or listen://|tcp://|socket://HOST:PORT", v)
    return v


def heap_size(v):
    """A MicroPython -X heapsize value: bytes, or a number with k or m, 16k..64m."""
    n, unit = (v[:-1], v[-1].lower()) if v[-1:].lower() in ("k", "m") else (v, "")
    if not n.isdigit() or not n.isascii():
        raise _bad("a heap size such as 128k or 2m", v)
    b = int(n) << {"": 0, "k": 10, "m": 20}[unit]
    if not 16 << 10 <= b <= 64 << 20:
        raise _bad("a heap size from 16k to 64m", v)
    return v


def file_name(v):
    """A file name: not empty, not only spaces (an empty --scenario "" must not mean the
    default)."""
    if not v.strip():
        raise _bad("a file name", v)
    return v
