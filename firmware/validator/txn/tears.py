# validator.txn.tears: the table of recovery contexts for torn debits (card-protocol.md §6).
# SPDX-License-Identifier: MIT
#
# A context is persisted before every DEBIT and dropped once the final record is
# committed. A DEBIT without an answer leaves it in place: the card may or may not have
# debited, and only that card, tapped again, can tell (offline ATC + GET TRANSACTION
# PROVE). Meanwhile other cards are served, each in its own slot (LRU when full; S13
# keeps 10 with LRU), and a context older than keep_s is dropped (its gray record stays
# in the log for clearing). The whole table is one blob for the persistent store:
#   store.save(buf) persists CTX_TABLE_LEN bytes, store.load(buf) -> bool, store.clear().
from validator.link import apdu
from validator.storage import record as rec
from validator.txn.record import (
    C_ATC,
    C_SAVED,
    C_SERIAL,
    C_TTSN,
    C_VALID,
    CTX_LEN,
    CTX_TABLE_LEN,
    N_CTX,
    ST_NORMAL,
    ST_RECOVERED,
)


class TearTable:
    def __init__(self, store, keep_s):
        self.store = store
        self.keep_s = keep_s
        self.ctx = bytearray(CTX_LEN)  # the context in use (copy of one slot)
        self.t = bytearray(CTX_TABLE_LEN)
        self.tags = [-1] * N_CTX  # tap tag of each slot's 8070: who owns the PSAM session
        self.slot = -1
        self.any = False

    def resume(self, records, img):
        """Load after a reboot; img receives the newest record (zeros if none). A context
        whose final record already is the newest record (power lost between commit and
        drop) is dropped."""
        t = self.t
        for i in range(CTX_TABLE_LEN):
            t[i] = 0
        for k in range(N_CTX):
            self.tags[k] = -1  # PSAM sessions do not survive a reboot
        self.any = False
        self.slot = -1
        seq = records.next_seq - 1  # the newest record, left in img for the caller
        n = records.read(seq, img) if seq >= 0 else 0
        if not self.store.load(t):
            return
        st = img[rec.O_STATUS]
        final = n >= rec.REC_SIZE and (st == ST_NORMAL or st == ST_RECOVERED)
        for k in range(N_CTX):
            o = k * CTX_LEN
            if not t[o + C_VALID]:
                continue
            if (
                final
                and apdu.equal(img, rec.O_SERIAL, t, o + C_SERIAL, 10)
                and apdu.equal(img, rec.O_ATC, t, o + C_ATC, 2)
                and apdu.equal(img, rec.O_TTSN, t, o + C_TTSN, 4)
            ):
                self.slot = k
                self.drop()
            else:
                self.any = True
        self.slot = -1

    def lookup(self, serial, off, now):
        """Expire old contexts; if this card (10-byte serial at serial[off]) has one, load
        it into self.ctx and return True."""
        self.slot = -1
        if not self.any:
            return False
        t = self.t
        found = False
        for k in range(N_CTX):
            o = k * CTX_LEN
            if not t[o + C_VALID]:
                continue
            saved = apdu.get_u32(t, o + C_SAVED)
            if now - saved > self.keep_s or now < saved - 60:
                self.slot = k
                self.drop()  # kept long enough; the gray record stays for clearing
                continue
            if not found and apdu.equal(t, o + C_SERIAL, serial, off, 10):
                apdu.copy(self.ctx, 0, t, o, CTX_LEN)
                self.slot = k
                found = True
        if not found:
            self.slot = -1
        return found

    def persist(self, tag):
        """Persist self.ctx (valid) into this card's slot, a free one or the oldest."""
        t = self.t
        k = self.slot
        if k < 0:
            old = 0
            for j in range(N_CTX):
                o = j * CTX_LEN
                if not t[o + C_VALID]:
                    k = j
                    break
                if apdu.get_u32(t, o + C_SAVED) < apdu.get_u32(t, old * CTX_LEN + C_SAVED):
                    old = j
            if k < 0:
                k = old
        self.slot = k
        self.ctx[C_VALID] = 1
        apdu.copy(t, k * CTX_LEN, self.ctx, 0, CTX_LEN)
        self.tags[k] = tag
        self.store.save(t)
        self.any = True

    def session(self, psam_tag):
        """True when the PSAM still holds the 8070 session of the context in use."""
        return self.slot >= 0 and self.tags[self.slot] == psam_tag

    def drop(self):
        """Forget the context in use (persisted; store.clear() when none is left)."""
        k = self.slot
        if k < 0:
            return
        t = self.t
        t[k * CTX_LEN + C_VALID] = 0
        self.tags[k] = -1
        self.slot = -1
        left = False
        for j in range(N_CTX):
            if t[j * CTX_LEN + C_VALID]:
                left = True
        if left:
            self.store.save(t)
        else:
            self.store.clear()
        self.any = left
