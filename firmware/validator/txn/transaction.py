# validator.txn.transaction: one tap = one card + PSAM session (card-protocol.md §9, §6).
# SPDX-License-Identifier: MIT
#
# Flow of a flat-fare T-Union tap (6 exchanges for a local card, 7 for a visitor):
#   SELECT A000000632010105 (EF15 from FCI tag 9F0C; PPSE then READ BINARY as fallbacks)
#   [READ BINARY EF17 for visitors] [READ RECORD 1E/1A if the fare policy needs them]
#   checks: dates, repeat window, tear context, blacklist (-> APPLICATION BLOCK)
#   policy.decide -> fare + EF1E record
#   INITIALIZE FOR CAPP PURCHASE (balance, ATC, key version, alg, random)
#   policy.afford(balance) (e.g. a boarding that needs the line's max fare)
#   PSAM 8070 (TTSN, MAC1)
#   UPDATE CAPP DATA CACHE 80DC 1E (and 1A when the policy asks)
#   persist tear context + gray record
#   DEBIT 8054 (TAC, MAC2)        <- no answer: tear, R_TAP_AGAIN, context kept
#   PSAM 8072 (MAC2)
#   final record committed, tear context cleared, THEN the result says R_OK.
# Cards without the compound application fall back to INITIALIZE FOR PURCHASE (type 06).
#
# Two PSAM slots: the MOT PSAM (psam, T-Union) and the local-issuer PSAM
# (local_psam, the city's own MOHURD card). Per tap the T-Union AID is selected first and the
# local AID only when the card answers 6A82 (§8 dual-mode order), so a T-Union tap keeps its
# 6 exchanges; a local card costs that extra SELECT plus 80CA (its MAC1 covers the 9-byte
# authentication code, §5.5). The application's PSAM (self.sam) then serves the whole tap;
# a missing one refuses only that application's cards (R_SAM_FAULT).
#
# Faults (NfcError, SamError, StorageError) are caught here, at the transaction boundary,
# and become reason codes in the preallocated Result; refusals never raise. The tap path
# allocates nothing: every buffer below is made in __init__.
from micropython import const

from validator import errors as E  # one global for the four fault classes
from validator.card import ep
from validator.link import apdu
from validator.storage import record as rec
from validator.util import bcdtime

# Private copies (a `_X = const(..)` is inlined and takes no heap on the device; a public
# name or an imported one costs a slot in this module's globals). Each copy carries the name
# of its source with the leading underscore, and tests/host/test_tap_consts.py checks it
# against that source: errors.py (reason codes, stable: they go into records), card/ep.py
# (card command layouts, card-protocol.md §1-§6), storage/record.py (the record image,
# storage/FORMAT.md §2) and txn/record.py (the tear context layout).
_R_OK = const(0)
_R_BLACKLISTED = const(3)
_R_EXPIRED = const(4)
_R_NOT_YET_VALID = const(5)
_R_APP_BLOCKED = const(6)
_R_NOT_INTERCONNECT = const(7)
_R_ALREADY_PAID = const(10)
_R_TAP_AGAIN = const(11)
_R_RECOVERED = const(12)
_R_CARD_ERROR = const(13)
_R_UNSUPPORTED_CARD = const(14)
_R_SAM_FAULT = const(15)
_R_STORAGE_FULL = const(16)
_R_COMM_ERROR = const(17)
_R_FAULT = const(18)

_AID_TUNION = const(b"\xa0\x00\x00\x06\x32\x01\x01\x05")
_AID_LOCAL = const(b"\xa0\x00\x00\x00\x03\x86\x98\x07\x01")
_PPSE = const(b"2PAY.SYS.DDF01")
_EF15_LEN = const(30)
_SFI_EF15 = const(0x15)
_SFI_EF17 = const(0x17)
_SFI_EF18 = const(0x18)
_SFI_EF1E = const(0x1E)
_AUTH_LEN = const(9)
_TYPE_EP = const(0x06)
_TYPE_CAPP = const(0x09)
_INIT_BAL = const(0)
_INIT_ATC = const(4)
_INIT_KEYVER = const(9)
_INIT_ALG = const(10)
_INIT_RAND = const(11)
_INIT_LEN = const(15)
_DEBIT_TAC = const(0)
_DEBIT_MAC2 = const(4)
_DEBIT_LEN = const(8)
_PROVE_MAC2 = const(0)
_PROVE_TAC = const(4)
_PROVE_LEN = const(8)
_NO_CAPP = const(-3)
_NO_PROVE = const(-4)
_REC1E_LEN = const(48)
_R1E_TERM = const(1)
_R1E_AMOUNT = const(17)
_R1E_BALANCE = const(21)
_R1E_DATETIME = const(25)

