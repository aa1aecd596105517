# validator.sync.session: the device side of the sync protocol, a cooperative state machine.
# SPDX-License-Identifier: MIT
#
# PROTOCOL.md §3-§4. One Session per ByteLink (hal.py). step() does a bounded slice of work
# and returns, so the card loop is never held up: at most one link write of _TX_CHUNK
# bytes, one readinto, one frame handled (one HMAC over <= 2 KiB) or _STEP_RECORDS records
# read from the log. service.tasks() drives step() as the asyncio task beside the card loop.
#
# The session talks to the rest of the validator only through a duck-typed "sync target"
# (README.md): info(), read_records(), ack(), push_begin/push_write/push_end/push_abort(),
# set_clock(), faults(). It imports nothing from app/txn/storage.
import gc
import struct

from micropython import const

from validator.sync import auth, wire
from validator.sync.xfer import Transfer

# Private copies of validator.sync.wire's values (PROTOCOL.md §1, §4; checked equal by
# tests/host/test_sync_consts.py): a const is inlined, an imported name costs heap.
_HDR = const(11)
_MAX_PAYLOAD = const(2048)
_MAX_FRAME = const(2079)
_PROTO_VERSION = const(1)
_INFO_LEN = const(44)
_T_HELLO = const(0x01)
_T_CHALLENGE = const(0x02)
_T_AUTH = const(0x03)
_T_INFO = const(0x04)
_T_INFO_REQ = const(0x05)
_T_PULL = const(0x10)
_T_ACK = const(0x12)
_T_PUSH_BEGIN = const(0x20)
_T_PUSH_DATA = const(0x21)
_T_PUSH_END = const(0x22)
_T_SET_CLOCK = const(0x30)
_T_GET_FAULTS = const(0x31)
_T_FAULTS = const(0x32)
_T_RESULT = const(0x3F)
_T_BYE = const(0x7E)
_T_ERROR = const(0x7F)
_OK = const(0)
_E_AUTH = const(1)
_E_MAC = const(2)
_E_REPLAY = const(3)
_E_PROTO = const(4)
_E_STORAGE = const(8)
_E_BUSY = const(9)

_S_IDLE = const(0)  # waiting for HELLO
_S_AUTH = const(1)  # CHALLENGE sent, waiting for AUTH
_S_READY = const(2)  # authenticated
_TX_CHUNK = const(512)  # bytes per link write: 44 ms at 115200 baud, never blocks long
_IDLE_MS = const(30000)
_FRAME_GAP_MS = const(1000)


