# emu.local_card: the city's own CPU card (MOHURD "住建部" profile), APDU level.
# SPDX-License-Identifier: MIT
#
# Common subset. card-protocol.md §0 caveat, §5.5, §8: a local-issuer card shares the PBOC
# EP command set and crypto with T-Union, so LocalCard is a TUnionCard with another
# application profile:
#   * AID A00000000386980701 (§0, §8) -- a dual-mode validator selects it after the
#     T-Union AID answered 6A82; no PPSE entry (MOHURD cards use 1PAY.SYS.DDF01, §1).
#   * 80CA returns the 9-byte authentication code (§5.5: `85 88D32B76 88D32B76` on the
#     Huada card), and MAC1 covers the plain 18-byte input plus those 9 bytes (§5.5,
#     real-card vector: MAC1 303D735D with the code, CD573164 without, which the card
#     refused). MAC2 and TAC are the plain PBOC ones (§5.5 vector: both match).
#   * keys diversified with factor 2 = cityCode(2) FF 00 00 00 00 00 (§4 "MOHURD PSAMs in
#     S5/S7"), under the local issuer's own master keys (emu.issuer.local_master_keys).
# EF15 keeps the T-Union layout here (city code in EF15[2..3]) [INF: the MOHURD file layout
# differs (§0) but only EF15 dates, serial and city are read by the validator].
from emu.tunion_card import TUnionCard
from emu.tunion_ep import EP_COMMANDS, SW_CONDITIONS, SW_P1P2, SW_WRONG_LENGTH, _out, _sw

AID_LOCAL = bytes.fromhex("A00000000386980701")  # §0/§8 MOHURD city-card application
LABEL_LOCAL = b"MOHURD_EP"  # [INF] FCI tag 50 label; the validator does not read it
AUTH_LEN = 9  # §5.5: 80CA answer, appended to the MAC1 input
# [INF] 80CA P1 P2: the S8 log shows only "80CA"; GET DATA style 80 CA 00 00 09.
AUTH_P1P2 = 0x0000
# [INF] the leading byte of the real code (§5.5: 85); the other 8 bytes are per card.
AUTH_TAG = 0x85


def get_auth_code(self, cmd, p1, p2, data, le, ch):
    """80CA 00 00 09: the MOHURD authentication code (§5.5); needs the application."""
    if not self._selected:
        return _sw(SW_CONDITIONS)
    if (p1 << 8) | p2 != AUTH_P1P2:
        return _sw(SW_P1P2)
    if data or le is None:
        return _sw(SW_WRONG_LENGTH)
    return _out(self.auth_code, le)


LOCAL_COMMANDS = dict(EP_COMMANDS)
LOCAL_COMMANDS[0xCA] = get_auth_code


class LocalCard(TUnionCard):
    """TUnionCard(ef15, keys, ...) plus auth_code (9 bytes). keys: already diversified with
    the MOHURD factors (emu.issuer.issue_card(..., app="local"))."""

    aid = AID_LOCAL
    label = LABEL_LOCAL
    commands = LOCAL_COMMANDS

    def __init__(self, ef15, keys, auth_code=b"\x85" + bytes(8), **kw):
        if len(auth_code) != AUTH_LEN:
            raise ValueError("authentication code is 9 bytes")
        self.auth_code = bytes(auth_code)
        TUnionCard.__init__(self, ef15, keys, **kw)

    def to_dict(self):
        d = TUnionCard.to_dict(self)
        d["app"] = "local"
        d["auth_code"] = self.auth_code.hex()
        return d


def from_dict(d):
    """A card from to_dict(): LocalCard when d["app"] == "local", else a TUnionCard."""
    if d.get("app") != "local":
        return TUnionCard.from_dict(d)
    c = LocalCard.from_dict(d)  # the inherited classmethod builds a LocalCard
    c.auth_code = bytes.fromhex(d["auth_code"])
    return c