_REC_SIZE = const(128)
_O_STATUS = const(5)
_O_DEVICE = const(12)
_O_SERIAL = const(16)
_O_ISSUER = const(26)
_O_CARD_TYPE = const(34)
_O_TXN_TYPE = const(35)
_O_REASON = const(36)
_O_KEY_VER = const(37)
_O_ALG_ID = const(38)
_O_FLAGS = const(39)
_O_AMOUNT = const(40)
_O_BAL_BEFORE = const(44)
_O_BAL_AFTER = const(48)
_O_ATC = const(52)
_O_TERMINAL = const(54)
_O_TTSN = const(60)
_O_DATETIME = const(64)
_O_TAC = const(71)
_O_LINE = const(75)
_O_STATION = const(77)
_O_DIRECTION = const(79)
_O_VEHICLE = const(80)
_O_FARE_LIST = const(86)
_O_FARE_RULE = const(90)
_O_REF_SEQ = const(92)
_O_PSAM_SLOT = const(96)
_O_KEY_INDEX = const(97)
_ST_NORMAL = const(1)
_ST_GRAY = const(2)
_ST_RECOVERED = const(3)
_ST_BLOCKED = const(4)
_ST_REFUSED = const(5)

_CTX_BASE = const(16)
_CTX_IMG = const(64)
_C_GRAY = const(64)
_C_SAVED = const(68)
_C_VALID = const(72)
_CTX_LEN = const(76)
_N_CTX = const(3)
_CTX_TABLE_LEN = const(228)
_C_SERIAL = const(0)
_C_TXN_TYPE = const(19)
_C_AMOUNT = const(24)
_C_BAL_AFTER = const(32)
_C_ATC = const(36)
_C_TERMINAL = const(38)
_C_TTSN = const(44)
_C_DATETIME = const(48)
_O_TXFLAGS = const(98)
_FL_MAC2_UNVERIFIED = const(1)
_FL_MAC2_BAD = const(2)

# policy.needs() bits (the same values as validator.rules.table.NEED_*)
_NEED_1E = const(1)
_NEED_1A = const(2)
_NEED_EF17 = const(4)  # read EF17 for local cards too (visitors always)

# Decision.kind values of a section line (validator.rules.fares): the entry state lives in
# EF1A, which only a compound (CAPP) purchase can write
_K_BOARD = const(3)
_K_SECTION = const(4)
_SEEN = const(8)  # repeat-window ring entries: serial(10) + device seconds(4) each
_SER = const(10)  # serial length
_SEEN_REC = const(14)
_APP_NOT_ACTIVE = const(0x00)  # EF15[8] of a MOHURD card not activated (§2.1, S5/S13)
# The small per-tap buffers share one bytearray (each separate one costs two heap blocks,
# 64 B): INITIALIZE answer(15, first: `ini` offsets are the §3 ones), date-time BCD(7), the
# local card's 80CA code(9), the card challenge(4, GET CHALLENGE Le), the APPLICATION BLOCK
# header the PSAM MACs(5), vehicle(6), device id(4)
_B_INIT = const(0)
_B_DT = const(15)
_B_AUTH = const(22)
_B_CH = const(31)
_B_BLK = const(35)
_B_VEHICLE = const(40)
_B_DEVICE = const(46)  # device id(4)
_B_LEN = const(50)


# ---- the table of recovery contexts for torn debits (card-protocol.md §6) --------------------
# A context is persisted before every DEBIT and dropped once the final record is
# committed. A DEBIT without an answer leaves it in place: the card may or may not have
# debited, and only that card, tapped again, can tell (offline ATC + GET TRANSACTION
# PROVE). Meanwhile other cards are served, each in its own slot (LRU when full; S13
# keeps 10 with LRU), and a context older than keep_s is dropped (its gray record stays
# in the log for clearing). The whole table is one blob for the persistent store:
#   store.save(buf) persists _CTX_TABLE_LEN bytes, store.load(buf) -> bool, store.clear().
# A context is the record image from SERIAL to DIRECTION (everything that entered MAC1/TAC,
# exact, plus line/station), then the gray record's seq, the save time and a valid flag
# (layout: txn/record.py).


