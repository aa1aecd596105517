# emu.mifare: an emulated MIFARE Classic 1K/4K card (NXP MF1S50 / MF1S70) with real Crypto1.
# SPDX-License-Identifier: MIT
#
# Common subset. The card sits in the emulated PN532's field (emu.field contract: kind "A",
# uid 4 or 7 bytes, atqa, sak 08 / 18, no ATS) and answers the chip's air frames through
# frame(data, par) -> (data, par, bits) | None: `bits` 4 for an ACK/NAK nibble. Frames
# carry their CRC_A (ISO 14443-3 §6.2.4) and, once authenticated, are encrypted with
# emu.crypto1 byte by byte with encrypted parity bits, as on air (MF1S50 §10.1, the
# "Dismantling MIFARE Classic" description of the protocol). Modelled (MF1S50 §8-§10):
#   AUTHENTICATE 60/61 (three-pass, nested when a sector is already open: nT encrypted),
#   READ 30, WRITE A0 (two phases, ACK 0xA after each), DECREMENT C0 / INCREMENT C1 /
#   RESTORE C2 (two phases, no answer to the second: the reader's timeout means done),
#   TRANSFER B0, HALT 50 00; access conditions per block (C1 C2 C3 from the trailer,
#   §8.7.1-§8.7.3), key A never readable, key B readable only where the trailer says
#   (and then unusable for data access), value-block format checked by the value
#   operations (§8.6.2.1), the 4K card's 16-block sectors 32..39. Any refused command
#   answers NAK 0x4 (0x5 on a CRC/parity error) and drops the card back to IDLE (§10.1).
#   [INF] a malformed trailer write (access bits not matching their inverse) is refused
#   with NAK instead of blocking the sector for ever.
# Backend API for tests: tear(n, mode) cuts power at the n-th next landed write (WRITE
# phase 2 or TRANSFER): "before" (not written), "after" (written, no answer) or "half"
# (the first 8 bytes written, the rest as before -- a broken block); leaves() counts
# frames to a removal; writes counts the landed writes, auths the authentications.
from emu import crypto1
from emu.field import CardGone

ACK = 0x0A
NAK = 0x04
NAK_CRC = 0x05
DEFAULT_KEY = b"\xff\xff\xff\xff\xff\xff"
TRANSPORT_ACCESS = b"\xff\x07\x80\x69"  # MF1S50 §8.7.1: key A all rights, key B readable

_READY = 1  # selected, not authenticated
_AUTH1 = 2  # nT sent, waiting for {nR}{aR}
_OPEN = 3  # authenticated: frames encrypted
_WRITE2 = 4  # WRITE phase 2 expected
_VALUE2 = 5  # value operation phase 2 expected


def sector_of(blk):
    return blk // 4 if blk < 128 else 32 + (blk - 128) // 16


def first_block(sector):
    return sector * 4 if sector < 32 else 128 + (sector - 32) * 16


def trailer_of(sector):
    return first_block(sector) + (3 if sector < 32 else 15)


def access_bits(acc):
    """Trailer bytes 6..8 -> [C1C2C3 per group 0..3] (group 3 = trailer), or None when the
    inverted copies do not match (MF1S50 §8.7.1)."""
    b6, b7, b8 = acc[0], acc[1], acc[2]
    c1, c2, c3 = b7 >> 4, b8 & 0x0F, b8 >> 4
    if (b6 & 0x0F) != (~c1 & 0x0F) or (b6 >> 4) != (~c2 & 0x0F) or (b7 & 0x0F) != (~c3 & 0x0F):
        return None
    return [((c1 >> i) & 1) << 2 | ((c2 >> i) & 1) << 1 | ((c3 >> i) & 1) for i in range(4)]