class Session(Transfer):
    """Device side of one sync link.

    target  -- the sync target (README.md)
    keys    -- (device_id, Kd, Kc) as from auth.parse_keys(); Kc is not used here
    urandom -- n -> n random bytes (board.urandom)
    clock   -- hal Clock (ticks_ms/ticks_diff); a monotonic default when None
    guard   -- a one-element list shared by the sessions of all links of one device, so
               only one is authenticated at a time (others get E_BUSY); None = private
    """

    def __init__(self, link, target, keys, urandom, clock=None, guard=None):
        self._guard = guard if guard is not None else [None]
        self.link = link
        self._keys = keys
        self._urandom = urandom
        if clock is None:  # tests and depot.devsim; a validator always passes its board clock
            import time

            from validator.sync.ticks import TicksClock

            clock = TicksClock(time)
        self._clock = clock
        self.dec = wire.Decoder()
        self._xfer_init(target, memoryview(bytearray(_MAX_FRAME)))  # target, _txmv, pull/push
        self._tx_off = 0
        self._tx_len = 0
        self._nonce = bytearray(32)  # host nonce Nh (0..15), device nonce Nd (16..31)
        self._last_rx = self._clock.ticks_ms()
        # counters (tests, bench, fault log)
        self.sessions = 0
        self.refused = 0  # frames refused for auth/MAC/replay reasons
        self._end_after_tx = False
        self.last_fault = None
        self._reset()

    # -- session state --------------------------------------------------------------
    def _reset(self):
        if self._guard[0] is self:
            self._guard[0] = None
        self.state = _S_IDLE
        self._tx_mac = None
        self._rx_mac = None
        self._tx_seq = 0
        self._rx_seq = 0
        self._pulling = 0
        self._building = False
        if self._push_off >= 0:
            try:
                self.target.push_abort()
            except Exception:
                pass
        self._push_off = -1

    def attach(self, link):
        """Switch to a new link (a new TCP connection); the old session state is dropped."""
        self.link = link
        self._reset()
        self.dec.reset()
        self._tx_len = self._tx_off = 0

    def authenticated(self):
        return self.state == _S_READY

    # -- tx ---------------------------------------------------------------------------
    def _send(self, ftype, plen):
        """Encode the payload already at _txmv[_HDR:] and start sending it."""
        if self._tx_mac is not None:
            self._tx_seq += 1
        self._tx_len = wire.encode(self._txmv, ftype, 0, self._tx_seq, plen, self._tx_mac)
        self._tx_off = 0

    def _result(self, req, code, arg=0):
        struct.pack_into(">BBI", self._txmv, _HDR, req, code, arg)
        self._send(_T_RESULT, 6)

    def _error(self, code, end=True):
        self._txmv[_HDR] = code
        self._send(_T_ERROR, 1)
        if end:
            # the ERROR frame is MAC'd with the keys of the session it ends (if any)
            self._end_after_tx = True

    def _flush(self):
        n = self._tx_len - self._tx_off
        if n > _TX_CHUNK:
            n = _TX_CHUNK
        w = self.link.write(self._txmv[self._tx_off :], n)
        if w:
            self._tx_off += w
        if self._tx_off >= self._tx_len:
            self._tx_off = self._tx_len = 0
            if self._end_after_tx:
                self._end_after_tx = False
                self._reset()

    def busy(self):
        """True while a frame is being sent or a batch assembled."""
        return self._tx_len > 0 or self._building

    # -- the step -------------------------------------------------------------------
    def step(self):
        """Do one bounded slice of work. Returns True if it did something."""
        if self._tx_len:
            self._flush()
            return True
        if self._building:
            self._build_batch()
            return True
        sp = self.dec.rx_space()
        n = self.link.readinto(sp)
        if n:
            self.dec.rx_commit(n)
            self._last_rx = self._clock.ticks_ms()
        try:
            got = self.dec.next()
        except Exception:  # never let line data kill the task
            self.dec.reset()
            got = False
        if got:
            self._handle()
            return True
        if self._pulling and self._window_open():
            self._start_batch()
            return True
        if n:
            return True
        quiet = self._clock.ticks_diff(self._clock.ticks_ms(), self._last_rx)
        if quiet > _FRAME_GAP_MS and self.dec.pending():
            self.dec.skip()  # PROTOCOL.md §1: a partial frame older than 1 s is dropped
            return True
        if self.state != _S_IDLE and quiet > _IDLE_MS:
            self._reset()
            self.dec.reset()
        return False

    # -- frame dispatch ---------------------------------------------------------------
    def _handle(self):
        d = self.dec
        t = d.type
        if t == _T_HELLO:
            return self._on_hello(d.payload)
        if self.state == _S_AUTH and t == _T_AUTH:
            return self._on_auth(d.payload)
        if self.state != _S_READY:
            self.refused += 1
            return self._error(_E_AUTH, False)
        # PROTOCOL.md §3.3: MAC first, then strictly increasing seq; nothing acted on before.
        if not self._rx_mac.check(d.hdr, d.payload, d.tag):
            self.refused += 1
            return self._error(_E_MAC)
        if d.seq <= self._rx_seq:
            self.refused += 1
            return self._error(_E_REPLAY)
        self._rx_seq = d.seq
        p = d.payload
        try:
            if t == _T_ACK:
                return self._on_ack(p)
            if t == _T_PULL:
                return self._on_pull(p)
            if t == _T_PUSH_DATA:
                return self._on_push_data(p, d.flags)
            if t == _T_PUSH_BEGIN:
                return self._on_push_begin(p)
            if t == _T_PUSH_END:
                return self._on_push_end()
            if t == _T_INFO_REQ:
                return self._send_info()
            if t == _T_SET_CLOCK:
                if len(p) != 4:
                    return self._error(_E_PROTO)
                return self._result(t, self.target.set_clock(struct.unpack_from(">I", p, 0)[0]))
            if t == _T_GET_FAULTS:
                n = self.target.faults(self._txmv[_HDR : _HDR + _MAX_PAYLOAD])
                return self._send(_T_FAULTS, n)
            if t == _T_BYE:
                self._result(t, _OK)
                self._end_after_tx = True
                return
            if t == _T_ERROR:
                return self._reset()
        except Exception as e:  # target fault (StorageError, ...) -> clear error, not a crash
            self.last_fault = e
            return self._error(_E_STORAGE)
        return self._error(_E_PROTO)

    def _on_hello(self, p):
        if len(p) != 17 or p[0] != _PROTO_VERSION:
            self._reset()
            self.refused += 1
            return self._error(_E_PROTO, False)
        owner = self._guard[0]
        if owner is not None and owner is not self:
            return self._error(_E_BUSY, False)
        self._reset()
        nonce = self._nonce  # Nh from the HELLO, then Nd (PROTOCOL.md §3.1)
        nd = self._urandom(16)
        for i in range(16):
            nonce[i] = p[1 + i]
            nonce[16 + i] = nd[i]
        dev = self._keys[0]
        t = self._txmv
        t[_HDR] = _PROTO_VERSION
        struct.pack_into(">I", t, _HDR + 1, dev)
        t[_HDR + 5 : _HDR + 21] = nonce[16:32]
        mv = memoryview(nonce)
        t[_HDR + 21 : _HDR + 53] = auth.device_proof(self._keys[1], dev, mv[0:16], mv[16:32])
        self.state = _S_AUTH
        self._send(_T_CHALLENGE, 53)

    def _on_auth(self, p):
        kd = self._keys[1]
        mv = memoryview(self._nonce)
        want = auth.host_proof(kd, self._keys[0], mv[0:16], mv[16:32])
        if len(p) != 32 or not auth.equal(want, p):
            self.refused += 1
            self._reset()
            return self._error(_E_AUTH, False)
        if self._guard[0] is not None and self._guard[0] is not self:
            self._reset()
            return self._error(_E_BUSY, False)
        self._guard[0] = self
        # the session's MAC objects live until the next session: collect first so they
        # fill low holes instead of splitting the free run a later push needs. Only on
        # MicroPython's own heap (gc.mem_free): under CPython (host tests) a collection
        # costs ~3 ms and places nothing.
        if hasattr(gc, "mem_free"):
            gc.collect()
        self._tx_mac, self._rx_mac = auth.session_macs(kd, mv[0:16], mv[16:32], True)
        self.state = _S_READY
        self.sessions += 1
        self._send_info()

    def _send_info(self):
        # INFO payload, PROTOCOL.md §4.1 (wire_host.INFO_FMT / unpack_info on the host)
        struct.pack_into(">IIIIIHIIIIIH", self._txmv, _HDR, *self.target.info())
        self._send(_T_INFO, _INFO_LEN)

    # -- pull (PROTOCOL.md §4.2) ------------------------------------------------------
