# depot.client: the host side of the sync protocol (PROTOCOL.md), over any serial-like port.
# SPDX-License-Identifier: MIT
#
# The port is a pyserial object from serial_for_url() (a tty, socket://, loop://) or any
# object with write(bytes) and read(n) -> bytes honouring a timeout (tests use an in-process
# pump). The frame codec and the crypto are the firmware's own modules.
import os
import struct
import time
import zlib

from validator.errors import SyncError
from validator.sync import auth, auth_host, cipher_host, wire, wire_host

DEFLATE_WBITS = 10  # PROTOCOL.md §6


class SyncFailure(SyncError):
    """Sync refused or failed; .code is a wire code (E_*) or None for timeouts/garbage."""

    def __init__(self, msg, code=None):
        super().__init__(msg)
        self.code = code


def _need(p, n, what):
    if len(p) < n:
        raise SyncFailure("malformed %s from device (%d bytes)" % (what, len(p)),
                          wire_host.E_PROTO)


def _info(p):
    _need(p, wire_host.INFO_LEN, "INFO")
    return wire_host.unpack_info(p)


class Keyring:
    """Device keys: a master (Kd derived per device) and/or explicit per-device keys."""

    def __init__(self, master=None, devices=None):
        self.master = master
        self.devices = dict(devices or {})

    def key_for(self, device_id):
        if device_id in self.devices:
            return self.devices[device_id]
        if self.master is not None:
            return auth_host.derive_device_key(self.master, device_id)
        return None

    @classmethod
    def load(cls, path):
        """JSON: {"master": "<64 hex>", "devices": {"1234ABCD": "<64 hex>"}} (either part)."""
        import json

        with open(path) as f:
            j = json.load(f)
        master = bytes.fromhex(j["master"]) if j.get("master") else None
        devs = {int(k, 16): bytes.fromhex(v) for k, v in (j.get("devices") or {}).items()}
        return cls(master, devs)