# Data block rights (MF1S50 §8.7.3 Table 8): C1C2C3 -> (read, write, increment, decrement/
# transfer/restore), each "A", "B", "AB" or "".
_DATA = {
    0b000: ("AB", "AB", "AB", "AB"),
    0b010: ("AB", "", "", ""),
    0b100: ("AB", "B", "", ""),
    0b110: ("AB", "B", "B", "AB"),
    0b001: ("AB", "", "", "AB"),
    0b011: ("B", "B", "", ""),
    0b101: ("B", "", "", ""),
    0b111: ("", "", "", ""),
}
# Trailer rights (§8.7.2 Table 7): -> (write key A, read access, write access, read key B,
# write key B)
_TRAILER = {
    0b000: ("A", "A", "", "A", "A"),
    0b010: ("", "A", "", "A", ""),
    0b100: ("B", "AB", "", "", "B"),
    0b110: ("", "AB", "", "", ""),
    0b001: ("A", "A", "A", "A", "A"),
    0b011: ("B", "AB", "B", "", "B"),
    0b101: ("", "AB", "B", "", ""),
    0b111: ("", "AB", "", "", ""),
}


def _value_of(b):
    v = b[0] | b[1] << 8 | b[2] << 16 | b[3] << 24
    for i in range(4):
        if b[8 + i] != b[i] or b[4 + i] != b[i] ^ 0xFF:
            return None
    if b[12] != b[14] or b[13] != b[15] or b[12] != b[13] ^ 0xFF:
        return None
    return v - (1 << 32) if v & 0x80000000 else v


def value_block(value, addr):
    v = value & 0xFFFFFFFF
    le = bytes((v & 0xFF, (v >> 8) & 0xFF, (v >> 16) & 0xFF, v >> 24))
    return le + bytes(x ^ 0xFF for x in le) + le + bytes((addr, addr ^ 0xFF, addr, addr ^ 0xFF))


