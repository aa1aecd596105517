# Tier 1: the attacks of docs/SECURITY.md against the validator's content and clock
# rules, on MicroPython (tests/mprun.py) and CPython alike: forged content (the old
# symmetric fleet key, secrets extracted from another validator), replayed and rolled-back
# content, a clock pushed years ahead, key rotation and a revoked key, a stolen device's
# key used on another device. Real Ed25519 (validator.sync.ed25519) throughout.
# SPDX-License-Identifier: MIT
import struct

from emu import farec
from fw import storage_dev
from fw.sync_fixtures import DEVICE_ID, KC, KD, KP, FakeClock, MemLog, MiniHost, link_pair
from validator.app import content
from validator.rules import table
from validator.storage.blacklist import Blacklist
from validator.storage.blacklist_host import KIND_FULL, make_body
from validator.storage.params import ParamStore
from validator.sync import auth, auth_host, wire_host

# fixtures: a RAM flash device, the back office's signer compiled from source, and since
# protocol 2 the test host's frame cipher too; at 256k the signer's 1 280-byte allocation
# failed or not with the checkout's path length (module names are heap strings). The
# device side is held to 128 KiB by the tier-2 tests (test_heap_budget, bench_content_verify).
MP_HEAP = "512k"

_BS = storage_dev.BS
_PARAMS = (0, 8 * _BS)
_BLACKLIST = (8 * _BS, 10 * _BS)
_KEYS = [b"\x01\x10" + bytes([0, 0, 0, 0, i, 7]) for i in range(1, 40, 3)]
OLD_FLEET_KEY = bytes(range(100, 132))  # the symmetric content key every device held


def _target(fl, log=None, clk=None, faults=None):
    ps = ParamStore(fl, _PARAMS).mount()
    bl = Blacklist(fl, _BLACKLIST).mount()
    t = content.Target(log or MemLog(), DEVICE_ID, 0x000100, KP, clk or FakeClock(), bl, ps,
                       table.FareTables(), faults=faults)
    return t, bl, ps


def _push(t, kind, blob, chunk=100):
    code = t.push_begin(kind, len(blob))
    if code != wire_host.OK:
        return code, 0
    for o in range(0, len(blob), chunk):
        code = t.push_write(o, memoryview(blob)[o : o + chunk])
        if code != wire_host.OK:
            t.push_abort()
            return code, 0
    r = t.push_end()
    while r is None:
        r = t.push_poll()
    return r


def _fares(version, key=KC):
    desc = {"version": version, "city": "2900", "acquirer": "02002900FFFFFFFF",
            "lines": [{"id": 12, "fare": 100 + version}]}
    return auth_host.make_content(key, wire_host.K_FARES, version, farec.compile_table(desc))


def _hmac_container(key, kind, version, body, magic=b"YKC1"):
    """The old container: header, body, HMAC-SHA256 under the fleet key."""
    b = magic + struct.pack(">BBII", kind, 0, version, len(body)) + body
    return b + auth_host.hmac_sha256(key, b)


def test_security_when_content_made_with_the_old_fleet_key_refused():
    t, bl, ps = _target(storage_dev.dev())
    body = make_body(KIND_FULL, _KEYS)
    old = _hmac_container(OLD_FLEET_KEY, wire_host.K_BLACKLIST_FULL, 9, body)
    assert _push(t, wire_host.K_BLACKLIST_FULL, old) == (wire_host.E_CONTENT, 0)
    # the same HMAC dressed in the new framing (64 bytes of MAC where the signature goes)
    b = b"YKC2" + struct.pack(">BBII", wire_host.K_BLACKLIST_FULL, 0, 9, len(body)) + body
    fake = b + auth_host.hmac_sha256(OLD_FLEET_KEY, b) * 2
    assert _push(t, wire_host.K_BLACKLIST_FULL, fake) == (wire_host.E_CONTENT, 0)
    assert bl.version == 0 and not bl.contains_key(_KEYS[0])


