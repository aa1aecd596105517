# emu.issuer: makes T-Union card images from the test master keys; seeded populations.
# SPDX-License-Identifier: MIT
#
# Common subset (the CLI wrapper is ykt/cmd_card.py). Card layout per card-protocol.md §2:
#   EF15 issuerId(8) = issuer code(2) city(2) FFFFFFFF | app type 02 | app version 01 |
#        serial(10, BCD) | start(4) | expiry(4) | [28] card type | [29] 00
#   EF16 [0] card type (same code) | [1] staff flag | rest zero
#   EF17 country 00000156 | province(2) | city(2) | interconnect 0001/0000 | [10] card type
# Card type codes (EF15[28], §2.1 "S5 uses byte 28"; same table as emu.farec):
#   normal 00, senior 01, student 02, staff 03, disabled 11.
import json

from emu import crypto
from emu.local_card import LocalCard
from emu.tunion_card import BLOCK_NONE, BLOCK_PERM, BLOCK_TEMP, TUnionCard

CARD_TYPES = (("normal", 0x00), ("senior", 0x01), ("student", 0x02), ("staff", 0x03),
              ("disabled", 0x11))
# maintenance = the application block key (DAMK; the PSAM's 801A key), unblock = the
# separate application unblock key: real cards refuse an unblock MAC made with the block
# key (6988)
USAGES = ("purchase", "tac", "load", "maintenance", "unblock")
ISSUER_CODE = "0200"  # [INF] bytes 0-1 of the issuer ID, as in the §5.6 example
LOCAL_ISSUER_CODE = "0300"  # [INF] the local (MOHURD) issuer's bytes 0-1
# EF15[8] application type: 02 on every T-Union sample (§2.1); a MOHURD card with 00 is not
# activated and refused (S5, S13), so an issued local card carries 01 [INF].
LOCAL_APP_TYPE = 0x01
# (city code BCD, province code BCD): Shanghai, Beijing, Tianjin, Changsha, Guangzhou [INF]
CITIES = (("2900", "3100"), ("1000", "1100"), ("1121", "1200"), ("4310", "4300"),
          ("5810", "4400"))


def _dir():
    f = __file__
    return f.rsplit("/", 1)[0] if "/" in f else "."


KEYS_PATH = _dir() + "/test_master_keys.json"


def load_master_keys(path=None):
    with open(path or KEYS_PATH) as f:
        return json.load(f)


def local_master_keys(master_keys):
    """The local issuer's (MOHURD city card) master keys: the key file's "local" section,
    same shape as the file ({"3des": {...}, "sm4": {...}}); for emu.psam.Psam(app="local")."""
    return master_keys["local"]


def local_factor2(ef15):
    """§4 "MOHURD PSAMs in S5/S7": factor 2 = cityCode(2) FF 00 00 00 00 00; the city code
    is EF15[2..3] in the layout emu.local_card keeps [INF]."""
    return bytes(ef15[2:4]) + b"\xff\x00\x00\x00\x00\x00"


def local_card_keys(local_keys, alg, ef15):
    """A local card's keys: DIV(DIV(MK_local, local_factor2), EF15[12..19]) per usage, the
    same two-level order as T-Union (§5.2 [INF]) with the MOHURD factor 2."""
    out = {}
    for u in USAGES:
        mk = crypto.master_key(local_keys, alg, u)
        out[u] = crypto.card_key(mk, local_factor2(ef15), ef15[12:20], alg)
    return out


def auth_code(keys, alg, ef15):
    """[INF] a local card's 9-byte authentication code (§5.5 shows `85 X X` with X 4 bytes):
    85 || X || X, X = MAC of the serial factor under the card's maintenance key. Only the
    card and the MAC1 it checks use it, so any per-card value would do."""
    x = crypto.tac_mac(alg, keys["maintenance"], ef15[12:20])
    return b"\x85" + x + x


def wrong_keys(master_keys):
    """Other master keys of the same shape: a "wrong PSAM" for negative tests."""
    out = {}
    for fam in ("3des", "sm4"):
        out[fam] = {}
        for u in USAGES:
            k = bytes.fromhex(master_keys[fam][u])
            out[fam][u] = bytes(((k[0] ^ 0x5A),)).hex() + k[1:].hex()
    return out


def alg_id(alg):
    if isinstance(alg, int):
        return alg
    for n, a in crypto.FAMILY_NAMES:
        if n == alg:
            return a
    raise ValueError("algorithm: 3des or sm4, not %r" % (alg,))


def card_type_code(name):
    if isinstance(name, int):
        return name
    for n, c in CARD_TYPES:
        if n == name:
            return c
    raise ValueError("card type %r" % (name,))


def card_keys(master_keys, alg, ef15):
    """The card's diversified keys: DIV(DIV(MK, EF15[0..7]), EF15[12..19]) per usage."""
    out = {}
    for u in USAGES:
        mk = crypto.master_key(master_keys, alg, u)
        out[u] = crypto.card_key(mk, ef15[0:8], ef15[12:20], alg)
    return out


def _bcd_date(s):
    s = str(s)
    if len(s) != 8 or not s.isdigit():
        raise ValueError("date YYYYMMDD: %r" % (s,))
    return bytes.fromhex(s)