class MifareClassic:
    kind = "A"
    mifare = True
    ats = b""

    def __init__(self, uid, size=1024, nt=0x82A4166C):
        uid = bytes(uid)
        if len(uid) not in (4, 7) or size not in (1024, 4096):
            raise ValueError("MIFARE Classic: a 4- or 7-byte UID, 1K or 4K")
        self.uid = uid
        self.size = size
        self.sak = 0x08 if size == 1024 else 0x18
        a0 = 0x04 if size == 1024 else 0x02
        if len(uid) == 7:
            a0 |= 0x40  # ATQA bits 7..6 = 01: double-size UID
        self.atqa = bytes((a0, 0x00))  # on air, LSB first
        self.nblocks = 64 if size == 1024 else 256
        self.mem = bytearray(16 * self.nblocks)
        m0 = uid + (bytes((uid[0] ^ uid[1] ^ uid[2] ^ uid[3], self.sak, a0, 0))
                    if len(uid) == 4 else bytes((self.sak, a0, 0)))
        self.mem[0:16] = (m0 + b"NXP-EMU-MF1S" + bytes(16))[:16]
        sectors = 16 if size == 1024 else 40
        for s in range(sectors):
            t = trailer_of(s)
            self.mem[16 * t: 16 * t + 16] = DEFAULT_KEY + TRANSPORT_ACCESS + DEFAULT_KEY
        self._nt = nt & 0xFFFFFFFF
        self.state = _READY  # activation (REQA, anticollision, SELECT) is emu.picc's
        self.crypto = None
        self.sector = -1
        self.keytype = 0
        self._pending = None  # (command, block) of a two-phase command
        self._auth = None
        self.reg = None  # transfer buffer: (value, addr)
        self.auths = 0
        self.writes = 0
        self.frames = 0
        self._tear = None  # [writes to go, mode]
        self._leave = -1

    # -- backend --------------------------------------------------------------------------
    def block(self, blk):
        return bytes(self.mem[16 * blk: 16 * blk + 16])

    def set_block(self, blk, data):
        data = bytes(data)
        if len(data) != 16:
            raise ValueError("a block is 16 bytes")
        self.mem[16 * blk: 16 * blk + 16] = data

    def set_trailer(self, sector, key_a, access, key_b):
        self.set_block(trailer_of(sector), bytes(key_a) + bytes(access) + bytes(key_b))

    def value(self, blk):
        return _value_of(self.block(blk))

    def tear(self, n, mode="after"):
        """Power lost at the n-th next landed write (1 = the next one)."""
        if mode not in ("before", "after", "half"):
            raise ValueError("tear mode: before, after or half")
        self._tear = [n, mode]

    def leave_after(self, n):
        """The card leaves the field after answering n more frames."""
        self._leave = n

    # -- field contract -----------------------------------------------------------------
    def apdu(self, cmd):
        raise CardGone()  # no ISO-DEP: a reader sending APDUs gets silence

    def deselect(self):
        self.state = _READY
        self.crypto = None
        self._pending = None
        self._auth = None

    # -- air frames -----------------------------------------------------------------------
    def _nonce(self):
        # the tag PRNG runs freely between authentications (MF1S50: a 16-bit LFSR)
        self._nt = crypto1.prng_successor(self._nt, 160 + 37 * self.auths % 97)
        return self._nt

    def _nak(self, code=NAK):
        c = self.crypto
        self.state = _READY  # any refusal closes the sector; the chip sees IDLE (§10.1)
        self.crypto = None
        self._pending = None
        return (bytes((c.nibble(code) if c is not None else code,)), None, 4)

    def _ack(self):
        return (bytes((self.crypto.nibble(ACK),)), None, 4)

    def frame(self, data, par=None):
        """One frame from the reader (CRC_A included; encrypted once a sector is open)."""
        self.frames += 1
        if self._leave == 0:
            raise CardGone()
        if self._leave > 0:
            self._leave -= 1
        data = bytes(data)
        st = self.state
        if st == _AUTH1:
            return self._auth2(data, par)
        if st in (_OPEN, _WRITE2, _VALUE2):
            plain, ok = self.crypto.decrypt(data, par)
        else:
            plain, ok = data, True
        if len(plain) < 3 or crypto1.crc_a(plain[:-2]) != plain[-2:] or not ok:
            return self._nak(NAK_CRC)
        body = plain[:-2]
        if st == _WRITE2:
            return self._write2(body)
        if st == _VALUE2:
            return self._value2(body)
        cmd = body[0]
        if cmd == 0x50 and len(body) == 2:  # HLTA
            self.deselect()
            return None
        if cmd in (0x60, 0x61) and len(body) == 2:
            return self._auth1(cmd, body[1])
        if st != _OPEN or len(body) != 2:
            return self._nak()
        blk = body[1]
        if blk >= self.nblocks or sector_of(blk) != self.sector:
            return self._nak()
        if cmd == 0x30:
            return self._read(blk)
        if cmd == 0xA0:
            if not self._allowed(blk, 1):
                return self._nak()
            self._pending = (cmd, blk)
            self.state = _WRITE2
            return self._ack()
        if cmd in (0xC0, 0xC1, 0xC2):
            op = 2 if cmd == 0xC1 else 3
            if self._is_trailer(blk) or not self._allowed(blk, op):
                return self._nak()
            if _value_of(self.block(blk)) is None:
                return self._nak()
            self._pending = (cmd, blk)
            self.state = _VALUE2
            return self._ack()
        if cmd == 0xB0:
            if self._is_trailer(blk) or self.reg is None or not self._allowed(blk, 3):
                return self._nak()
            v, a = self.reg
            if not self._land(blk, value_block(v, a)):
                return None
            return self._ack()
        return self._nak()

    # -- authentication -------------------------------------------------------------------
    def _auth1(self, cmd, blk):
        if blk >= self.nblocks:
            return self._nak()
        s = sector_of(blk)
        t = trailer_of(s)
        key = self.block(t)[0:6] if cmd == 0x60 else self.block(t)[10:16]
        nested = self.crypto is not None
        nt = self._nonce()
        self.auths += 1
        self._auth = (crypto1.TagAuth(key, self.uid[-4:], nt), s, cmd)
        self.crypto = None
        self.state = _AUTH1
        ta = self._auth[0]
        d, _ = ta.start(nested)
        if nested:
            # nT encrypted with the keystream of its own feeding; parity likewise
            return (d, None, 32)
        return (d, None, 32)

    def _auth2(self, data, par):
        ta, s, cmd = self._auth
        self._auth = None
        r = ta.verify(data, par)
        if r is None:
            self.state = _READY  # the reader does not know the key: silence
            self.crypto = None
            return None
        self.crypto = ta.c
        self.sector = s
        self.keytype = cmd
        self.state = _OPEN
        return (r[0], r[1], 32)

    # -- access conditions ----------------------------------------------------------------
    def _is_trailer(self, blk):
        return blk == trailer_of(sector_of(blk))

    def _group(self, blk):
        s = sector_of(blk)
        off = blk - first_block(s)
        if s < 32:
            return off
        return 3 if off == 15 else off // 5

    def _bits(self, s):
        return access_bits(self.block(trailer_of(s))[6:9])

    def _who(self):
        return "A" if self.keytype == 0x60 else "B"

    def _key_b_readable(self, s):
        bits = self._bits(s)
        return bits is not None and _TRAILER[bits[3]][3] != ""

    def _allowed(self, blk, op):
        """op: 0 read, 1 write, 2 increment, 3 decrement/transfer/restore (data blocks);
        for the trailer: 0 read, 1 write (then checked field by field)."""
        s = sector_of(blk)
        bits = self._bits(s)
        if bits is None:
            return False
        who = self._who()
        if self._is_trailer(blk):
            return True  # per field, in _read / _write2
        if who == "B" and self._key_b_readable(s):
            return False  # key B readable: it is data, not a key (§8.7.3 note)
        return who in _DATA[bits[self._group(blk)]][op]

    # -- commands -------------------------------------------------------------------------
    def _read(self, blk):
        if not self._allowed(blk, 0):
            return self._nak()
        d = bytearray(self.block(blk))
        if self._is_trailer(blk):
            tr = _TRAILER[self._bits(self.sector)[3]]
            who = self._who()
            d[0:6] = bytes(6)  # key A never readable
            if who not in tr[1]:
                d[6:10] = bytes(4)
            if who not in tr[3]:
                d[10:16] = bytes(6)
        out = bytes(d)
        return self.crypto.encrypt(out + crypto1.crc_a(out)) + (8 * 18,)

    def _write2(self, body):
        cmd, blk = self._pending
        self._pending = None
        self.state = _OPEN
        if len(body) != 16:
            return self._nak()
        new = bytearray(body)
        if self._is_trailer(blk):
            tr = _TRAILER[self._bits(self.sector)[3]]
            who = self._who()
            old = self.block(blk)
            if who not in tr[0]:
                new[0:6] = old[0:6]
            if who not in tr[2]:
                new[6:10] = old[6:10]
            elif access_bits(new[6:9]) is None:
                return self._nak()
            if who not in tr[4]:
                new[10:16] = old[10:16]
        if not self._land(blk, bytes(new)):
            return None
        return self._ack()

    def _value2(self, body):
        cmd, blk = self._pending
        self._pending = None
        self.state = _OPEN
        if len(body) != 4:
            return self._nak()
        src = self.block(blk)
        v = _value_of(src)
        d = body[0] | body[1] << 8 | body[2] << 16 | body[3] << 24
        if d & 0x80000000:
            d -= 1 << 32
        if cmd == 0xC0:
            v -= d
        elif cmd == 0xC1:
            v += d
        self.reg = (v, src[12])
        return None  # no answer to the second phase: the reader's timeout means done

    def _land(self, blk, data):
        """A write reaching the EEPROM, unless a tear cuts it. False: the card is gone."""
        t = self._tear
        if t is not None:
            t[0] -= 1
            if t[0] <= 0:
                self._tear = None
                mode = t[1]
                if mode == "after":
                    self.set_block(blk, data)
                    self.writes += 1
                elif mode == "half":
                    self.set_block(blk, bytes(data[:8]) + self.block(blk)[8:])
                raise CardGone()
        self.set_block(blk, data)
        self.writes += 1
        return True