def test_security_when_every_secret_of_one_validator_is_used_nothing_verifies_on_another():
    # validator A's provisioning blob holds its Kd and the content PUBLIC key: an attacker
    # who reads A's flash tries each as a signing key (Ed25519 seed) and as an HMAC key
    stolen = auth.parse_keys(auth_host.make_keys(0x00120001, KD, KP))
    t, bl, ps = _target(storage_dev.dev())
    for secret in (stolen[1], stolen[2]):
        forged = _fares(5, key=secret)
        assert _push(t, wire_host.K_FARES, forged) == (wire_host.E_CONTENT, 0)
        hm = _hmac_container(secret, wire_host.K_FARES, 5, b"\x00" * 80, magic=b"YKC2")
        assert _push(t, wire_host.K_FARES, hm + bytes(32)) == (wire_host.E_CONTENT, 0)
    assert t.versions[1] == 0
    # the genuine back office's table is taken
    assert _push(t, wire_host.K_FARES, _fares(5)) == (wire_host.OK, 5)


def test_security_when_content_replayed_or_rolled_back_refused_also_after_reboot():
    dev = storage_dev.dev()
    t, bl, ps = _target(dev)
    v7 = _fares(7)
    assert _push(t, wire_host.K_FARES, _fares(6)) == (wire_host.OK, 6)
    assert _push(t, wire_host.K_FARES, v7) == (wire_host.OK, 7)
    assert _push(t, wire_host.K_FARES, v7) == (wire_host.E_VERSION, 7)  # replay
    assert _push(t, wire_host.K_FARES, _fares(6)) == (wire_host.E_VERSION, 6)  # rollback
    # after a reboot the versions come from the re-verified stored containers
    ps2 = ParamStore(storage_dev._DEV[0], _PARAMS).mount()
    c = content.stored(ps2, KP, content.P_FARES, wire_host.K_FARES)
    ts = table.FareTables()
    ts.offer(c[1], 0, c[0])
    t2 = content.Target(MemLog(), DEVICE_ID, 0x000100, KP, FakeClock(),
                        Blacklist(storage_dev._DEV[0], _BLACKLIST).mount(), ps2, ts)
    assert t2.versions[1] == 7
    assert _push(t2, wire_host.K_FARES, _fares(6)) == (wire_host.E_VERSION, 6)
    assert _push(t2, wire_host.K_FARES, _fares(8)) == (wire_host.OK, 8)


def _log_with_ride(at):
    from validator.storage import record_host
    from validator.util import bcdtime

    log = MemLog(rec_size=record_host.REC_SIZE)
    img = record_host.new_image()
    bcdtime.pack_datetime(at, img, record_host.O_DATETIME)
    log.append(img)
    return log


def _clock_body(secs, dev=DEVICE_ID):
    return struct.pack(">II", dev, secs)


def test_security_when_clock_pushed_years_ahead_refused_unless_signed_for_this_device():
    ride = 827800000  # 2026-03-27
    faults = []
    clk = FakeClock()
    t, bl, ps = _target(storage_dev.dev(), log=_log_with_ride(ride), clk=clk, faults=faults)
    assert t.set_clock(ride + 3 * 365 * 86400) == wire_host.E_RANGE  # years ahead
    assert t.set_clock(ride + 15 * 86400) == wire_host.E_RANGE  # past the 14-day step
    assert t.set_clock(ride - 1) == wire_host.E_RANGE  # before the newest record
    assert t.set_clock(ride + 86400) == wire_host.OK and clk.secs == ride + 86400
    far = ride + 40 * 86400
    other = auth_host.make_content(KC, wire_host.K_CLOCK, 1, _clock_body(far, DEVICE_ID + 1))
    assert _push(t, wire_host.K_CLOCK, other) == (wire_host.E_CONTENT, 1)  # another's
    forged = auth_host.make_content(KD, wire_host.K_CLOCK, 1, _clock_body(far))
    assert _push(t, wire_host.K_CLOCK, forged)[0] == wire_host.E_CONTENT
    back = auth_host.make_content(KC, wire_host.K_CLOCK, 1, _clock_body(ride - 60))
    assert _push(t, wire_host.K_CLOCK, back) == (wire_host.E_RANGE, 1)  # the floor holds
    good = auth_host.make_content(KC, wire_host.K_CLOCK, 2, _clock_body(far))
    assert _push(t, wire_host.K_CLOCK, good) == (wire_host.OK, 2) and clk.secs == far
    assert _push(t, wire_host.K_CLOCK, good) == (wire_host.E_VERSION, 2)  # no replay
    assert len(faults) >= 4 and "refused" in faults[0]


