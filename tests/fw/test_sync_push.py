# test_sync_push: pushing signed content through the device session (PROTOCOL.md §4.3, §5).
# SPDX-License-Identifier: MIT
import struct

from fw.sync_fixtures import KC, KEYS, MiniHost, link_pair, make_target
from validator.sync import auth_host, wire_host
from validator.sync.session import Session

# fixture: the back office's Ed25519 signer (validator.sync.ed25519_host), compiled from
# source beside the session; the device side (verify at PUSH_END) is what is under test
MP_HEAP = "256k"


def _rand(n):
    return bytes([(i * 7 + 3) & 0xFF for i in range(n)])


def _setup():
    link, h2d, d2h = link_pair()
    t = make_target(0)
    s = Session(link, t, KEYS, _rand, t.clock)
    return s, t, MiniHost(s, h2d, d2h)


def test_session_when_signed_fare_table_pushed_activated():
    s, t, h = _setup()
    h.handshake()
    body = bytes(range(256)) * 6  # > one PUSH_DATA chunk of the test host (1000)
    blob = auth_host.make_content(KC, wire_host.K_FARES, 3, body)
    _push(h, wire_host.K_FARES, blob)
    typ, p, _ = h.pump()
    assert typ == wire_host.T_RESULT and p[0] == wire_host.T_PUSH_END and p[1] == wire_host.OK, p
    assert t.applied.active[wire_host.K_FARES] == (3, body)
    assert t.versions[1] == 3


def _push(h, kind, blob, chunk=1000):
    h.send(wire_host.T_PUSH_BEGIN, struct.pack(">BI", kind, len(blob)))
    typ, p, _ = h.pump()
    assert typ == wire_host.T_RESULT and p[1] == wire_host.OK, p
    off = 0
    while off < len(blob):
        c = blob[off : off + chunk]
        h.send(wire_host.T_PUSH_DATA, struct.pack(">I", off) + c)
        typ, p, _ = h.pump()
        assert typ == wire_host.T_PUSH_ACK, (typ, p)
        off = struct.unpack(">I", p)[0]
    h.send(wire_host.T_PUSH_END)


def test_session_when_forged_blacklist_pushed_refused_nothing_changed():
    s, t, h = _setup()
    h.handshake()
    forged = auth_host.make_content(b"\x66" * 32, wire_host.K_BLACKLIST_FULL, 9, b"\x01" * 80)
    _push(h, wire_host.K_BLACKLIST_FULL, forged)
    typ, p, _ = h.pump()
    assert typ == wire_host.T_RESULT and p[1] == wire_host.E_CONTENT
    assert t.applied.active == {} and t.versions == [0, 0, 0, 0]
    # a genuine fare table offered as a blacklist is refused too (kind is signed)
    fares = auth_host.make_content(KC, wire_host.K_FARES, 9, b"\x01" * 80)
    _push(h, wire_host.K_BLACKLIST_FULL, fares)
    typ, p, _ = h.pump()
    assert p[1] == wire_host.E_CONTENT and t.applied.active == {}


def test_session_when_old_version_pushed_refused():
    s, t, h = _setup()
    h.handshake()
    _push(h, wire_host.K_WHITELIST,
          auth_host.make_content(KC, wire_host.K_WHITELIST, 5, b"w" * 40))
    h.pump()
    _push(h, wire_host.K_WHITELIST,
          auth_host.make_content(KC, wire_host.K_WHITELIST, 5, b"x" * 40))
    typ, p, _ = h.pump()
    assert p[1] == wire_host.E_VERSION and t.applied.active[wire_host.K_WHITELIST][1] == b"w" * 40


class _Shadow:
    """Streaming handler as storage provides: fills a shadow, switches on commit()."""

    def __init__(self):
        self.shadow = bytearray()
        self.active = None
        self.aborts = 0
        self.begun = None

    def begin(self, kind, version, body_len):
        self.shadow = bytearray()
        self.begun = (kind, version, body_len)
        return wire_host.OK

    def write(self, off, data):
        self.shadow[off : off + len(data)] = data
        return wire_host.OK

    def commit(self, version):
        self.active = (version, bytes(self.shadow))
        return wire_host.OK

    def abort(self):
        self.aborts += 1
        self.shadow = bytearray()


def test_session_when_streaming_handler_genuine_content_committed_forged_aborted():
    # signed first, in an unfragmented heap (signing compiles the signer at 128 KiB)
    good = auth_host.make_content(KC, wire_host.K_BLACKLIST_FULL, 4, b"\x07" * 1500)
    forged = bytearray(auth_host.make_content(KC, wire_host.K_BLACKLIST_FULL, 5, b"\x08" * 1500))
    s, t, h = _setup()
    sh = _Shadow()
    t.handlers[wire_host.K_BLACKLIST_FULL] = sh
    h.handshake()
    _push(h, wire_host.K_BLACKLIST_FULL, good)
    typ, p, _ = h.pump()
    # the handler gets the body only: no header, no signature
    assert p[1] == wire_host.OK and sh.active == (4, b"\x07" * 1500) and t.versions[0] == 4
    assert sh.begun == (wire_host.K_BLACKLIST_FULL, 4, 1500)
    forged[100] ^= 1
    _push(h, wire_host.K_BLACKLIST_FULL, bytes(forged))
    typ, p, _ = h.pump()
    assert p[1] == wire_host.E_CONTENT and sh.active == (4, b"\x07" * 1500) and sh.aborts == 1
    assert t.versions[0] == 4


def test_session_when_streamed_content_is_old_handler_never_begins():
    s, t, h = _setup()
    sh = _Shadow()
    t.handlers[wire_host.K_BLACKLIST_FULL] = sh
    h.handshake()
    _push(h, wire_host.K_BLACKLIST_FULL,
          auth_host.make_content(KC, wire_host.K_BLACKLIST_FULL, 4, b"\x07" * 1500))
    h.pump()
    sh.begun = None
    for v in (4, 3):  # a replay, then an older list: refused before any shadow is touched
        _push(h, wire_host.K_BLACKLIST_FULL,
              auth_host.make_content(KC, wire_host.K_BLACKLIST_FULL, v, b"\x09" * 1500))
        typ, p, _ = h.pump()
        assert p[1] == wire_host.E_VERSION, p
        assert sh.begun is None and sh.active == (4, b"\x07" * 1500) and t.versions[0] == 4
    # a forged old list is E_CONTENT: the signature is checked before the version is reported
    _push(h, wire_host.K_BLACKLIST_FULL,
          auth_host.make_content(b"\x66" * 32, wire_host.K_BLACKLIST_FULL, 3, b"\x09" * 40))
    typ, p, _ = h.pump()
    assert p[1] == wire_host.E_CONTENT and sh.begun is None