# ---- the city's M1 purse card (firmware/validator/m1/FORMAT.md) ----------------------------
def sector_key(master_keys, uid, city, sector, keytype=0x61):
    """The UID-diversified key of a sector as the local PSAM derives it (FORMAT.md §3):
    801A 45 02 with factor 1 = UID padded, factor 2 = city || KDF_F2; then 80FA 05 00
    over factor 1 with IV 'M' '1' s keytype 00 00 00 00 for s = the sector and
    KDF_SHARED: key = MAC(sector) || MAC(shared)[0..1] for the purse sector, [2..3] for
    the trip sector (any other sector: [0..1])."""
    from emu import crypto
    from validator.m1 import layout_host as L

    alg = crypto.ALG_3DES
    f1 = bytes(uid) + bytes(8 - len(uid))
    f2 = bytes(((city >> 8) & 0xFF, city & 0xFF)) + L.KDF_F2
    k = crypto.card_key(crypto.master_key(master_keys, alg, "maintenance"), f2, f1, alg)

    def mac(s):
        return crypto.cbc_mac_raw(alg, k, bytes((L.KDF_IV0, L.KDF_IV1, s, keytype, 0, 0, 0, 0)),
                                  f1)

    shared = mac(L.KDF_SHARED)
    tail = shared[2:4] if sector == L.SEC_TRIP else shared[0:2]
    return mac(sector) + tail


