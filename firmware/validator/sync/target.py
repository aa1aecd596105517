# validator.sync.target: ready-made sync targets over a record log and content handlers.
# SPDX-License-Identifier: MIT
#
# The session only needs the duck-typed interface in README.md. This module gives the app
# a target built from the storage service objects without sync importing storage:
#   LogTarget(log, device_id, fw_version, content_key, clock, handlers, versions)
# where `log` is a record log with first_seq / acked_seq / next_seq (attributes or
# methods), read(seq, buf) -> n and ack(seq) (storage's RecordLog), and handlers maps a
# content kind to either
#   a function apply(kind, version, body_memoryview) -> wire code: the container is
#   buffered in RAM (up to _PUSH_LIMIT bytes; one contiguous allocation), verified, applied;
#   or a streaming object with begin(kind, version, body_len) -> code, write(off, data) ->
#   code, commit(version) -> code, abort(): the container's body goes straight to it (into
#   a flash shadow area) while the tag is checked incrementally (auth.ContentVerifier), and
#   commit() -- the atomic switch -- is called only for a verified container.
# Either way a handler sees only the body, and only of a container that passed the one
# acceptance rule (LogTarget._accept: the kind pushed, a version newer than the installed
# one); the framing and the tag are sync.auth's.
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
    (wire code, version), which verifies and unwraps it (auth.verify_content), applies the
    acceptance rule and calls the handler with the body. A streamed kind gets the same
    rule as soon as the container header is in, and its commit only after the tag checks.
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
        self._pcode = None  # streamed push: None until its header is in, then the verdict

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
    def _accept(self, kind, hdr):
        """The acceptance rule for every pushed container, hdr = (kind, version, body_len)
        from sync.auth: the kind must be the kind pushed (E_CONTENT: a fare table cannot
        pose as a blacklist) and the version newer than the installed one (E_VERSION: no
        rollback, so a depot replaying an old container changes nothing)."""
        if hdr[0] != kind:
            return _E_CONTENT
        if hdr[1] <= self.versions[_SLOT[kind]]:
            return _E_VERSION
        return _OK

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
        self._stream = h
        self._pkind = kind
        self._pcode = None
        self._ver = auth.ContentVerifier(self._kc, total)
        return _OK

    def push_write(self, off, data):
        h = self._stream
        if h is None:
            b = self._pbuf
            if b is None or off + len(data) > len(b):
                return _E_RANGE
            b[off : off + len(data)] = data
            return _OK
        v = self._ver
        body = v.update(data)
        if self._pcode is None:
            hdr = v.header()
            if hdr is not None:
                code = self._accept(self._pkind, hdr)
                self._pcode = code if code != _OK else h.begin(self._pkind, hdr[1], hdr[2])
            elif off + len(data) >= _CONTENT_HDR:
                self._pcode = _E_CONTENT  # bad framing
        if self._pcode != _OK or body is None:
            return _OK  # header pending, or refused: the verdict goes out at push_end
        return h.write(v.body_at, body)

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
        code = self._pcode
        if not ver.final():
            h.abort()
            return _E_CONTENT, 0
        version = ver.header()[1]
        if code != _OK:
            h.abort()
            return code, (version if code == _E_VERSION else 0)
        try:
            code = h.commit(version)
        except Exception:
            h.abort()
            return _E_STORAGE, version
        if code == _OK:
            self.versions[_SLOT[self._pkind]] = version
        return code, version

    def push_abort(self):
        if self._stream is not None:
            self._stream.abort()
            self._stream = None
        self._ver = None
        self._pbuf = None

    def apply(self, kind, blob):
        """Verify and unwrap a buffered container (auth.verify_content), apply the
        acceptance rule (_accept), then the kind's handler with the body (a memoryview
        into blob). Refused (anything but OK) -> the handler is not called."""
        if kind < 1 or kind >= len(_SLOT) or kind not in self.handlers:
            return _E_KIND, 0
        c = auth.verify_content(self._kc, blob)
        if c is None:
            return _E_CONTENT, 0
        code = self._accept(kind, c)
        if code != _OK:
            return code, (c[1] if code == _E_VERSION else 0)
        try:
            code = self.handlers[kind](kind, c[1], c[2])
        except Exception:
            return _E_STORAGE, c[1]
        if code == _OK:
            self.versions[_SLOT[kind]] = c[1]
        return code, c[1]