def test_security_when_content_key_rotated_old_key_revoked_and_chain_survives_reboot():
    new_seed = b"\x42" * 32
    new_pub = auth_host.content_public(new_seed)
    t, bl, ps = _target(storage_dev.dev())
    # a rotation signed by anyone but the key in force is refused
    bogus = auth_host.make_content(new_seed, wire_host.K_KEY, 1, new_pub)
    assert _push(t, wire_host.K_KEY, bogus) == (wire_host.E_CONTENT, 0)
    rot = auth_host.make_content(KC, wire_host.K_KEY, 1, new_pub)
    assert _push(t, wire_host.K_KEY, rot) == (wire_host.OK, 1)
    # the old key is revoked: its content is refused, the new key's is taken
    assert _push(t, wire_host.K_FARES, _fares(3)) == (wire_host.E_CONTENT, 0)
    assert _push(t, wire_host.K_FARES, _fares(3, key=new_seed)) == (wire_host.OK, 3)
    assert _push(t, wire_host.K_KEY, rot) == (wire_host.E_CONTENT, 0)  # old key: revoked
    # after a reboot the chain is re-verified from the provisioned key
    ps2 = ParamStore(storage_dev._DEV[0], _PARAMS).mount()
    assert content.trusted_key(ps2, KP) == (new_pub, 1)
    c = content.stored(ps2, KP, content.P_FARES, wire_host.K_FARES)
    assert c is not None and c[0] == 3
    t2, _, _ = _target(storage_dev._DEV[0])
    assert t2.versions[4] == 1
    assert _push(t2, wire_host.K_FARES, _fares(4)) == (wire_host.E_CONTENT, 0)


def test_security_when_a_stolen_devices_key_is_used_on_another_device_auth_fails():
    from validator.sync.session import Session
    from validator.sync.target import LogTarget

    link, h2d, d2h = link_pair()
    clk = FakeClock()
    other_kd = auth_host.derive_device_key(b"m" * 32, DEVICE_ID + 1)  # device B's key
    t = LogTarget(MemLog(), DEVICE_ID, 0x000100, KP, clk, {})
    s = Session(link, t, (DEVICE_ID, KD, KP), lambda n: b"\x11" * n, clk)
    h = MiniHost(s, h2d, d2h, kd=other_kd)
    nh = b"N" * 16
    h.send(wire_host.T_HELLO, bytes([wire_host.PROTO_VERSION]) + nh)
    typ, p, _ = h.pump()
    assert typ == wire_host.T_CHALLENGE
    nd = p[5:21]
    # the device proves itself with its own key, which the stolen one does not match ...
    assert not auth.equal(p[21:53], auth.device_proof(other_kd, DEVICE_ID, nh, nd))
    # ... and refuses a host proof made with it
    h.send(wire_host.T_AUTH, auth.host_proof(other_kd, DEVICE_ID, nh, nd))
    typ, p, _ = h.pump()
    assert typ == wire_host.T_ERROR and p[0] == wire_host.E_AUTH
    h.send(wire_host.T_PUSH_BEGIN, struct.pack(">BI", wire_host.K_FARES, 200))
    typ, p, _ = h.pump()
    assert typ == wire_host.T_ERROR and p[0] == wire_host.E_AUTH  # nothing before AUTH