def record_mac(master_keys, img):
    """M1_MAC of a record image (FORMAT.md §5) from the local master keys: the check the
    depot makes (SERIAL gives the UID, the record's ISSUER the city)."""
    from emu import crypto
    from validator.m1 import layout_host as L

    img = bytes(img)
    s = img[16:26]
    n = s[2]
    uid = s[10 - n:10]
    city = img[28] << 8 | img[29]  # ISSUER = 'M' '1' city(2) number(4)
    alg = crypto.ALG_3DES
    f1 = bytes(uid) + bytes(8 - len(uid))
    f2 = bytes((city >> 8, city & 0xFF)) + L.KDF_F2
    k = crypto.card_key(crypto.master_key(master_keys, alg, "maintenance"), f2, f1, alg)
    data = crypto.pad_m2(img[L.MAC_FROM:L.MAC_TO], 8)
    return crypto.cbc_mac_raw(alg, k, L.MAC_IV, data)


def _bcd(n, digits):
    s = "%0*d" % (digits, n)
    return bytes(int(s[i:i + 2], 16) for i in range(0, digits, 2))


class PurseCard(MifareClassic):
    """A MIFARE Classic card personalised as the city's M1 purse (issue_purse): what the
    sim and the tests read of it besides its blocks."""

    @property
    def balance(self):
        from validator.m1 import layout_host as L

        v = self.value(L.BLK_VALUE)
        return v if v is not None else -1

    @property
    def serial(self):
        """The record SERIAL (and blacklist entry) of this card (FORMAT.md §5)."""
        from validator.m1 import layout_host as L

        return L.serial_of_uid(self.uid)

    def arm_tear(self, when):
        """The sim's tear names (as emu.tunion_card's): "before_commit" -- the card leaves
        as the debit is written, which does not land; "after_commit" -- it lands, the
        answer is lost (card write 2 of FORMAT.md §4)."""
        self.tear(2, "before" if when == "before_commit" else "after")


def sim_card(master_keys, name, spec):
    """The sim's M1 card for a scenario card {"app": "m1", ...}: a 4-byte UID from the
    name, balance, validity (YYYYMMDD strings), card type code (farec names)."""
    import hashlib

    from emu import issuer

    h = hashlib.sha256(name.encode()).digest()
    return issue_purse(issuer.local_master_keys(master_keys), h[0:4],
                       balance=spec.get("balance", 5000),
                       card_type=issuer.card_type_code(spec.get("type", "normal")),
                       start=int(spec.get("start", "20240101")),
                       end=int(spec.get("expiry", "20341231")),
                       number=int.from_bytes(h[4:8], "big") % 10 ** 8)


