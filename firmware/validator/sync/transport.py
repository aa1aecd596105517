# validator.sync.transport: ByteLinks for sync over a tty (UART / USB-CDC / pty) or TCP.
# SPDX-License-Identifier: MIT
#
# Board glue builds these (house style §3.3: socket/select appear only in board glue or the
# sync transports). Common subset: MicroPython unix port and CPython. Both links never
# block the event loop: reads return what is there (a tty is put in VMIN=0/VTIME=0 mode,
# toolchain.md §1 P4, sockets are non-blocking, P5), writes are attempted only when poll
# says the channel is writable and are short (the session writes <= 512 bytes a step).
# No flush() on a tty: it raises EINVAL on the unix port.
import select

from micropython import const

_EAGAIN = const(11)
# poll event bits: MicroPython's select uses MP_STREAM_POLL_RD/WR/ERR/HUP = 1/4/8/16 on
# every port, the same values as Linux (CPython); consts take no heap on the device
_POLLIN = const(1)
_POLLOUT = const(4)
_BAD = const(24)  # POLLHUP | POLLERR


class StreamLink:
    """hal ByteLink over a pollable stream (file object or socket)."""

    def __init__(self, stream, close_with=None, eof_closes=True):
        self.s = stream
        # a socket at EOF is finished; a tty with nobody on the other end (hang-up) is just
        # quiet until the next depot plugs in, so it never closes
        self._eof_closes = eof_closes
        self._close_with = close_with
        self._pin = select.poll()
        self._pin.register(stream, _POLLIN)
        self._pout = select.poll()
        self._pout.register(stream, _POLLOUT)
        ri = getattr(stream, "readinto", None)
        if ri is None:
            ri = stream.recv_into  # CPython socket
        self._readinto = ri
        self._cpy_sock = not hasattr(stream, "readinto") and hasattr(stream, "send")
        self.closed = False

    def _ready(self, p, ms):
        for ev in p.poll(ms):
            if ev[1] & _BAD and not ev[1] & _POLLIN:
                if self._eof_closes:
                    self.closed = True
                return False
            return True
        return False

    def readinto(self, buf):
        if self.closed or not self._ready(self._pin, 0):
            return 0
        try:
            n = self._readinto(buf)
        except OSError as e:
            if e.args and e.args[0] == _EAGAIN:
                return 0
            self.closed = True
            return 0
        if n is None:
            return 0
        if n == 0 and self._eof_closes:  # readable but nothing: the peer closed (EOF)
            self.closed = True
        return n

    def write(self, buf, n):
        if self.closed or not self._ready(self._pout, 0):
            return 0
        try:
            if self._cpy_sock:
                return self.s.send(memoryview(buf)[:n])
            try:
                w = self.s.write(buf, n)
            except TypeError:  # CPython file objects take no length
                w = self.s.write(memoryview(buf)[:n])
            return w or 0
        except OSError as e:
            if e.args and e.args[0] == _EAGAIN:
                return 0
            self.closed = True
            return 0

    def wait(self, ms):
        return self._ready(self._pin, ms)

    def drain(self):
        b = bytearray(64)
        while self.readinto(b):
            pass

    def close(self):
        self.closed = True
        try:
            self.s.close()
        except Exception:
            pass
        if self._close_with is not None:
            try:
                self._close_with.close()
            except Exception:
                pass


def open_tty(path):
    """A tty (real UART device or a pty) in raw, non-blocking-read mode."""
    import sys
    import termios

    # CPython (tests, depot.devsim) needs unbuffered for a tty; MicroPython has no such arg
    cpy = sys.implementation.name != "micropython"
    f = open(path, "r+b", 0) if cpy else open(path, "r+b")
    fd = f.fileno()
    getattr(termios, "setraw")(fd)  # unix port and CPython have it; the stubs do not
    a = termios.tcgetattr(fd)
    a[6][6] = 0  # VMIN: return what is there
    a[6][5] = 0  # VTIME: do not wait
    termios.tcsetattr(fd, termios.TCSANOW, a)
    return StreamLink(f, eof_closes=False)


def tcp_connect(host, port, tls=False, ca=None):
    """Device connects out to a depot (Wi-Fi). tls=True wraps with ssl where the board has
    it (the unix port has Mbed TLS). ca: the CA certificate (DER bytes) pinned at flashing:
    the depot's certificate must chain to it and name `host`, else the handshake fails
    (OSError) and nothing is sent -- a man in the middle with another certificate gets no
    session (docs/SECURITY.md "Links"). Without ca the peer is not checked (the sync
    protocol still authenticates both ends and MACs every frame, PROTOCOL.md §3)."""
    import socket

    s = socket.socket()
    s.connect(socket.getaddrinfo(host, port)[0][-1])
    if tls:
        import ssl

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if ca:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(cadata=ca)
        else:
            ctx.verify_mode = ssl.CERT_NONE
        try:
            s = ctx.wrap_socket(s, server_hostname=host)
        except Exception:
            s.close()
            raise OSError("TLS: depot certificate refused")
    s.setblocking(False)
    return StreamLink(s)


class TcpListener:
    """Device accepts a depot connection; binds loopback unless told otherwise."""

    def __init__(self, port, host="127.0.0.1"):
        import socket

        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(socket.getaddrinfo(host, port)[0][-1])
        self.sock.listen(1)
        self.sock.setblocking(False)
        self._p = select.poll()
        self._p.register(self.sock, _POLLIN)

    def accept(self):
        """-> StreamLink or None when nobody is connecting (never blocks)."""
        if not self._p.poll(0):
            return None
        import gc

        if hasattr(gc, "mem_free"):  # MicroPython's heap (see session._on_auth)
            gc.collect()  # the link's objects live as long as the connection: place them low
        try:
            c, _ = self.sock.accept()
        except OSError:
            return None
        c.setblocking(False)
        return StreamLink(c)

    def close(self):
        self.sock.close()
