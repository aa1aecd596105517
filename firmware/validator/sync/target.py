# validator.sync.target: ready-made sync targets over a record log and content handlers.
# SPDX-License-Identifier: MIT
#
# The session only needs the duck-typed interface in README.md. This module gives the app
# a target built from the storage service objects without sync importing storage:
#   LogTarget(log, device_id, fw_version, content_key, clock, handlers, versions)
# where `log` is a record log with first_seq / acked_seq / next_seq (attributes or
# methods), read(seq, buf) -> n and ack(seq) (storage issue 5's RecordLog), and
# handlers maps a content kind to either
#   a function apply(kind, version, body_memoryview) -> wire code: the container is
#   buffered in RAM (up to _PUSH_LIMIT bytes; one contiguous allocation), verified, applied;
#   or a streaming object with begin(kind, total) -> code, write(off, data) -> code,
#   commit(version) -> code, abort(): the container bytes go straight to it (into a flash
#   shadow area), the MAC is checked incrementally (auth.ContentVerifier) and commit()
#   -- the atomic switch -- is called only for a verified, newer container of that kind.
from micropython import const

from validator.sync import auth

# Private copies of validator.sync.wire's result codes (PROTOCOL.md §4.4; checked equal by
# tests/host/test_sync_consts.py): a const is inlined, an imported name costs heap.
_OK = const(0)
_E_PROTO = const(4)
_E_RANGE = const(5)
_E_CONTENT = const(6)
_E_VERSION = const(7)
_E_STORAGE = const(8)
_E_KIND = const(10)
# and of validator.sync.auth's container layout (PROTOCOL.md §5): header, body, 32-byte tag
_CONTENT_HDR = const(14)
_DIGEST = const(32)
_PUSH_LIMIT = const(16384)


def _val(x):
    return x() if callable(x) else x


# INFO version slots per kind (PROTOCOL.md §4.1): blacklist, fares, whitelist, config
_SLOT = (0, 0, 0, 1, 2, 3)