def verify_record(master_keys, raw):
    """True when an M1 record image's M1_MAC is the local PSAM's (the issuer-side check
    of records.csv rows, as sim.verify_tac for CPU cards)."""
    from emu import issuer
    from validator.storage import record_host as RH

    raw = bytes(raw)
    return record_mac(issuer.local_master_keys(master_keys), raw) == \
        raw[RH.O_M1_MAC:RH.O_M1_MAC + 4]


def issue_purse(local_keys, uid, balance=1000, city=0x2900, number=1, card_type=0x00,
                start=20240101, end=20341231, size=1024, counter=0, status=0, nt=None):
    """A personalised M1 purse card (FORMAT.md §2): issuer block, empty trip slots (slot 0
    holds the issue as counter `counter`), value = backup = balance, control = counter,
    the two sectors keyed with the UID-diversified key B (key A = the same derivation with
    keytype 60) and the FORMAT.md access conditions. local_keys: emu.issuer.
    local_master_keys(...)."""
    from validator.m1 import layout_host as L

    c = PurseCard(uid, size=size, **({} if nt is None else {"nt": nt}))
    info = bytearray(16)
    info[L.MI_CITY:L.MI_CITY + 2] = bytes((city >> 8, city & 0xFF))
    info[L.MI_NUMBER:L.MI_NUMBER + 4] = _bcd(number, 8)
    info[L.MI_TYPE] = card_type
    info[L.MI_VERSION] = L.LAYOUT_VER
    info[L.MI_START:L.MI_START + 4] = _bcd(start, 8)
    info[L.MI_END:L.MI_END + 4] = _bcd(end, 8)
    c.set_block(L.BLK_INFO, info)
    t = bytearray(16)
    t[L.MT_COUNTER:L.MT_COUNTER + 2] = bytes((counter >> 8, counter & 0xFF))
    t[L.MT_BAL_BEFORE:L.MT_BAL_BEFORE + 4] = balance.to_bytes(4, "big")
    t[L.MT_CHECK] = L.crc8(t[:15])
    c.set_block(L.BLK_TRIP0, t)
    c.set_block(L.BLK_TRIP1, bytes(16))
    c.set_block(L.BLK_VALUE, value_block(balance, L.BLK_VALUE))
    c.set_block(L.BLK_BACKUP, value_block(balance, L.BLK_VALUE))
    k = bytearray(16)
    k[L.MC_COUNTER:L.MC_COUNTER + 2] = bytes((counter >> 8, counter & 0xFF))
    k[L.MC_STATUS] = status
    k[L.MC_CHECK] = L.crc8(k[:15])
    c.set_block(L.BLK_CTRL, k)
    for s, acc in ((L.SEC_TRIP, L.ACC_TRIP), (L.SEC_PURSE, L.ACC_PURSE)):
        c.set_trailer(s, sector_key(local_keys, uid, city, s, 0x60), acc,
                      sector_key(local_keys, uid, city, s, 0x61))
    return c


def purse_state(card):
    """(value, backup, committed counter, [trip counters]) of an M1 purse card: what a
    test checks after a tap (None where a block is broken)."""
    from validator.m1 import layout_host as L

    ctrl = card.block(L.BLK_CTRL)
    ctr = (ctrl[0] << 8 | ctrl[1]) if L.crc8(ctrl[:15]) == ctrl[15] else None
    trips = []
    for blk in (L.BLK_TRIP0, L.BLK_TRIP1):
        t = card.block(blk)
        trips.append((t[0] << 8 | t[1]) if L.crc8(t[:15]) == t[15] and any(t) else None)
    return card.value(L.BLK_VALUE), card.value(L.BLK_BACKUP), ctr, trips


# ---- the M1 engine on the bench ---------------------------------------------------------------
LOCAL_TERM = b"\x00\x00\x00\x29\x00\x01"  # the local PSAM's terminal number on the rig


