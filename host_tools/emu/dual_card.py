# emu.dual_card: one card carrying two EP applications, the city's own (MOHURD) and T-Union.
# SPDX-License-Identifier: MIT
#
# Common subset. Shanghai-style interconnect cards (card-protocol.md §0, §8) hold the local
# application (AID A00000000386980701, its own keys, balance and counters) and the T-Union
# application (A000000632010105) on one chip: one UID, one ATS, two ADFs. SELECT by name
# picks the application; every other command goes to the one selected last (none yet:
# the T-Union one, which answers 6985 without a selection, as both do). PPSE lists only
# the T-Union application (MOHURD cards use 1PAY.SYS.DDF01, §1). Follows emu.field.


class DualCard:
    """DualCard(tunion, local): a TUnionCard and a LocalCard sharing one chip (the RF
    identity is the T-Union card's). Attributes tunion, local, current (the selected one
    or None), selects (AIDs selected, in order)."""

    def __init__(self, tunion, local):
        self.tunion = tunion
        self.local = local
        local.uid = tunion.uid
        local.kind = tunion.kind
        self.current = None
        self.selects = []

    # the RF identity (emu.field contract) is the chip's: the T-Union card's values
    def __getattr__(self, k):
        if k in ("kind", "uid", "atqa", "sak", "ats", "atqb", "attrib_resp", "phone", "wtx"):
            return getattr(self.tunion, k)
        raise AttributeError(k)

    def apdu(self, cmd):
        cmd = bytes(cmd)
        if len(cmd) >= 5 and cmd[0] == 0x00 and cmd[1] == 0xA4 and cmd[2] == 0x04:
            aid = cmd[5:5 + cmd[4]]
            self.selects.append(aid)
            for app in (self.tunion, self.local):
                if aid == app.aid:
                    if self.current is not None and self.current is not app:
                        self.current.deselect()  # one ADF selected at a time
                    self.current = app
                    return app.apdu(cmd)
            r = self.tunion.apdu(cmd)  # PPSE (T-Union entry only) or 6A82
            if r[-2:] == b"\x90\x00" and self.current is not None:
                self.current.deselect()
                self.current = None
            return r
        return (self.current or self.tunion).apdu(cmd)

    def deselect(self):
        self.current = None
        self.tunion.deselect()
        self.local.deselect()

    def reroll_uid(self):
        pass  # a plastic card: fixed UID
