# validator.sync.service: start the sync tasks of a validator from its board configuration.
# SPDX-License-Identifier: MIT
#
# For validator.app.run(board, processor, extra_tasks=tasks(...)): each returned callable
# t(v) is a coroutine function the app schedules beside the card loop (house style §13).
# cfg (the unix board's `sync` entry, or a real board's settings) may hold:
#   "tty": "/dev/pts/N" or a UART/USB-CDC StreamLink already built ("link")
#   "listen": 7000 (accept a depot; "listen_host" default 127.0.0.1)
#   "connect": "host:port" (connect out to a depot, every "retry_s" seconds; "tls": bool;
#              "tls_ca": file of the CA certificate (DER) pinned at flashing -- the depot's
#              certificate must chain to it (transport.tcp_connect, docs/SECURITY.md);
#              "up": optional callable -> bool, e.g. a Wi-Fi station's isconnected: no dial
#              while it is False)
# All sessions share one guard: only one is authenticated at a time (E_BUSY for others).
from micropython import const

from validator.sync import transport
from validator.sync.session import Session

_IDLE_MS = const(5)
_BUSY_STEPS = const(4)


def _sleep(ms):
    import asyncio

    f = getattr(asyncio, "sleep_ms", None)  # MicroPython; CPython (tests) has sleep()
    return f(ms) if f is not None else asyncio.sleep(ms / 1000)


async def _drive(s, get_link):
    """Step the session; get_link() -> a live link or None (then wait and retry)."""
    k = 0
    while True:
        if s.link is None or getattr(s.link, "closed", False):
            link = get_link()
            if link is None:
                await _sleep(50)
                continue
            s.attach(link)
        if s.step():
            k += 1
            if k >= _BUSY_STEPS:
                k = 0
                await _sleep(0)
        else:
            k = 0
            await _sleep(_IDLE_MS)


def tasks(cfg, target, keys, urandom, clock):
    """-> list of t(v) coroutine functions, one per configured sync transport."""
    guard = [None]
    out = []  # type: list
    if not cfg:
        return out
    link = cfg.get("link")
    if link is None and cfg.get("tty"):
        link = transport.open_tty(cfg["tty"])
    if link is not None:
        s1 = Session(link, target, keys, urandom, clock, guard)
        out.append(lambda v: _drive(s1, lambda: None))
    if cfg.get("listen"):
        lst = transport.TcpListener(cfg["listen"], cfg.get("listen_host", "127.0.0.1"))
        s2 = Session(None, target, keys, urandom, clock, guard)
        out.append(lambda v: _drive(s2, lst.accept))
    if cfg.get("connect"):
        host, port = cfg["connect"].rsplit(":", 1)
        tls = bool(cfg.get("tls"))
        ca = None
        if tls and cfg.get("tls_ca"):
            with open(cfg["tls_ca"], "rb") as f:
                ca = f.read()  # pinned for good: a depot with another CA gets no session
        retry = cfg.get("retry_s", 30) * 1000
        s3 = Session(None, target, keys, urandom, clock, guard)
        last = [None]
        up = cfg.get("up")

        def dial():
            if up is not None and not up():
                return None  # no network (Wi-Fi out of range): nothing to dial
            now = clock.ticks_ms()
            if last[0] is not None and clock.ticks_diff(now, last[0]) < retry:
                return None
            last[0] = now
            try:
                return transport.tcp_connect(host, int(port), tls, ca)
            except OSError:
                return None  # depot not there yet: try again later

        out.append(lambda v: _drive(s3, dial))
    return out