class WireJournal:
    """ByteLink in front of emu.wires.HsuWire: records every write, readinto() and wait()
    of one tap, then replays them allocation-free (per-byte copies into preallocated
    buffers), so the same tap can run under micropython.heap_lock(); replayed writes are
    compared with the recording (mismatch counts differing bytes: the date-time)."""

    def __init__(self, inner, cap=16384, nev=4096):
        self.inner = inner
        self.echo = False
        self.tx = bytearray(cap)
        self.rx = bytearray(cap)
        self.ev = bytearray(nev)  # 0 wait False, 1 wait True, 2 readinto
        self.ln = bytearray(2 * nev)
        self.ntx = self.nrx = self.nev = 0
        self.itx = self.irx = self.iev = 0
        self.replay = False
        self.mismatch = 0

    def reset(self):
        self.ntx = self.nrx = self.nev = 0
        self.replay = False

    def start_replay(self):
        self.replay = True
        self.itx = self.irx = self.iev = 0
        self.mismatch = 0

    def write(self, buf, n=None):
        if n is None:
            n = len(buf)
        if self.replay:
            for i in range(n):
                if self.itx >= self.ntx or self.tx[self.itx] != buf[i]:
                    self.mismatch += 1
                self.itx += 1
            return n
        for i in range(n):
            self.tx[self.ntx] = buf[i]
            self.ntx += 1
        return self.inner.write(buf, n)

    def readinto(self, buf, n=None):
        if self.replay:
            if self.iev >= self.nev:
                return 0
            k = self.iev
            self.iev += 1
            m = self.ln[2 * k] | (self.ln[2 * k + 1] << 8)
            for i in range(m):
                buf[i] = self.rx[self.irx]
                self.irx += 1
            return m
        m = self.inner.readinto(buf)
        k = self.nev
        self.ev[k] = 2
        self.ln[2 * k] = m & 0xFF
        self.ln[2 * k + 1] = m >> 8
        self.nev += 1
        for i in range(m):
            self.rx[self.nrx] = buf[i]
            self.nrx += 1
        return m

    def wait(self, ms):
        if self.replay:
            if self.iev >= self.nev:
                return False
            k = self.iev
            self.iev += 1
            return self.ev[k] == 1
        w = self.inner.wait(ms)
        self.ev[self.nev] = 1 if w else 0
        self.nev += 1
        return w

    def drain(self):
        if not self.replay:
            self.inner.drain()


