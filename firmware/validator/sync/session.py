# validator.sync.session: the device side of the sync protocol, a cooperative state machine.
# SPDX-License-Identifier: MIT
#
# PROTOCOL.md §3-§4. One Session per ByteLink (hal.py). step() does a bounded slice of work
# and returns, so the card loop is never held up: at most one link write of _TX_CHUNK
# bytes, one readinto, one frame handled (one HMAC over <= 2 KiB) or _STEP_RECORDS records
# read from the log. run() is the asyncio task the app starts beside the card loop.
#
# The session talks to the rest of the validator only through a duck-typed "sync target"
# (README.md): info(), read_records(), ack(), push_begin/push_write/push_end/push_abort(),
# set_clock(), faults(). It imports nothing from app/txn/storage.
import struct

from micropython import const

from validator.sync import auth, wire
from validator.sync.wire import (
    E_AUTH,
    E_MAC,
    E_PROTO,
    E_REPLAY,
    E_STORAGE,
    HDR,
    MAX_PAYLOAD,
    OK,
    T_ACK,
    T_AUTH,
    T_BYE,
    T_CHALLENGE,
    T_ERROR,
    T_FAULTS,
    T_GET_FAULTS,
    T_HELLO,
    T_INFO,
    T_INFO_REQ,
    T_PULL,
    T_PUSH_BEGIN,
    T_PUSH_DATA,
    T_PUSH_END,
    T_RESULT,
    T_SET_CLOCK,
)
from validator.sync.xfer import Transfer

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
        self.device_id = keys[0]
        self._kd = keys[1]
        self._urandom = urandom
        if clock is None:  # tests and depot.devsim; a validator always passes its board clock
            import time

            from validator.sync.ticks import TicksClock

            clock = TicksClock(time)
        self._clock = clock
        self.dec = wire.Decoder()
        tx = bytearray(wire.MAX_FRAME)
        self._xfer_init(target, tx, memoryview(tx))  # target, _tx, _txmv, pull/push state
        self._tx_off = 0
        self._tx_len = 0
        self._nh = bytearray(auth.NONCE_LEN)
        self._nd = bytearray(auth.NONCE_LEN)
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
        self._pulling = False
        self._building = False
        if self._pushing:
            try:
                self.target.push_abort()
            except Exception:
                pass
        self._pushing = False
        self._push_off = 0

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
        """Encode the payload already at _tx[HDR:] and start sending it."""
        if self._tx_mac is not None:
            self._tx_seq += 1
        self._tx_len = wire.encode(self._tx, ftype, 0, self._tx_seq, plen, self._tx_mac)
        self._tx_off = 0

    def _result(self, req, code, arg=0):
        struct.pack_into(">BBI", self._tx, HDR, req, code, arg)
        self._send(T_RESULT, 6)

    def _error(self, code, end=True):
        self._tx[HDR] = code
        self._send(T_ERROR, 1)
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

    async def run(self, idle_ms=5, busy_every=4):
        """The asyncio task: app does asyncio.create_task(session.run())."""
        import asyncio

        sleep_ms = getattr(asyncio, "sleep_ms", None)
        k = 0
        while True:
            did = self.step()
            k += 1
            if not did:
                k = 0
                if sleep_ms is not None:
                    await sleep_ms(idle_ms)
                else:
                    await asyncio.sleep(idle_ms / 1000)
            elif k >= busy_every:
                k = 0
                if sleep_ms is not None:
                    await sleep_ms(0)
                else:
                    await asyncio.sleep(0)

    # -- frame dispatch ---------------------------------------------------------------
    def _handle(self):
        d = self.dec
        t = d.type
        if t == T_HELLO:
            return self._on_hello(d.payload)
        if self.state == _S_AUTH and t == T_AUTH:
            return self._on_auth(d.payload)
        if self.state != _S_READY:
            self.refused += 1
            return self._error(E_AUTH, False)
        # PROTOCOL.md §3.3: MAC first, then strictly increasing seq; nothing acted on before.
        if not self._rx_mac.check(d.hdr, d.payload, d.tag):
            self.refused += 1
            return self._error(E_MAC)
        if d.seq <= self._rx_seq:
            self.refused += 1
            return self._error(E_REPLAY)
        self._rx_seq = d.seq
        p = d.payload
        try:
            if t == T_ACK:
                return self._on_ack(p)
            if t == T_PULL:
                return self._on_pull(p)
            if t == T_PUSH_DATA:
                return self._on_push_data(p, d.flags)
            if t == T_PUSH_BEGIN:
                return self._on_push_begin(p)
            if t == T_PUSH_END:
                return self._on_push_end()
            if t == T_INFO_REQ:
                return self._send_info()
            if t == T_SET_CLOCK:
                if len(p) != 4:
                    return self._error(E_PROTO)
                return self._result(t, self.target.set_clock(struct.unpack_from(">I", p, 0)[0]))
            if t == T_GET_FAULTS:
                n = self.target.faults(self._txmv[HDR : HDR + MAX_PAYLOAD])
                return self._send(T_FAULTS, n)
            if t == T_BYE:
                self._result(t, OK)
                self._end_after_tx = True
                return
            if t == T_ERROR:
                return self._reset()
        except Exception as e:  # target fault (StorageError, ...) -> clear error, not a crash
            self.last_fault = e
            return self._error(E_STORAGE)
        return self._error(E_PROTO)

    def _on_hello(self, p):
        if len(p) != 17 or p[0] != wire.PROTO_VERSION:
            self._reset()
            self.refused += 1
            return self._error(E_PROTO, False)
        owner = self._guard[0]
        if owner is not None and owner is not self:
            return self._error(wire.E_BUSY, False)
        self._reset()
        for i in range(auth.NONCE_LEN):
            self._nh[i] = p[1 + i]
        nd = self._urandom(auth.NONCE_LEN)
        for i in range(auth.NONCE_LEN):
            self._nd[i] = nd[i]
        t = self._tx
        t[HDR] = wire.PROTO_VERSION
        struct.pack_into(">I", t, HDR + 1, self.device_id)
        t[HDR + 5 : HDR + 21] = self._nd
        t[HDR + 21 : HDR + 53] = auth.device_proof(self._kd, self.device_id, self._nh, self._nd)
        self.state = _S_AUTH
        self._send(T_CHALLENGE, 53)

    def _on_auth(self, p):
        want = auth.host_proof(self._kd, self.device_id, self._nh, self._nd)
        if len(p) != 32 or not auth.equal(want, p):
            self.refused += 1
            self._reset()
            return self._error(E_AUTH, False)
        if self._guard[0] is not None and self._guard[0] is not self:
            self._reset()
            return self._error(wire.E_BUSY, False)
        self._guard[0] = self
        self._tx_mac, self._rx_mac = auth.session_macs(self._kd, self._nh, self._nd, True)
        self.state = _S_READY
        self.sessions += 1
        self._send_info()

    def _send_info(self):
        i = self.target.info()
        wire.pack_info(self._tx, HDR, *i)
        self._send(T_INFO, wire.INFO_LEN)

    # -- pull (PROTOCOL.md §4.2) ------------------------------------------------------