class LogTarget:
    """Sync target over a record log + content handlers (module comment).

    A kind whose handler has no begin() is buffered: push_begin allocates the container
    (up to _PUSH_LIMIT bytes, one block), push_end hands it to apply(kind, blob) ->
    (wire code, version), which checks it (MAC, kind, newer version: the shared acceptance
    rule) and calls the handler. Subclasses may override apply (app.content.Target does).
    """

    def __init__(
        self, log, device_id, fw_version, content_key, clock, handlers, versions=None,
        rec_size=None, faults=None,
    ):
        self.log = log
        self.device_id = device_id
        self.fw_version = fw_version
        self._kc = content_key
        self.clock = clock
        self.handlers = handlers
        self.versions = versions if versions is not None else [0, 0, 0, 0]
        # storage's RecordLog holds 128-byte records (storage FORMAT.md §2)
        self.rec_size = rec_size if rec_size else getattr(log, "rec_size", 128)
        self._faults = faults
        # push state, all made here so the instance dict never grows during a sync
        self._stream = None  # streaming handler of the open push
        self._ver = None  # its auth.ContentVerifier
        self._pbuf = None  # buffered container of the open push
        self._pkind = 0

    def info(self):
        lg = self.log
        v = self.versions
        nf = len(self._faults) if self._faults is not None else 0
        return (
            self.device_id, self.fw_version, _val(lg.first_seq), _val(lg.acked_seq),
            _val(lg.next_seq), self.rec_size, v[0], v[1], v[2], v[3], self.clock.now(), nf,
        )

    def read_records(self, from_seq, buf, max_n):
        """-> (first_seq, count): consecutive readable records from max(from_seq, first_seq).

        The log's read() returns 0 for a record it cannot vouch for (CRC damage, FORMAT.md):
        such a record is skipped when it would open a batch and ends a batch otherwise, so
        the depot sees a gap in seq (reported by ykt sync) instead of garbage."""
        lg = self.log
        first = _val(lg.first_seq)
        nxt = _val(lg.next_seq)
        seq = from_seq if from_seq > first else first
        rs = self.rec_size
        n = 0
        mv = memoryview(buf)
        while n < max_n and seq + n < nxt:
            if not lg.read(seq + n, mv[n * rs : (n + 1) * rs]):
                if n:
                    break
                seq += 1  # unreadable record at the head: skip it
                continue
            n += 1
        return seq, n

    def ack(self, seq):
        self.log.ack(seq)

    def set_clock(self, secs):
        self.clock.set_time(secs)
        return _OK

    def faults(self, buf):
        if not self._faults:
            return 0
        n = 0
        for f in self._faults:
            b = f if isinstance(f, (bytes, bytearray)) else str(f).encode()
            if n + len(b) + 1 > len(buf):
                break
            buf[n : n + len(b)] = b
            buf[n + len(b)] = 10
            n += len(b) + 1
        return n

    # -- push: streaming handlers, else a RAM buffer -> apply() ---------------------
    def push_begin(self, kind, total):
        self._stream = None
        self._pbuf = None
        h = self.handlers.get(kind) if 0 < kind < len(_SLOT) else None
        if h is None:
            return _E_KIND
        if not hasattr(h, "begin"):
            if total > _PUSH_LIMIT:
                return _E_RANGE
            if total < _CONTENT_HDR + _DIGEST:
                return _E_CONTENT
            import gc

            gc.collect()  # one contiguous block of `total` bytes: collect first (128 KiB heap)
            try:
                self._pbuf = bytearray(total)
            except MemoryError:
                return _E_STORAGE
            self._pkind = kind
            return _OK
        if total < _CONTENT_HDR + _DIGEST:
            return _E_CONTENT
        code = h.begin(kind, total)
        if code == _OK:
            self._stream = h
            self._pkind = kind
            self._ver = auth.ContentVerifier(self._kc, total)
        return code

    def push_write(self, off, data):
        h = self._stream
        if h is None:
            b = self._pbuf
            if b is None or off + len(data) > len(b):
                return _E_RANGE
            b[off : off + len(data)] = data
            return _OK
        self._ver.update(data)
        return h.write(off, data)

    def push_end(self):
        h = self._stream
        if h is None:
            b = self._pbuf
            self._pbuf = None
            if b is None:
                return _E_PROTO, 0
            return self.apply(self._pkind, b)
        self._stream = None
        ver = self._ver
        self._ver = None
        hdr = ver.header()
        if not ver.final() or hdr is None or hdr[0] != self._pkind:
            h.abort()
            return _E_CONTENT, 0
        slot = _SLOT[self._pkind]
        if hdr[1] <= self.versions[slot]:
            h.abort()
            return _E_VERSION, hdr[1]
        try:
            code = h.commit(hdr[1])
        except Exception:
            h.abort()
            return _E_STORAGE, hdr[1]
        if code == _OK:
            self.versions[slot] = hdr[1]
        return code, hdr[1]

    def push_abort(self):
        if self._stream is not None:
            self._stream.abort()
            self._stream = None
        self._ver = None
        self._pbuf = None

    def apply(self, kind, blob):
        """The acceptance rule, then the kind's handler: refuses a container whose MAC is
        wrong (E_CONTENT), whose kind is not the kind pushed (E_CONTENT: a fare table cannot
        pose as a blacklist), or whose version is not newer than the active one (E_VERSION:
        a depot cannot roll a device back)."""
        if kind < 1 or kind >= len(_SLOT) or kind not in self.handlers:
            return _E_KIND, 0
        if not auth.verify_content(self._kc, blob):
            return _E_CONTENT, 0
        k, version, blen = auth.content_header(blob)
        if k != kind:
            return _E_CONTENT, 0
        slot = _SLOT[kind]
        if version <= self.versions[slot]:
            return _E_VERSION, version
        body = memoryview(blob)[_CONTENT_HDR : _CONTENT_HDR + blen]
        try:
            code = self.handlers[kind](kind, version, body)
        except Exception:
            return _E_STORAGE, version
        if code == _OK:
            self.versions[slot] = version
        return code, version