class Rig:
    """The firmware's M1 engine (validator.m1.purse) on emulators, the whole byte path: the
    firmware PN532 driver and ISO 14443 reader over HSU to the emulated PN532 (its own
    Crypto1 against this card emulator), the local PSAM through the firmware's T=0 link,
    the real record log and blacklist on an emulated NOR (emu.rig's layout), and the real
    flat-fare policy. tap(card) is one tap as the app runs it: poll, classify, engine,
    release."""

    def __init__(self, fare=200, city=0x2900, blacklist=(), policy=None, journal=False,
                 tracer=None, flash=None, plan=None, **kw):
        """tracer(kind, obj) -> the object the firmware gets for "clock", "link" (PN532
        HSU and PSAM port) and "flash" (benchmarks put call tracers there); flash, plan
        (log, watermark, blacklist regions): another flash than emu.rig's layout."""
        from emu import issuer
        from emu import pn532 as P
        from emu import rig as R
        from emu.nor import NorFlash
        from emu.psam import Psam as PsamEmu
        from emu.t0 import T0Card
        from emu.wires import HsuWire
        from validator.drivers.pn532 import Pn532
        from validator.drivers.pn532_link import Hsu
        from validator.link.iso7816 import Iso7816
        from validator.link.iso14443 import Iso14443Reader
        from validator.m1.purse import M1Purse, classify
        from validator.sam.psam import Psam
        from validator.storage import blacklist as bl
        from validator.storage import blacklist_host
        from validator.storage.recordlog import RecordLog

        t = tracer or (lambda kind, o: o)
        self.clock = R.Clock()
        fclock = t("clock", self.clock)
        self.keys = issuer.local_master_keys(R.keys())
        self.psam_dev = PsamEmu(self.keys, terminal_no=LOCAL_TERM,
                                serial=bytes(4) + LOCAL_TERM, app="local")
        self.port = R.T0Port(T0Card(self.psam_dev), self.clock)
        self.pj = self.wj = None
        port = self.port
        if journal:  # replayable taps: PSAM and PN532 bytes journalled (heap/bench runs)
            self.pj = R.Journal(4096)
            port = R.JournalLink(self.port, self.pj)
        self.slot = Iso7816(t("link", port), fclock)
        self.psam = Psam(self.slot, self.slot.power_up, True)
        self.psam.boot()
        self.field = P.Field()
        self.core = P.Pn532Core(self.field)
        self.wire = HsuWire(self.core, self.clock)
        w = self.wire
        if journal:
            self.wj = w = WireJournal(self.wire)
        self.reader = Iso14443Reader(Pn532(Hsu(t("link", w)), fclock))
        self.reader.begin()
        self.reader.field_on()
        self.flash = flash or NorFlash(30 * R._BS, block_size=R._BS, prog_size=256)
        self.plan = plan or {"log": R._LOG, "watermark": R._WM, "blacklist": R._BL}
        self.fflash = t("flash", self.flash)
        self.records = RecordLog(self.fflash, self.plan["log"], self.plan["watermark"]).mount()
        self.records.maintain()
        self.blacklist = bl.Blacklist(self.fflash, self.plan["blacklist"]).mount()
        if blacklist:
            ks = sorted(bytes(bl.key_of(s, bytearray(8))) for s in blacklist)
            self.blacklist.begin(blacklist_host.KIND_FULL, 1)
            for k in ks:
                self.blacklist.add(k)
            if self.blacklist.commit() != bl.OK:
                raise ValueError("blacklist commit")
        self.policy = policy or R.flat_policy(fare, city)
        self.city = city
        self.kw = kw
        self.fclock = fclock
        self.m1 = M1Purse(self.reader.chip, self.psam, fclock, self.policy, self.records,
                          self.blacklist, local_city=city, device_id=b"\x00\x00\x00\x07",
                          line=R.LINE, vehicle=b"\x00\x01\x23\x45\x00\x00", **kw)
        self.card = None
        self._classify = classify

    def reboot(self):
        """Power cycle of the validator: RAM lost, stores re-mounted, PSAM re-booted."""
        from emu import rig as R
        from validator.m1.purse import M1Purse
        from validator.storage.recordlog import RecordLog

        self.records = RecordLog(self.fflash, self.plan["log"], self.plan["watermark"]).mount()
        self.records.maintain()
        self.psam.boot()
        self.m1 = M1Purse(self.reader.chip, self.psam, self.fclock, self.policy, self.records,
                          self.blacklist, local_city=self.city, device_id=b"\x00\x00\x00\x07",
                          line=R.LINE, vehicle=b"\x00\x01\x23\x45\x00\x00", **self.kw)

    def place(self, card):
        if self.card is not None and self.card is not card:
            self.field.remove(self.card)
        self.card = card
        self.field.remove(card)  # re-enters the field: fresh (IDLE), as a new tap
        self.field.place(card)

    def tap(self, card):
        """One tap: None when the reader saw no card, else the engine's Result."""
        self.records.maintain()
        self.place(card)
        return self.replay_tap()

    def rows(self):
        from emu import rig as R

        return R.rows(self.records)

    # -- journal (Rig(journal=True)) --------------------------------------------------------
    def record(self, card):
        """One real tap with the journals holding only it; returns its Result."""
        self.records.maintain()
        self.place(card)
        self.pj.ntx = self.pj.nrx = 0
        self.pj.replay = False
        self.wj.reset()
        return self.replay_tap()

    def rewind(self, advance=61):
        self.records.maintain()
        self.pj.start_replay()
        self.wj.start_replay()
        self.clock.advance(advance)

    def replay_tap(self):
        """The app's tap on whatever the links answer (live, or the journal): poll,
        classify, engine, release. No emulator call of its own: allocation-free on replay."""
        rd = self.reader
        info = rd.poll()
        if info is None:
            return None
        r = self.m1.tap(info) if self._classify(info) == 1 else self.m1.unsupported()
        rd.release()
        return r