class SyncClient:
    def __init__(self, port, keyring, timeout=2.0, urandom=os.urandom):
        self.port = port
        self.keyring = keyring
        self.timeout = timeout
        self._urandom = urandom
        self.dec = wire.Decoder()
        self.tx_mac = None
        self.rx_mac = None
        self.tx_cipher = None  # cipher_host.FrameCipher per direction once authenticated
        self.rx_cipher = None
        self.tx_seq = 0
        self.rx_seq = 0
        self.info = None
        self.device_id = None
        self.bytes_in = 0
        self.bytes_out = 0
        self._pending = b""

    # -- frames -----------------------------------------------------------------------
    def send(self, ftype, payload=b"", flags=0):
        """After AUTH every frame goes encrypted (F_ENC) and MAC'd over the ciphertext
        (PROTOCOL.md §3.4); a seq is never reused: at SEQ_LAST the session is over."""
        if self.tx_mac is not None:
            if self.tx_seq >= wire_host.SEQ_LAST:
                raise SyncFailure("session seq exhausted: reconnect", wire_host.E_REPLAY)
            self.tx_seq += 1
        f = wire_host.frame(ftype, payload, self.tx_seq, flags, self.tx_mac, self.tx_cipher)
        self.port.write(f)
        self.bytes_out += len(f)

    def recv(self, timeout=None):
        """-> (type, payload bytes, flags). Once authenticated: checks the MAC (over header
        + ciphertext) and seq, refuses a frame without F_ENC (a downgrade) and only then
        decrypts the payload (PROTOCOL.md §3.3, §3.4)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        d = self.dec
        while True:
            if d.next():
                t, p, fl = d.type, bytes(d.payload), d.flags
                if self.rx_mac is not None:
                    if not self.rx_mac.check(d.hdr, d.payload, d.tag):
                        if t == wire_host.T_ERROR and d.tag is None and len(p) == 1:
                            raise SyncFailure("device refused: " + wire_host.code_name(p[0]), p[0])
                        raise SyncFailure("frame MAC wrong: not our device or tampered line",
                                          wire_host.E_MAC)
                    if d.seq <= self.rx_seq:
                        raise SyncFailure("replayed frame from device", wire_host.E_REPLAY)
                    if not fl & wire_host.F_ENC:
                        raise SyncFailure("clear frame after AUTH (downgrade refused)",
                                          wire_host.E_PROTO)
                    self.rx_seq = d.seq
                    p = self.rx_cipher.crypt(d.seq, p)
                if t == wire_host.T_ERROR:
                    code = p[0] if p else wire_host.E_PROTO
                    raise SyncFailure("device refused: " + wire_host.code_name(code), code)
                return t, p, fl
            if self._pending:
                k = d.feed(self._pending)
                self._pending = self._pending[k:]
                continue
            if time.monotonic() > deadline:
                raise SyncFailure("no answer from device (timeout)")
            n = getattr(self.port, "in_waiting", 0) or 1
            data = self.port.read(min(n, 65536))
            if data:
                self.bytes_in += len(data)
                self._pending = data

    def expect(self, want, timeout=None):
        t, p, fl = self.recv(timeout)
        if t != want:
            if t == wire_host.T_RESULT and len(p) >= 2 and p[1] != wire_host.OK:
                raise SyncFailure("device refused: " + wire_host.code_name(p[1]), p[1])
            raise SyncFailure("unexpected message 0x%02x (wanted 0x%02x)" % (t, want),
                              wire_host.E_PROTO)
        return p

    def result(self, req, timeout=None):
        p = self.expect(wire_host.T_RESULT, timeout)
        _need(p, 6, "RESULT")
        r, code, arg = struct.unpack_from(wire_host.P_RESULT, p, 0)
        if r != req:
            raise SyncFailure("result for 0x%02x, wanted 0x%02x" % (r, req), wire_host.E_PROTO)
        return code, arg

    # -- session ----------------------------------------------------------------------
    def connect(self):
        """Mutual authentication (PROTOCOL.md §3.1); -> INFO dict."""
        nh = self._urandom(auth_host.NONCE_LEN)
        self.tx_mac = self.rx_mac = self.tx_cipher = self.rx_cipher = None
        self.tx_seq = self.rx_seq = 0
        self.send(wire_host.T_HELLO, bytes([wire_host.PROTO_VERSION]) + nh)
        bad = None
        for _ in range(64):
            try:
                t, p, _ = self.recv(None if bad is None else min(self.timeout, 0.5))
            except SyncFailure:
                if bad is not None:
                    raise bad
                raise
            if t != wire_host.T_CHALLENGE:
                continue  # stale frames of an earlier session still in flight
            if len(p) != 53 or p[0] != wire_host.PROTO_VERSION:
                raise SyncFailure("bad CHALLENGE", wire_host.E_PROTO)
            dev = struct.unpack_from(">I", p, 1)[0]
            nd = p[5:21]
            kd = self.keyring.key_for(dev)
            if kd is None:
                raise SyncFailure("no key for device %08X" % dev, wire_host.E_AUTH)
            if auth.equal(p[21:53], auth.device_proof(kd, dev, nh, nd)):
                break
            # wrong key -- or the answer to an earlier HELLO that sat in a resyncing
            # receiver: give a fresher CHALLENGE a moment before calling it a failure
            bad = SyncFailure("device %08X failed authentication (wrong key?)" % dev,
                              wire_host.E_AUTH)
        else:
            raise SyncFailure("device does not answer HELLO", wire_host.E_PROTO)
        self.device_id = dev
        self.send(wire_host.T_AUTH, auth.host_proof(kd, dev, nh, nd))
        tm, rm, tk, rk = auth.session_keys(kd, nh, nd, False)
        self.tx_mac, self.rx_mac = auth.Hmac(tm), auth.Hmac(rm)
        self.tx_cipher = cipher_host.FrameCipher(tk, wire_host.CTR_H2D)
        self.rx_cipher = cipher_host.FrameCipher(rk, wire_host.CTR_D2H)
        try:
            p = self.expect(wire_host.T_INFO)
        except SyncFailure as e:
            if e.code == wire_host.E_AUTH:
                raise SyncFailure("device refused our key", wire_host.E_AUTH)
            raise
        self.info = _info(p)
        return self.info

    def refresh_info(self):
        self.send(wire_host.T_INFO_REQ)
        self.info = _info(self.expect(wire_host.T_INFO))
        return self.info

    def bye(self):
        try:
            self.send(wire_host.T_BYE)
            self.result(wire_host.T_BYE, timeout=min(self.timeout, 1.0))
        except SyncError:
            pass
        self.tx_mac = self.rx_mac = self.tx_cipher = self.rx_cipher = None

    # -- operations -------------------------------------------------------------------
    def pull(self, db, window=4, max_records=0, progress=None, compress=True):
        """Pull every record past the device's watermark into db; -> (new, dup)."""
        dev = self.device_id
        info = self.info
        rs = info["rec_size"]
        # Resume: records committed before a lost ACK are ACKed first (PROTOCOL.md §4.2).
        have = db.contiguous_upto(dev, info["acked_seq"])
        if have > info["acked_seq"]:
            self.send(wire_host.T_ACK, struct.pack(wire_host.P_U32, have))
            self.send(wire_host.T_INFO_REQ)
            while True:
                t, p, _ = self.recv()
                if t == wire_host.T_INFO:
                    info = self.info = _info(p)
                    break
                # RESULT(ACK, E_RANGE): the device rebooted since; it simply resends
        start = info["acked_seq"] + 1
        total = max(0, info["next_seq"] - start)
        self.send(wire_host.T_PULL, struct.pack(wire_host.P_PULL_FLAGS, start, window, max_records,
                                           wire_host.PULL_Z if compress else 0))
        new = dup = 0
        if progress:
            progress(0, total)
        # Group commit: with a database that stores several batches in one transaction
        # (ingest_batches), up to `window` RECORDS frames are committed together and then
        # ACKed at once (ACK is cumulative, PROTOCOL.md §4.2): one fsync per window, not per
        # frame. The device may always send a whole window before it waits for an ACK
        # (its credit is window x max_records records), and the frame that reaches the
        # end INFO announced is committed at once, so the pull never waits on itself.
        group = hasattr(db, "ingest_batches")
        end = info["next_seq"] - 1
        pending = []

        def flush():
            nonlocal new, dup
            if not pending:
                return
            for a, b in db.ingest_batches(dev, pending):
                new += a
                dup += b
            last = pending[-1][0] + len(pending[-1][2]) // pending[-1][1] - 1
            del pending[:]
            self.send(wire_host.T_ACK, struct.pack(wire_host.P_U32, last))
            if progress:
                progress(last + 1 - start, max(total, last + 1 - start))

        while True:
            t, p, _ = self.recv()
            if t == wire_host.T_RECORDS or t == wire_host.T_RECORDS_Z:
                _need(p, 8, "RECORDS")
                first, count, size = struct.unpack_from(wire_host.P_RECORDS, p, 0)
                if t == wire_host.T_RECORDS_Z and size == rs and count:
                    try:
                        data = wire_host.rz_decode(p, 8, count, size)
                    except ValueError as e:
                        raise SyncFailure("malformed RECORDS_Z batch: %s" % e, wire_host.E_PROTO)
                else:
                    data = memoryview(p)[8:]
                if size != rs or count == 0 or len(data) != count * size or first < start:
                    raise SyncFailure("malformed RECORDS batch", wire_host.E_PROTO)
                if group:
                    pending.append((first, size, bytes(data)))
                    if len(pending) >= window or first + count - 1 >= end:
                        flush()
                    continue
                a, b = db.ingest(dev, first, size, data)
                new += a
                dup += b
                self.send(wire_host.T_ACK, struct.pack(wire_host.P_U32, first + count - 1))
                if progress:
                    progress(first + count - start, max(total, first + count - start))
            elif t == wire_host.T_PULL_END:
                _need(p, 4, "PULL_END")
                flush()
                nxt = struct.unpack_from(wire_host.P_U32, p, 0)[0]
                if progress:
                    progress(max(0, nxt - start), max(0, nxt - start))
                return new, dup
            elif t == wire_host.T_RESULT:
                _need(p, 6, "RESULT")
                r, code, arg = struct.unpack_from(wire_host.P_RESULT, p, 0)
                raise SyncFailure("device refused ACK: " + wire_host.code_name(code), code)
            else:
                raise SyncFailure("unexpected message 0x%02x during pull" % t, wire_host.E_PROTO)

    def push(self, kind, blob, compress=True, progress=None, chunk=2040):
        """Send one signed content container; -> activated version. Raises SyncFailure."""
        self.send(wire_host.T_PUSH_BEGIN, struct.pack(wire_host.P_PUSH_BEGIN, kind, len(blob)))
        code, _ = self.result(wire_host.T_PUSH_BEGIN)
        if code != wire_host.OK:
            names = wire_host.KIND_NAMES
            what = names[kind] if kind < len(names) else "kind %d" % kind
            raise SyncFailure("push %s refused: %s" % (what, wire_host.code_name(code)), code)
        off = 0
        last = -1
        stalls = 0  # PUSH_ACKs that did not advance (device resyncing or misbehaving)
        while off < len(blob):
            c = bytes(blob[off : off + chunk])
            flags = 0
            if compress:
                z = zlib.compressobj(9, zlib.DEFLATED, -DEFLATE_WBITS)
                zc = z.compress(c) + z.flush()
                if len(zc) * 8 <= len(c) * 7:
                    c, flags = zc, wire_host.F_DEFLATE
            self.send(wire_host.T_PUSH_DATA, struct.pack(wire_host.P_U32, off) + c, flags)
            t, p, _ = self.recv()
            if t == wire_host.T_RESULT:
                _need(p, 2, "RESULT")
                code = p[1]
                raise SyncFailure("push refused: " + wire_host.code_name(code), code)
            if t != wire_host.T_PUSH_ACK:
                raise SyncFailure("unexpected message 0x%02x during push" % t, wire_host.E_PROTO)
            _need(p, 4, "PUSH_ACK")
            off = struct.unpack_from(wire_host.P_U32, p, 0)[0]
            if off > len(blob):
                raise SyncFailure("device acknowledged beyond the content", wire_host.E_PROTO)
            stalls = stalls + 1 if off == last else 0
            last = off
            if stalls > 3:
                raise SyncFailure("push makes no progress", wire_host.E_PROTO)
            if progress:
                progress(off, len(blob))
        self.send(wire_host.T_PUSH_END)
        code, version = self.result(wire_host.T_PUSH_END, timeout=max(self.timeout, 10.0))
        if code != wire_host.OK:
            raise SyncFailure(
                "%s refused by device: %s" % (wire_host.KIND_NAMES[kind],
                                              wire_host.code_name(code)), code
            )
        return version

    def set_clock(self, secs):
        self.send(wire_host.T_SET_CLOCK, struct.pack(wire_host.P_U32, secs))
        code, _ = self.result(wire_host.T_SET_CLOCK)
        if code != wire_host.OK:
            raise SyncFailure("set clock refused: " + wire_host.code_name(code), code)

    def faults(self):
        self.send(wire_host.T_GET_FAULTS)
        return self.expect(wire_host.T_FAULTS)