def make_ef15(city="2900", serial=None, start="20240101", expiry="20341231",
              card_type="normal", issuer_code=ISSUER_CODE):
    if serial is None:
        serial = "03104770040067442802"
    serial = str(serial)
    if len(serial) < 20:
        serial = "0" * (20 - len(serial)) + serial
    if len(serial) != 20 or not serial.isdigit():
        raise ValueError("serial: up to 20 decimal digits")
    issuer = bytes.fromhex(issuer_code + city) + b"\xff\xff\xff\xff"
    ef15 = issuer + b"\x02\x01" + bytes.fromhex(serial) + _bcd_date(start) + _bcd_date(expiry)
    return ef15 + bytes((card_type_code(card_type), 0))


def make_ef17(city="2900", province="3100", interconnect=True, card_type="normal"):
    e = bytearray(60)
    e[0:4] = b"\x00\x00\x01\x56"
    e[4:6] = bytes.fromhex(province)
    e[6:8] = bytes.fromhex(city)
    e[8:10] = b"\x00\x01" if interconnect else b"\x00\x00"  # §2.3 interconnect kind
    e[10] = card_type_code(card_type)
    return bytes(e)


def issue_card(master_keys, alg="3des", city="2900", province=None, serial=None,
               card_type="normal", balance=0, start="20240101", expiry="20341231",
               interconnect=True, blocked=False, capp=True, kind="A", phone=False,
               issuer_code=ISSUER_CODE, offline_atc=0, online_atc=0, seed=1, app="tunion"):
    """A fresh TUnionCard. blocked: False/True (temporary) or "permanent".

    app="local": a LocalCard instead (the city's own MOHURD card, emu.local_card): keys
    from the key file's "local" section with the MOHURD factor 2, issuer code
    LOCAL_ISSUER_CODE unless given, app type byte LOCAL_APP_TYPE."""
    if app not in ("tunion", "local"):
        raise ValueError("card application: tunion or local")
    a = alg_id(alg)
    if app == "local" and issuer_code == ISSUER_CODE:
        issuer_code = LOCAL_ISSUER_CODE
    if province is None:
        province = "0000"
        for c, p in CITIES:
            if c == city:
                province = p
    ef15 = make_ef15(city, serial, start, expiry, card_type, issuer_code)
    if app == "local":
        ef15 = ef15[:8] + bytes((LOCAL_APP_TYPE,)) + ef15[9:]
    ef16 = bytearray(55)
    ef16[0] = card_type_code(card_type)
    ef16[1] = 1 if card_type == "staff" else 0
    b = BLOCK_NONE
    if blocked == "permanent":
        b = BLOCK_PERM
    elif blocked:
        b = BLOCK_TEMP
    kw = {}
    cls = TUnionCard
    if app == "local":
        keys = local_card_keys(local_master_keys(master_keys), a, ef15)
        kw["auth_code"] = auth_code(keys, a, ef15)
        cls = LocalCard
    else:
        keys = card_keys(master_keys, a, ef15)
    return cls(
        ef15, keys, alg=a, balance=balance,
        offline_atc=offline_atc, online_atc=online_atc, ef16=bytes(ef16),
        ef17=make_ef17(city, province, interconnect, card_type), capp=capp, blocked=b,
        kind=kind, phone=phone, seed=seed, **kw
    )


class _Rand:
    """Small seeded xorshift32: the same seed gives the same population on every interpreter."""

    def __init__(self, seed):
        self.x = ((seed * 2654435761) ^ 0x9E3779B9) & 0xFFFFFFFF or 1

    def below(self, n):
        x = self.x
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self.x = x
        return (x >> 3) % n


def population(master_keys, seed=1, count=50, today="20250601"):
    """A realistic mix: list of (card, tags). Tags name what a validator must do with it:
    expired, not_yet_valid, blacklisted, low_balance, phone, blocked, not_interconnect,
    sm4, no_capp, type_b, or none of these for a plain good card."""
    r = _Rand(seed)
    y = int(today[:4])
    out = []
    for i in range(count):
        city, prov = CITIES[r.below(len(CITIES))]
        tags = []
        roll = r.below(100)
        start, expiry = "%04d0101" % (y - 1 - r.below(5)), "%04d1231" % (y + 1 + r.below(9))
        balance = 500 + r.below(20000)
        kw = {}
        if roll < 8:
            tags.append("expired")
            expiry = "%04d1231" % (y - 1 - r.below(3))
        elif roll < 13:
            tags.append("not_yet_valid")
            start = "%04d0101" % (y + 1)
        elif roll < 20:
            tags.append("low_balance")
            balance = r.below(150)
        elif roll < 28:
            tags.append("phone")
            kw["phone"] = True
        elif roll < 33:
            tags.append("blacklisted")
        elif roll < 36:
            tags.append("blocked")
            kw["blocked"] = True
        elif roll < 40:
            tags.append("not_interconnect")
            kw["interconnect"] = False
        elif roll < 44:
            tags.append("no_capp")
            kw["capp"] = False
        elif roll < 47:
            tags.append("type_b")
            kw["kind"] = "B"
        alg = "3des"
        if r.below(100) < 25:
            alg = "sm4"
            tags.append("sm4")
        ctype = CARD_TYPES[0][0] if r.below(100) < 70 else CARD_TYPES[1 + r.below(4)][0]
        serial = "0%s%015d" % (city, (seed * 100003 + i * 7919 + r.below(1000)) % 10**15)
        card = issue_card(master_keys, alg=alg, city=city, province=prov, serial=serial,
                          card_type=ctype, balance=balance, start=start, expiry=expiry,
                          offline_atc=r.below(300), online_atc=r.below(20),
                          seed=seed * 1000 + i + 1, **kw)
        out.append((card, tags))
    return out