class TearTable:
    def __init__(self, store, keep_s):
        self.store = store
        self.keep_s = keep_s
        self.ctx = bytearray(_CTX_LEN)  # the context in use (copy of one slot)
        self.t = bytearray(_CTX_TABLE_LEN)
        self.tags = [-1] * _N_CTX  # tap tag of each slot's 8070: who owns the PSAM session
        self.slot = -1
        self.any = False

    def resume(self, records, img):
        """Load after a reboot; img receives the newest record (zeros if none). A context
        whose final record already is the newest record (power lost between commit and
        drop) is dropped."""
        t = self.t
        for i in range(_CTX_TABLE_LEN):
            t[i] = 0
        for k in range(_N_CTX):
            self.tags[k] = -1  # PSAM sessions do not survive a reboot
        self.any = False
        self.slot = -1
        seq = records.next_seq - 1  # the newest record, left in img for the caller
        n = records.read(seq, img) if seq >= 0 else 0
        if not self.store.load(t):
            return
        st = img[_O_STATUS]
        final = n >= _REC_SIZE and (st == _ST_NORMAL or st == _ST_RECOVERED)
        for k in range(_N_CTX):
            o = k * _CTX_LEN
            if not t[o + _C_VALID]:
                continue
            if (
                final
                and apdu.equal(img, _O_SERIAL, t, o + _C_SERIAL, 10)
                and apdu.equal(img, _O_ATC, t, o + _C_ATC, 2)
                and apdu.equal(img, _O_TTSN, t, o + _C_TTSN, 4)
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
        for k in range(_N_CTX):
            o = k * _CTX_LEN
            if not t[o + _C_VALID]:
                continue
            saved = apdu.get_u32(t, o + _C_SAVED)
            if now - saved > self.keep_s or now < saved - 60:
                self.slot = k
                self.drop()  # kept long enough; the gray record stays for clearing
                continue
            if not found and apdu.equal(t, o + _C_SERIAL, serial, off, 10):
                apdu.copy(self.ctx, 0, t, o, _CTX_LEN)
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
            for j in range(_N_CTX):
                o = j * _CTX_LEN
                if not t[o + _C_VALID]:
                    k = j
                    break
                if apdu.get_u32(t, o + _C_SAVED) < apdu.get_u32(t, old * _CTX_LEN + _C_SAVED):
                    old = j
            if k < 0:
                k = old
        self.slot = k
        self.ctx[_C_VALID] = 1
        apdu.copy(t, k * _CTX_LEN, self.ctx, 0, _CTX_LEN)
        self.tags[k] = tag
        self.store.save(t)
        self.any = True

    def drop(self):
        """Forget the context in use (persisted; store.clear() when none is left)."""
        k = self.slot
        if k < 0:
            return
        t = self.t
        t[k * _CTX_LEN + _C_VALID] = 0
        self.tags[k] = -1
        self.slot = -1
        left = False
        for j in range(_N_CTX):
            if t[j * _CTX_LEN + _C_VALID]:
                left = True
        if left:
            self.store.save(t)
        else:
            self.store.clear()
        self.any = left


class Result:
    """What a tap produced; one instance, overwritten per tap (clear() sets every field)."""

    def clear(self):
        self.reason = _R_OK
        self.amount = 0  # fen debited (or recovered)
        self.balance = -1  # balance after, fen; -1 unknown
        self.status = 0  # ST_* of the record written, 0 = none
        self.seq = -1  # record sequence number from the log, -1 = none
        self.exchanges = 0  # card + PSAM APDUs in this tap
        self.sw = 0  # last card status word (diagnostics)
        self.capp = False  # True: compound purchase (type 09)


class Transaction:
    """The tap engine.

    Transaction(reader, psam, clock, policy, records, tears, blacklist, local_city=0,
                device_id=b"\0" * 4, line=0, position=None, vehicle=b"\0" * 6, psam_slot=0,
                local_psam=None, local_slot=1, repeat_window_s=60, tear_keep_s=600,
                log_refusals=True)

    reader     transmit(cmd, n, resp) -> int; NfcTimeout when the card is gone
    psam       validator.sam.psam.Psam, booted (ready, terminal, key_index): the MOT PSAM
               for T-Union cards, in slot psam_slot
    local_psam Psam(local=True) in slot local_slot for the city's own (MOHURD) cards, or
               None: the local AID is then never selected (single-slot board)
    clock      now() -> device seconds
    policy     needs() -> NEED_* bits; decide(now, ef15, ef17, rec1e, rec1a) -> object
               with reason, amount, base, kind, rule, flags, rec1e (48 bytes), write1a,
               rec1a (128 bytes); afford(balance) -> R_OK or a refusal, asked with
               INITIALIZE's balance -- validator.rules.fares.FarePolicy
    records    storage.recordlog.RecordLog: append(img) -> seq, next_seq, read(seq, buf)
    tears      storage.journal.TearStore: save(buf), load(buf) -> bool, clear()
    blacklist  storage.blacklist.Blacklist: contains(serial10) -> bool
    local_city BCD city code as an int (0x2900): other cities must show EF17 interconnect
    position   optional object with line, stop, direction read at each tap (rules Position)
    """

    def __init__(self, reader, psam, clock, policy, records, tears, blacklist,
                 local_city=0, device_id=b"\x00\x00\x00\x00", line=0, position=None,
                 vehicle=b"\x00\x00\x00\x00\x00\x00", psam_slot=0, local_psam=None,
                 local_slot=1, repeat_window_s=60, tear_keep_s=600, log_refusals=True):
        self.reader = reader
        self.psam = psam  # MOT PSAM (T-Union)
        self.local_psam = local_psam  # local-issuer PSAM or None
        self.sam = psam  # the PSAM of the card in the field (set per tap by _select)
        self.mot_slot = psam_slot
        self.local_slot = local_slot
        self.clock = clock
        self.policy = policy
        self.records = records
        self.blacklist = blacklist
        self.local_city = local_city
        self.line = line
        self.position = position
        b = bytearray(_B_LEN)  # the small buffers, _B_* above
        self._b = b
        apdu.copy(b, _B_VEHICLE, vehicle, 0, min(len(vehicle), 6))
        apdu.copy(b, _B_DEVICE, device_id, 0, 4)
        self.repeat_window_s = repeat_window_s
        self.log_refusals = log_refusals
        self.result = Result()
        self.result.clear()
        # the APDU buffers are the PSAM module's (sam.psam _CMD/_RESP: sizes there): one
        # device at a time, and what a PSAM call needs from resp is copied out first
        self.cmd = psam.cmd
        self.resp = psam.resp
        # What the policy and the record keep past the next exchange, each at its spec size
        # (resp is overwritten by every exchange): EF15 30 (§2.1), EF17 11 (§2.3), EF1E
        # record 48 (§2.6), EF1A record 128 (§2.5), the record image 128 (FORMAT.md §2).
        self.ef15 = bytearray(_EF15_LEN)
        self._serial = memoryview(self.ef15)[10:20]  # blacklist key, made once
        self.ef17 = bytearray(11)
        self.rec1e = bytearray(_REC1E_LEN)
        self.rec1a = bytearray(128)
        self.img = bytearray(_REC_SIZE)
        self.tears = TearTable(tears, tear_keep_s)
        # the ring, then its next index in the last byte; time 0 = empty entry
        self._seen = bytearray(_SEEN * _SEEN_REC + 1)
        self._tag = 0  # tap counter; the PSAM session belongs to psam.session_tag
        self._known = False  # EF15 of a refused SELECT is known (blocked card's FCI)
        self.resume()

    # ---- boot ------------------------------------------------------------------------------
    def resume(self):
        """After a reboot: reload the tear contexts (§6.1), and let the newest paid ride
        count for the repeat window, so a passenger tapping again after a power cut
        between the final record and the feedback is not charged twice."""
        img = self.img
        for i in range(_REC_SIZE):
            img[i] = 0
        self.tears.resume(self.records, img)
        st = img[_O_STATUS]
        if st == _ST_NORMAL or st == _ST_RECOVERED:
            t = bcdtime.unpack_datetime(img, _O_DATETIME)
            if t > 0:
                self._remember_serial(img, _O_SERIAL, t)

    def maintain(self):
        """Idle-time flash housekeeping of the stores the tap path appends to (no erase
        happens during a tap): call between taps, like the app's storage task."""
        self.records.maintain()
        m = getattr(self.tears.store, "maintain", None)
        if m is not None:
            m()

    # ---- exchanges --------------------------------------------------------------------------
    def _card(self, n):
        """Send self.cmd[:n] to the card; returns data length, status word in result.sw."""
        r = self.reader.transmit(self.cmd, n, self.resp)
        self.result.exchanges += 1
        sw = apdu.sw(self.resp, r)
        if sw >> 8 == 0x6C and n == 5:
            self.cmd[4] = sw & 0xFF  # wrong Le: resend with Le = SW2 (§2, S1/S13)
            r = self.reader.transmit(self.cmd, n, self.resp)
            self.result.exchanges += 1
            sw = apdu.sw(self.resp, r)
        if r < 2:
            raise E.NfcError()
        self.result.sw = sw
        return r - 2

    # ---- the tap ------------------------------------------------------------------------------
    def tap(self, card=None):
        """Run one tap for the card in the field; returns self.result (R_* in .reason)."""
        res = self.result
        res.clear()
        self._tag += 1
        if self.records.full:
            # FORMAT.md §0.6: a log full of unacknowledged records refuses the tap until a
            # sync. Checked first: nothing is sent to the card or the PSAM and no tear
            # context is saved, since no record of what followed could be kept.
            res.reason = _R_STORAGE_FULL
            return res
        loc = self.local_psam
        if not self.psam.ready and (loc is None or not loc.ready):
            res.reason = _R_SAM_FAULT  # no PSAM at all: nothing is sent to the card
            return res
        self.sam = self.psam
        try:
            res.reason = self._tap()
        except E.NfcError:  # NfcTimeout included: the card left or the reader failed
            res.reason = _R_COMM_ERROR
        except E.SamError:
            res.reason = _R_SAM_FAULT
        except E.StorageError:
            # the log filled during this tap (its last slot took the gray record), or the
            # flash failed; either way a saved tear context stays for the next tap
            res.reason = _R_STORAGE_FULL if self.records.full else _R_FAULT
        except E.ValidatorError:
            res.reason = _R_CARD_ERROR  # any other fault of the tap (CardError)
        return res

    def _select(self):
        """SELECT the EP; EF15 into self.ef15. Returns R_OK or a refusal."""
        c = self.cmd
        n = self._card(ep.select(c, _AID_TUNION, 8))
        code = apdu.lookup(ep.SW_SELECT, self.result.sw, _R_CARD_ERROR)
        if code == _R_UNSUPPORTED_CARD and self.local_psam is not None:
            # no T-Union EP: the city's own card (§8 dual-mode order: T-Union, local, PPSE)
            n = self._card(ep.select(c, _AID_LOCAL, len(_AID_LOCAL)))
            code = apdu.lookup(ep.SW_SELECT, self.result.sw, _R_CARD_ERROR)
            if code != _R_UNSUPPORTED_CARD:
                self.sam = self.local_psam
        if code == _R_UNSUPPORTED_CARD:
            # PPSE fallback (§1): a phone or SE may carry a longer AID
            n = self._card(ep.select(c, _PPSE, len(_PPSE)))
            if apdu.lookup(ep.SW_SELECT, self.result.sw, _R_CARD_ERROR) != _R_OK:
                return _R_UNSUPPORTED_CARD
            a = ep.ppse_aid(self.resp, n + 2)
            if a < 0:
                return _R_UNSUPPORTED_CARD
            ln = a >> 16
            if ln > 16:
                return _R_UNSUPPORTED_CARD
            apdu.copy(c, 5, self.resp, a & 0xFFFF, ln)
            apdu.header(c, 0x00, 0xA4, 0x04, 0x00)
            c[4] = ln
            c[5 + ln] = 0
            n = self._card(6 + ln)
            code = apdu.lookup(ep.SW_SELECT, self.result.sw, _R_CARD_ERROR)
        if code != _R_OK:
            if code == _R_APP_BLOCKED and n > 0:
                # a blocked card still shows its FCI (6283, §1): keep EF15 for the record
                off = ep.fci_ef15(self.resp, n + 2)
                if off >= 0:
                    apdu.copy(self.ef15, 0, self.resp, off, _EF15_LEN)
                    self._known = True
            return code
        off = ep.fci_ef15(self.resp, n + 2)
        if off >= 0:
            apdu.copy(self.ef15, 0, self.resp, off, _EF15_LEN)
            return _R_OK
        n = self._card(ep.read_binary(c, _SFI_EF15, 0, _EF15_LEN))
        if apdu.lookup(ep.SW_READ, self.result.sw, _R_CARD_ERROR) != _R_OK or n < _EF15_LEN:
            return _R_CARD_ERROR
        apdu.copy(self.ef15, 0, self.resp, 0, _EF15_LEN)
        return _R_OK

    def _tap(self):
        self._known = False
        code = self._select()
        now = self.clock.now()
        bcdtime.pack_datetime(now, self._b, _B_DT)
        if code != _R_OK:
            if self._known:
                self._img_card()
                return self._refuse(code)  # logged: a locked card presented again
            return code
        if not self.sam.ready:
            return _R_SAM_FAULT  # this application's PSAM is missing or wrong
        e = self.ef15
        self._img_card()
        if self.sam is self.local_psam and e[8] == _APP_NOT_ACTIVE:
            # MOHURD cards: application type 00 = not activated (§2.1, S5/S13)
            return self._refuse(_R_UNSUPPORTED_CARD)
        # -- dates (§2.1 EF15[20..27]); the expiry day itself is still valid
        start = bcdtime.unpack_date(e, 20)
        end = bcdtime.unpack_date(e, 24)
        if start < 0 or end < 0:
            return self._refuse(_R_CARD_ERROR)
        if now < start:
            return self._refuse(_R_NOT_YET_VALID)
        if now >= end + 86400:
            return self._refuse(_R_EXPIRED)
        # -- repeat window: the same card again right after paying is not charged (§7, S5)
        s = self._seen
        for k in range(_SEEN):
            o = k * _SEEN_REC
            t = apdu.get_u32(s, o + _SER)
            if t and 0 <= now - t < self.repeat_window_s and apdu.equal(s, o, e, 10, _SER):
                return _R_ALREADY_PAID
        # -- tear context: expire it, or note that this is the torn card (§6.3)
        torn = self.tears.lookup(e, 10, now)
        # -- blacklist -> APPLICATION BLOCK + "blocked" record (§3, §7)
        if self.blacklist.contains(self._serial):
            return self._block()
        # -- the torn card is back: settle the old debit before anything else (§6.4)
        if torn:
            ctx = self.tears.ctx
            code = self._initialize(ctx[_C_TXN_TYPE] == _TYPE_CAPP,
                                    apdu.get_u32(ctx, _C_AMOUNT))
            r = self._recover(code)
            if r >= 0:
                return r
            # the debit never happened: a fresh purchase follows (new INIT, new TTSN)
        # -- interconnect (EF17[8..9], §2.3): visitors must be interconnect cards
        needs = self.policy.needs()
        city = (e[2] << 8) | e[3]
        ef17 = None
        if city != self.local_city or needs & _NEED_EF17:
            n = self._card(ep.read_binary(self.cmd, _SFI_EF17, 0, 11))
            if apdu.lookup(ep.SW_READ, self.result.sw, _R_CARD_ERROR) != _R_OK or n < 11:
                return self._refuse(_R_CARD_ERROR)
            apdu.copy(self.ef17, 0, self.resp, 0, 11)
            ef17 = self.ef17
            if city != self.local_city and ef17[8] == 0 and ef17[9] == 0:
                return self._refuse(_R_NOT_INTERCONNECT)
        r1e = None
        if needs & _NEED_1E:
            n = self._card(ep.read_record(self.cmd, 1, _SFI_EF1E, _REC1E_LEN))
            if apdu.lookup(ep.SW_READ, self.result.sw, _R_CARD_ERROR) == _R_OK and n >= _REC1E_LEN:
                apdu.copy(self.rec1e, 0, self.resp, 0, _REC1E_LEN)
                r1e = self.rec1e
        r1a = None
        if needs & _NEED_1A:
            n = self._card(ep.read_record(self.cmd, 2, 0x1A, 128))
            if apdu.lookup(ep.SW_READ, self.result.sw, _R_CARD_ERROR) == _R_OK and n >= 128:
                apdu.copy(self.rec1a, 0, self.resp, 0, 128)
                r1a = self.rec1a
        # -- fare
        d = self.policy.decide(now, e, ef17, r1e, r1a)
        if d.reason != _R_OK:
            return self._refuse(d.reason)
        amount = d.amount
        if self.sam is self.local_psam:
            # §5.5: the MOHURD MAC1 covers the card's 80CA authentication code. Read it before
            # INITIALIZE: any other command between 8050 and 8054 ends the purchase session.
            n = self._card(ep.auth_code(self.cmd))
            if apdu.lookup(ep.SW_READ, self.result.sw, _R_CARD_ERROR) != _R_OK or n < _AUTH_LEN:
                return self._refuse(_R_CARD_ERROR)
            apdu.copy(self._b, _B_AUTH, self.resp, 0, _AUTH_LEN)
        apdu.put_u32(self.img, _O_FARE_LIST, d.base)
        self.img[_O_FARE_RULE] = (d.rule >> 8) & 0xFF
        self.img[_O_FARE_RULE + 1] = d.rule & 0xFF
        self.img[_O_FLAGS] = d.flags & 0xFF
        self.img[_O_TXN_TYPE] = _TYPE_CAPP
        capp_ok = True
        for _ in range(2):  # second round only for the simple-purchase fallback
            code = self._initialize(capp_ok, amount)
            if code == _NO_CAPP and capp_ok:
                capp_ok = False
                continue
            if code != _R_OK:
                return self._refuse(code)
            if not capp_ok and d.write1a and (d.kind == _K_BOARD or d.kind == _K_SECTION):
                # a section boarding lives in EF1A, which only a CAPP purchase can write;
                # on other lines a simple purchase (type 06) goes ahead without the EF1A
                # day-total update, so such a card pays the fare but is never capped
                return self._refuse(_R_UNSUPPORTED_CARD)
            # the fare was decided without the balance (INITIALIZE needs the amount); the
            # policy checks INITIALIZE's balance now, before the PSAM is involved
            bal = apdu.get_u32(self._b, _B_INIT + _INIT_BAL)
            code = self.policy.afford(bal)
            if code != _R_OK:
                apdu.put_u32(self.img, _O_BAL_BEFORE, bal)
                return self._refuse(code)
            code = self._purchase(capp_ok, amount, d, now)
            if code == _NO_CAPP and capp_ok:
                capp_ok = False
                continue
            return code
        return self._refuse(_R_CARD_ERROR)

    def _initialize(self, capp_ok, amount):
        n = self._card(ep.init_purchase(self.cmd, capp_ok, self.sam.key_index, amount,
                                           self.sam.terminal, 0))
        code = apdu.lookup(ep.SW_INIT, self.result.sw, _R_CARD_ERROR)
        if code == _R_OK:
            if n < _INIT_LEN:
                return _R_CARD_ERROR
            apdu.copy(self._b, _B_INIT, self.resp, 0, _INIT_LEN)
        return code

    def _purchase(self, capp_ok, amount, d, now):
        """INIT done: 8070, 80DC, persist, 8054, 8072, final record."""
        res = self.result
        psam = self.sam
        ini = self._b  # the INITIALIZE answer is at _B_INIT = 0
        ttype = _TYPE_CAPP if capp_ok else _TYPE_EP
        res.capp = capp_ok
        atc = apdu.get_u16(ini, _INIT_ATC)
        bal = apdu.get_u32(ini, _INIT_BAL)
        # PSAM 8070: MAC1 over amount, type, terminal, date-time (§4, §5.3)
        psam.mac1(ini, _INIT_RAND, atc, amount, ttype, ini, _B_DT, ini[_INIT_KEYVER],
                  ini[_INIT_ALG], self.ef15, 0, ini, _B_AUTH)
        res.exchanges += 1
        psam.session_tag = self._tag
        img = self.img
        img[_O_TXN_TYPE] = ttype
        apdu.put_u32(img, _O_AMOUNT, amount)
        apdu.put_u32(img, _O_BAL_BEFORE, bal)
        apdu.put_u32(img, _O_BAL_AFTER, bal - amount)
        img[_O_ATC] = ini[_INIT_ATC]
        img[_O_ATC + 1] = ini[_INIT_ATC + 1]
        apdu.copy(img, _O_TTSN, psam.out, 0, 4)
        img[_O_KEY_VER] = ini[_INIT_KEYVER]
        img[_O_ALG_ID] = ini[_INIT_ALG]
        if capp_ok:
            # the trip records (§2.5, §2.6); the engine owns amount/balance/time/terminal
            if d.write1a:
                c = self.cmd
                # P1 = record number N of the record ID 27 0N (§3), P2 = D0 (SFI 1A)
                apdu.header(c, 0x80, 0xDC, d.rec1a[1], 0xD0)
                c[4] = 128
                apdu.copy(c, 5, d.rec1a, 0, 128)
                self._card(133)
                code = apdu.lookup(ep.SW_CAPP, self.result.sw, _R_CARD_ERROR)
                if code != _R_OK:
                    return code if code == _NO_CAPP else self._refuse(code)
            r = d.rec1e
            r[_R1E_TERM] = 0
            r[_R1E_TERM + 1] = 0
            apdu.copy(r, _R1E_TERM + 2, psam.terminal, 0, 6)
            apdu.put_u32(r, _R1E_AMOUNT, amount)
            apdu.put_u32(r, _R1E_BALANCE, bal - amount)
            apdu.copy(r, _R1E_DATETIME, self._b, _B_DT, 7)
            self._card(ep.update_1e(self.cmd, r, 0))
            code = apdu.lookup(ep.SW_CAPP, self.result.sw, _R_CARD_ERROR)
            if code != _R_OK:
                return code if code == _NO_CAPP else self._refuse(code)
        # persist the recovery context and the gray record BEFORE the debit (§6.1)
        img[_O_STATUS] = _ST_GRAY
        ctx = self.tears.ctx
        apdu.copy(ctx, 0, img, _CTX_BASE, _CTX_IMG)
        apdu.put_u32(ctx, _C_GRAY, self.records.next_seq)  # the gray record's seq
        apdu.put_u32(ctx, _C_SAVED, now)
        self.tears.persist(self._tag)
        gray = self.records.append(img)
        # DEBIT (§3): no answer = tear, the card may or may not have debited
        try:
            n = self._card(ep.debit(self.cmd, psam.out, 0, self._b, _B_DT, psam.out, 4))
        except E.NfcTimeout:
            res.seq = gray
            res.status = _ST_GRAY
            return _R_TAP_AGAIN
        code = apdu.lookup(ep.SW_DEBIT, self.result.sw, _R_CARD_ERROR)
        if code != _R_OK or n < _DEBIT_LEN:
            # any status word: the card did not debit (§6.2); the refused record names
            # the gray one it closes (REF_SEQ), so clearing never waits for it
            self.tears.drop()
            apdu.put_u32(img, _O_REF_SEQ, gray)
            return self._refuse(code if code != _R_OK else _R_CARD_ERROR)
        apdu.copy(img, _O_TAC, self.resp, _DEBIT_TAC, 4)
        img[_O_TXFLAGS] = 0
        ok2 = True
        try:
            ok2 = psam.verify_mac2(self.resp, _DEBIT_MAC2)
            res.exchanges += 1
            if not ok2:
                img[_O_TXFLAGS] = _FL_MAC2_BAD
        except E.SamError:
            # the card has debited and its TAC is in hand: record the ride, and let the
            # PSAM fault stop the following taps (psam.ready) instead of losing this one
            psam.ready = False
            img[_O_TXFLAGS] = _FL_MAC2_UNVERIFIED
        img[_O_STATUS] = _ST_NORMAL
        apdu.put_u32(img, _O_REF_SEQ, gray)
        res.seq = self.records.append(img)
        res.status = _ST_NORMAL
        self.tears.drop()
        res.amount = amount
        res.balance = bal - amount
        if not ok2:
            return _R_CARD_ERROR
        self._remember_serial(self.ef15, 10, now)
        return _R_OK

    def _recover(self, code):
        """The torn card is back and INITIALIZE answered `code` (§6.4-6.6). Returns a
        reason, or -1 when the debit did not happen (a fresh purchase follows)."""
        res = self.result
        ctx = self.tears.ctx
        s = apdu.get_u16(ctx, _C_ATC)
        if code == _R_OK:
            atc = apdu.get_u16(self._b, _B_INIT + _INIT_ATC)
            if atc == s:
                self.tears.drop()
                return -1  # ATC unchanged: the debit never happened
            if atc != ((s + 1) & 0xFFFF):
                self.tears.drop()  # used elsewhere since: clearing resolves the gray record
                return -1
        elif code == _NO_CAPP:
            return -1
        # ATC moved by one (or INIT refused, e.g. 9401 after the debit). The card's own log
        # (EF18 record 1, §2.4) says whose debit that was: ATC, type, terminal and date-time
        # must be ours -- a card torn here and then used elsewhere also shows ATC+1.
        n = self._card(ep.read_record(self.cmd, 1, _SFI_EF18, 23))
        if apdu.lookup(ep.SW_READ, self.result.sw, _R_CARD_ERROR) == _R_OK and n >= 23:
            r = self.resp
            if not (
                apdu.get_u16(r, 0) == ((s + 1) & 0xFFFF)
                and r[9] == ctx[_C_TXN_TYPE]
                and apdu.equal(r, 10, ctx, _C_TERMINAL, 6)
                and apdu.equal(r, 16, ctx, _C_DATETIME, 7)
            ):
                self.tears.drop()  # not our debit: the gray record stays for clearing
                return -1 if code == _R_OK else self._refuse(code)
        n = self._card(ep.prove(self.cmd, ctx[_C_TXN_TYPE], (s + 1) & 0xFFFF))
        pc = apdu.lookup(ep.SW_PROVE, self.result.sw, _R_CARD_ERROR)
        if pc == _NO_PROVE:
            self.tears.drop()
            return -1 if code == _R_OK else self._refuse(code)
        if pc != _R_OK or n < _PROVE_LEN:
            return self._refuse(_R_CARD_ERROR)
        img = self.img
        apdu.copy(img, _CTX_BASE, ctx, 0, _CTX_IMG)  # saved TTSN, date-time, ATC... exact
        apdu.copy(img, _O_REF_SEQ, ctx, _C_GRAY, 4)
        apdu.copy(img, _O_TAC, self.resp, _PROVE_TAC, 4)
        img[_O_TXFLAGS] = 0
        tt = self.tears
        if tt.slot >= 0 and tt.tags[tt.slot] == self.sam.session_tag:
            # the PSAM still holds the 8070 session of this context: check MAC2 (§6.5)
            try:
                ok2 = self.sam.verify_mac2(self.resp, _PROVE_MAC2)
                res.exchanges += 1
                if not ok2:
                    img[_O_TXFLAGS] = _FL_MAC2_BAD
            except E.SamError:
                # as after a debit: the TAC is in hand, record the ride and let the PSAM
                # fault stop the following taps (a SamError here would keep the context
                # and retry the dead PSAM at every tap of this card)
                self.sam.ready = False
                img[_O_TXFLAGS] = _FL_MAC2_UNVERIFIED
        else:
            img[_O_TXFLAGS] = _FL_MAC2_UNVERIFIED
        img[_O_STATUS] = _ST_RECOVERED
        res.seq = self.records.append(img)
        res.status = _ST_RECOVERED
        self.tears.drop()
        res.amount = apdu.get_u32(ctx, _C_AMOUNT)
        res.balance = apdu.get_u32(ctx, _C_BAL_AFTER)
        res.capp = ctx[_C_TXN_TYPE] == _TYPE_CAPP
        self._remember_serial(self.ef15, 10, self.clock.now())
        return _R_RECOVERED

    def _block(self):
        """Blacklisted: lock the application with a PSAM MAC, record it, refuse (§3, §7).

        INITIALIZE (amount 0, no debit) first: its algorithm id picks the PSAM's
        maintenance key family and the MAC block size."""
        res = self.result
        alg = 0
        n = self._card(ep.init_purchase(self.cmd, False, self.sam.key_index, 0,
                                           self.sam.terminal, 0))
        if apdu.lookup(ep.SW_INIT, self.result.sw, _R_CARD_ERROR) == _R_OK and n >= _INIT_LEN:
            alg = self.resp[_INIT_ALG]
            self.img[_O_KEY_VER] = self.resp[_INIT_KEYVER]
            self.img[_O_ALG_ID] = alg
        n = self._card(ep.get_challenge(self.cmd))
        if self.result.sw == 0x9000 and n >= 4:  # GET CHALLENGE: data on 9000 only (§3)
            b = self._b
            apdu.copy(b, _B_CH, self.resp, 0, 4)
            ep.app_block(self.cmd, None, 0)  # the header, kept in b: the 801A reuses cmd
            apdu.copy(b, _B_BLK, self.cmd, 0, 5)
            self.sam.block_mac(self.ef15, 0, b, _B_CH, b, _B_BLK, alg)
            res.exchanges += 2
            self._card(ep.app_block(self.cmd, self.sam.out, 0))
        img = self.img
        img[_O_STATUS] = _ST_BLOCKED
        img[_O_REASON] = _R_BLACKLISTED
        img[_O_TXN_TYPE] = 0
        res.seq = self.records.append(img)
        res.status = _ST_BLOCKED
        return _R_BLACKLISTED

    # ---- helpers ------------------------------------------------------------------------------
    def _img_card(self):
        """Start the record image (FORMAT.md §2) with the card, the place and the time."""
        img = self.img
        rec.reset(img)
        e = self.ef15
        apdu.copy(img, _O_DEVICE, self._b, _B_DEVICE, 4)
        apdu.copy(img, _O_SERIAL, e, 10, _SER)
        apdu.copy(img, _O_ISSUER, e, 0, 8)
        img[_O_CARD_TYPE] = e[28]
        apdu.copy(img, _O_TERMINAL, self.sam.terminal, 0, 6)
        apdu.copy(img, _O_DATETIME, self._b, _B_DT, 7)
        pos = self.position
        line = self.line if pos is None else pos.line
        img[_O_LINE] = (line >> 8) & 0xFF
        img[_O_LINE + 1] = line & 0xFF
        if pos is not None:
            img[_O_STATION] = (pos.stop >> 8) & 0xFF
            img[_O_STATION + 1] = pos.stop & 0xFF
            img[_O_DIRECTION] = pos.direction & 0xFF
        apdu.copy(img, _O_VEHICLE, self._b, _B_VEHICLE, 6)
        img[_O_PSAM_SLOT] = self.local_slot if self.sam is self.local_psam else self.mot_slot
        img[_O_KEY_INDEX] = self.sam.key_index

    def _refuse(self, code):
        if self.log_refusals:
            img = self.img
            img[_O_STATUS] = _ST_REFUSED
            img[_O_REASON] = code
            img[_O_TXN_TYPE] = 0  # no debit (FORMAT.md §2)
            for i in range(4):
                img[_O_TAC + i] = 0xFF
            self.result.seq = self.records.append(img)
            self.result.status = _ST_REFUSED
        return code

    def _remember_serial(self, src, off, t):
        k = self._seen[_SEEN * _SEEN_REC]
        o = k * _SEEN_REC
        apdu.copy(self._seen, o, src, off, _SER)
        apdu.put_u32(self._seen, o + _SER, t or 1)
        self._seen[_SEEN * _SEEN_REC] = (k + 1) % _SEEN
