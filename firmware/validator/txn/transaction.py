# validator.txn.transaction: one tap = one card + PSAM session (card-protocol.md §9, §6).
# SPDX-License-Identifier: MIT
#
# Flow of a flat-fare T-Union tap (6 exchanges for a local card, 7 for a visitor):
#   SELECT A000000632010105 (EF15 from FCI tag 9F0C; PPSE then READ BINARY as fallbacks)
#   [READ BINARY EF17 for visitors] [READ RECORD 1E/1A if the fare policy needs them]
#   checks: dates, repeat window, tear context, blacklist (-> APPLICATION BLOCK)
#   policy.decide -> fare + EF1E record
#   INITIALIZE FOR CAPP PURCHASE (balance, ATC, key version, alg, random)
#   PSAM 8070 (TTSN, MAC1)
#   UPDATE CAPP DATA CACHE 80DC 1E (and 1A when the policy asks)
#   persist tear context + gray record
#   DEBIT 8054 (TAC, MAC2)        <- no answer: tear, R_TAP_AGAIN, context kept
#   PSAM 8072 (MAC2)
#   final record committed, tear context cleared, THEN the result says R_OK.
# Cards without the compound application fall back to INITIALIZE FOR PURCHASE (type 06).
#
# Two PSAM slots (issue 4): the MOT PSAM (psam, T-Union) and the local-issuer PSAM
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

from validator.card import block, capp, purse, read, select
from validator.errors import (
    R_ALREADY_PAID,
    R_APP_BLOCKED,
    R_BLACKLISTED,
    R_CARD_ERROR,
    R_COMM_ERROR,
    R_EXPIRED,
    R_FAULT,
    R_NOT_INTERCONNECT,
    R_NOT_YET_VALID,
    R_OK,
    R_RECOVERED,
    R_SAM_FAULT,
    R_TAP_AGAIN,
    R_UNSUPPORTED_CARD,
    NfcError,
    NfcTimeout,
    SamError,
    StorageError,
)
from validator.link import apdu
from validator.storage import record as rec
from validator.txn.record import (
    C_AMOUNT,
    C_ATC,
    C_BAL_AFTER,
    C_DATETIME,
    C_GRAY,
    C_SAVED,
    C_TERMINAL,
    C_TXN_TYPE,
    CTX_BASE,
    CTX_IMG,
    FL_MAC2_BAD,
    FL_MAC2_UNVERIFIED,
    O_TXFLAGS,
    ST_BLOCKED,
    ST_GRAY,
    ST_NORMAL,
    ST_RECOVERED,
    ST_REFUSED,
)
from validator.txn.tears import TearTable
from validator.util import bcdtime

# policy.needs() bits (the same values as validator.rules.table.NEED_*)
NEED_1E = const(1)
NEED_1A = const(2)
_NEED_EF17 = const(4)  # read EF17 for local cards too (visitors always)

# Decision.kind values of a section line (validator.rules.fares): the entry state lives in
# EF1A, which only a compound (CAPP) purchase can write
_K_BOARD = const(3)
_K_SECTION = const(4)
_SEEN = const(8)  # repeat-window ring entries
_SER = const(10)  # serial length
_APP_NOT_ACTIVE = const(0x00)  # EF15[8] of a MOHURD card not activated (§2.1, S5/S13)


class Result:
    """What a tap produced; one instance, overwritten per tap."""

    def __init__(self):
        self.clear()

    def clear(self):
        self.reason = R_OK
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
               with reason, amount, base, kind, flags, rec1e (48 bytes), write1a, rec1a
               (128 bytes) -- validator.rules.fares.FarePolicy, or txn.flat.FlatFare
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
        self.local = False  # the card in the field is a local-issuer card
        self.auth = bytearray(read.AUTH_LEN)  # its 80CA authentication code (§5.5)
        self.clock = clock
        self.policy = policy
        self.records = records
        self.blacklist = blacklist
        self.local_city = local_city
        self.line = line
        self.position = position
        self.device_id = bytes(device_id)
        self.vehicle = bytearray(6)
        for i in range(len(vehicle)):
            self.vehicle[i] = vehicle[i]
        self.psam_slot = psam_slot
        self.repeat_window_s = repeat_window_s
        self.log_refusals = log_refusals
        self.result = Result()
        # the APDU buffers are the PSAM module's (sam.psam _CMD/_RESP: sizes there): one
        # device at a time, and what a PSAM call needs from resp is copied out first
        self.cmd = psam.cmd
        self.resp = psam.resp
        self.ef15 = bytearray(select.EF15_LEN)
        self._serial = memoryview(self.ef15)[10:20]  # blacklist key, made once
        self.ef17 = bytearray(11)
        self.rec1e = bytearray(capp.REC1E_LEN)
        self.rec1a = bytearray(128)
        self.init = bytearray(purse.INIT_LEN)
        self.dt = bytearray(7)
        self.img = bytearray(rec.REC_SIZE)
        self.tears = TearTable(tears, tear_keep_s)
        self.ctx = self.tears.ctx
        self.ch = bytearray(8)  # card challenge
        self.blk = bytearray(5)  # APPLICATION BLOCK header for the PSAM MAC
        self._seen = bytearray(_SEEN * _SER)
        self._seen_t = [0] * _SEEN
        self._seen_i = 0
        self._tag = 0  # tap counter; the PSAM session belongs to psam.session_tag
        self.sw = 0
        self._known = False  # EF15 of a refused SELECT is known (blocked card's FCI)
        self.resume()

    # ---- boot ------------------------------------------------------------------------------
    def resume(self):
        """After a reboot: reload the tear contexts (§6.1), and let the newest paid ride
        count for the repeat window, so a passenger tapping again after a power cut
        between the final record and the feedback is not charged twice."""
        img = self.img
        for i in range(rec.REC_SIZE):
            img[i] = 0
        self.tears.resume(self.records, img)
        st = img[rec.O_STATUS]
        if st == ST_NORMAL or st == ST_RECOVERED:
            t = bcdtime.unpack_datetime(img, rec.O_DATETIME)
            if t > 0:
                self._remember_serial(img, rec.O_SERIAL, t)

    def maintain(self):
        """Idle-time flash housekeeping of the stores the tap path appends to (no erase
        happens during a tap): call between taps, like the app's storage task."""
        self.records.maintain()
        m = getattr(self.tears.store, "maintain", None)
        if m is not None:
            m()

    def process(self, info):
        """The app's processor interface (validator.app.validator): one tap."""
        return self.tap(info)

    # ---- exchanges --------------------------------------------------------------------------
    def _card(self, n):
        """Send self.cmd[:n] to the card; returns data length, status word in self.sw."""
        r = self.reader.transmit(self.cmd, n, self.resp)
        self.result.exchanges += 1
        sw = apdu.sw(self.resp, r)
        if sw >> 8 == 0x6C and n == 5:
            self.cmd[4] = sw & 0xFF  # wrong Le: resend with Le = SW2 (§2, S1/S13)
            r = self.reader.transmit(self.cmd, n, self.resp)
            self.result.exchanges += 1
            sw = apdu.sw(self.resp, r)
        if r < 2:
            raise NfcError()
        self.sw = sw
        self.result.sw = sw
        return r - 2

    def _read_ok(self):
        """READ BINARY / READ RECORD status through the command's table (card/read.py)."""
        return apdu.lookup(read.STATUS, self.sw, R_CARD_ERROR)

    # ---- the tap ------------------------------------------------------------------------------
    def tap(self, card=None):
        """Run one tap for the card in the field; returns self.result (R_* in .reason)."""
        res = self.result
        res.clear()
        self._tag += 1
        loc = self.local_psam
        if not self.psam.ready and (loc is None or not loc.ready):
            res.reason = R_SAM_FAULT  # no PSAM at all: nothing is sent to the card
            return res
        self.sam = self.psam
        self.psam_slot = self.mot_slot
        self.local = False
        try:
            res.reason = self._tap()
        except NfcTimeout:
            res.reason = R_COMM_ERROR
        except NfcError:
            res.reason = R_COMM_ERROR
        except SamError:
            res.reason = R_SAM_FAULT
        except StorageError:
            res.reason = R_FAULT
        return res

    def _select(self):
        """SELECT the EP; EF15 into self.ef15. Returns R_OK or a refusal."""
        c = self.cmd
        n = self._card(select.build(c, select.AID_TUNION, 8))
        code = apdu.lookup(select.STATUS, self.sw, R_CARD_ERROR)
        if code == R_UNSUPPORTED_CARD and self.local_psam is not None:
            # no T-Union EP: the city's own card (§8 dual-mode order: T-Union, local, PPSE)
            n = self._card(select.build(c, select.AID_LOCAL, len(select.AID_LOCAL)))
            code = apdu.lookup(select.STATUS, self.sw, R_CARD_ERROR)
            if code != R_UNSUPPORTED_CARD:
                self.sam = self.local_psam
                self.psam_slot = self.local_slot
                self.local = True
        if code == R_UNSUPPORTED_CARD:
            # PPSE fallback (§1): a phone or SE may carry a longer AID
            n = self._card(select.build(c, select.PPSE, len(select.PPSE)))
            if apdu.lookup(select.STATUS, self.sw, R_CARD_ERROR) != R_OK:
                return R_UNSUPPORTED_CARD
            a = select.ppse_aid(self.resp, n + 2)
            if a < 0:
                return R_UNSUPPORTED_CARD
            ln = a >> 16
            if ln > 16:
                return R_UNSUPPORTED_CARD
            apdu.copy(c, 5, self.resp, a & 0xFFFF, ln)
            apdu.header(c, 0x00, 0xA4, 0x04, 0x00)
            c[4] = ln
            c[5 + ln] = 0
            n = self._card(6 + ln)
            code = apdu.lookup(select.STATUS, self.sw, R_CARD_ERROR)
        if code != R_OK:
            if code == R_APP_BLOCKED and n > 0:
                # a blocked card still shows its FCI (6283, §1): keep EF15 for the record
                off = select.fci_ef15(self.resp, n + 2)
                if off >= 0:
                    apdu.copy(self.ef15, 0, self.resp, off, select.EF15_LEN)
                    self._known = True
            return code
        off = select.fci_ef15(self.resp, n + 2)
        if off >= 0:
            apdu.copy(self.ef15, 0, self.resp, off, select.EF15_LEN)
            return R_OK
        n = self._card(read.binary(c, read.SFI_EF15, 0, select.EF15_LEN))
        if self._read_ok() != R_OK or n < select.EF15_LEN:
            return R_CARD_ERROR
        apdu.copy(self.ef15, 0, self.resp, 0, select.EF15_LEN)
        return R_OK

    def _tap(self):
        self._known = False
        code = self._select()
        now = self.clock.now()
        bcdtime.pack_datetime(now, self.dt, 0)
        if code != R_OK:
            if self._known:
                self._img_card()
                return self._refuse(code)  # logged: a locked card presented again
            return code
        if not self.sam.ready:
            return R_SAM_FAULT  # this application's PSAM is missing or wrong (issue 4)
        e = self.ef15
        self._img_card()
        if self.local and e[8] == _APP_NOT_ACTIVE:
            # MOHURD cards: application type 00 = not activated (§2.1, S5/S13)
            return self._refuse(R_UNSUPPORTED_CARD)
        # -- dates (§2.1 EF15[20..27]); the expiry day itself is still valid
        start = bcdtime.unpack_date(e, 20)
        end = bcdtime.unpack_date(e, 24)
        if start < 0 or end < 0:
            return self._refuse(R_CARD_ERROR)
        if now < start:
            return self._refuse(R_NOT_YET_VALID)
        if now >= end + 86400:
            return self._refuse(R_EXPIRED)
        # -- repeat window: the same card again right after paying is not charged (§7, S5)
        if self._seen_recently(now):
            return R_ALREADY_PAID
        # -- tear context: expire it, or note that this is the torn card (§6.3)
        torn = self.tears.lookup(e, 10, now)
        # -- blacklist -> APPLICATION BLOCK + "blocked" record (§3, §7)
        if self.blacklist.contains(self._serial):
            return self._block()
        # -- the torn card is back: settle the old debit before anything else (§6.4)
        if torn:
            ctx = self.ctx
            code = self._initialize(ctx[C_TXN_TYPE] == purse.TYPE_CAPP,
                                    apdu.get_u32(ctx, C_AMOUNT))
            r = self._recover(code)
            if r >= 0:
                return r
            # the debit never happened: a fresh purchase follows (new INIT, new TTSN)
        # -- interconnect (EF17[8..9], §2.3): visitors must be interconnect cards
        needs = self.policy.needs()
        city = (e[2] << 8) | e[3]
        ef17 = None
        if city != self.local_city or needs & _NEED_EF17:
            n = self._card(read.binary(self.cmd, read.SFI_EF17, 0, 11))
            if self._read_ok() != R_OK or n < 11:
                return self._refuse(R_CARD_ERROR)
            apdu.copy(self.ef17, 0, self.resp, 0, 11)
            ef17 = self.ef17
            if city != self.local_city and ef17[8] == 0 and ef17[9] == 0:
                return self._refuse(R_NOT_INTERCONNECT)
        r1e = None
        if needs & NEED_1E:
            n = self._card(read.record(self.cmd, 1, read.SFI_EF1E, capp.REC1E_LEN))
            if self._read_ok() == R_OK and n >= capp.REC1E_LEN:
                apdu.copy(self.rec1e, 0, self.resp, 0, capp.REC1E_LEN)
                r1e = self.rec1e
        r1a = None
        if needs & NEED_1A:
            n = self._card(read.record(self.cmd, 2, 0x1A, 128))
            if self._read_ok() == R_OK and n >= 128:
                apdu.copy(self.rec1a, 0, self.resp, 0, 128)
                r1a = self.rec1a
        # -- fare
        d = self.policy.decide(now, e, ef17, r1e, r1a)
        if d.reason != R_OK:
            return self._refuse(d.reason)
        amount = d.amount
        if self.local:
            # §5.5: the MOHURD MAC1 covers the card's 80CA authentication code. Read it before
            # INITIALIZE: any other command between 8050 and 8054 ends the purchase session.
            n = self._card(read.auth_code(self.cmd))
            if self._read_ok() != R_OK or n < read.AUTH_LEN:
                return self._refuse(R_CARD_ERROR)
            apdu.copy(self.auth, 0, self.resp, 0, read.AUTH_LEN)
        apdu.put_u32(self.img, rec.O_FARE_LIST, d.base)
        self.img[rec.O_FARE_RULE + 1] = d.kind & 0xFF
        self.img[rec.O_FLAGS] = d.flags & 0xFF
        self.img[rec.O_TXN_TYPE] = purse.TYPE_CAPP
        capp_ok = True
        for _ in range(2):  # second round only for the simple-purchase fallback
            code = self._initialize(capp_ok, amount)
            if code == purse.NO_CAPP and capp_ok:
                capp_ok = False
                continue
            if code != R_OK:
                return self._refuse(code)
            if not capp_ok and d.write1a and (d.kind == _K_BOARD or d.kind == _K_SECTION):
                # a section boarding lives in EF1A, which only a CAPP purchase can write;
                # on other lines a simple purchase (type 06) goes ahead without the EF1A
                # day-total update, so such a card pays the fare but is never capped
                return self._refuse(R_UNSUPPORTED_CARD)
            code = self._purchase(capp_ok, amount, d, now)
            if code == purse.NO_CAPP and capp_ok:
                capp_ok = False
                continue
            return code
        return self._refuse(R_CARD_ERROR)

    def _initialize(self, capp_ok, amount):
        n = self._card(purse.init_purchase(self.cmd, capp_ok, self.sam.key_index, amount,
                                           self.sam.terminal, 0))
        code = apdu.lookup(purse.STATUS_INIT, self.sw, R_CARD_ERROR)
        if code == R_OK:
            if n < purse.INIT_LEN:
                return R_CARD_ERROR
            apdu.copy(self.init, 0, self.resp, 0, purse.INIT_LEN)
        return code

    def _purchase(self, capp_ok, amount, d, now):
        """INIT done: 8070, 80DC, persist, 8054, 8072, final record."""
        res = self.result
        psam = self.sam
        ini = self.init
        ttype = purse.TYPE_CAPP if capp_ok else purse.TYPE_EP
        res.capp = capp_ok
        atc = apdu.get_u16(ini, purse.INIT_ATC)
        bal = apdu.get_u32(ini, purse.INIT_BAL)
        # PSAM 8070: MAC1 over amount, type, terminal, date-time (§4, §5.3)
        psam.mac1(ini, purse.INIT_RAND, atc, amount, ttype, self.dt, 0, ini[purse.INIT_KEYVER],
                  ini[purse.INIT_ALG], self.ef15, 0, self.auth)
        res.exchanges += 1
        psam.session_tag = self._tag
        img = self.img
        img[rec.O_TXN_TYPE] = ttype
        apdu.put_u32(img, rec.O_AMOUNT, amount)
        apdu.put_u32(img, rec.O_BAL_BEFORE, bal)
        apdu.put_u32(img, rec.O_BAL_AFTER, bal - amount)
        img[rec.O_ATC] = ini[purse.INIT_ATC]
        img[rec.O_ATC + 1] = ini[purse.INIT_ATC + 1]
        apdu.copy(img, rec.O_TTSN, psam.out, 0, 4)
        img[rec.O_KEY_VER] = ini[purse.INIT_KEYVER]
        img[rec.O_ALG_ID] = ini[purse.INIT_ALG]
        if capp_ok:
            # the trip records (§2.5, §2.6); the engine owns amount/balance/time/terminal
            if d.write1a:
                c = self.cmd
                # P1 = record number N of the record ID 27 0N (§3), P2 = D0 (SFI 1A)
                apdu.header(c, 0x80, 0xDC, d.rec1a[1], 0xD0)
                c[4] = 128
                apdu.copy(c, 5, d.rec1a, 0, 128)
                self._card(133)
                code = apdu.lookup(capp.STATUS, self.sw, R_CARD_ERROR)
                if code != R_OK:
                    return code if code == purse.NO_CAPP else self._refuse(code)
            r = d.rec1e
            r[capp.R1E_TERM] = 0
            r[capp.R1E_TERM + 1] = 0
            apdu.copy(r, capp.R1E_TERM + 2, psam.terminal, 0, 6)
            apdu.put_u32(r, capp.R1E_AMOUNT, amount)
            apdu.put_u32(r, capp.R1E_BALANCE, bal - amount)
            apdu.copy(r, capp.R1E_DATETIME, self.dt, 0, 7)
            self._card(capp.update_1e(self.cmd, r, 0))
            code = apdu.lookup(capp.STATUS, self.sw, R_CARD_ERROR)
            if code != R_OK:
                return code if code == purse.NO_CAPP else self._refuse(code)
        # persist the recovery context and the gray record BEFORE the debit (§6.1)
        img[rec.O_STATUS] = ST_GRAY
        ctx = self.ctx
        apdu.copy(ctx, 0, img, CTX_BASE, CTX_IMG)
        apdu.put_u32(ctx, C_GRAY, self.records.next_seq)  # the gray record's seq
        apdu.put_u32(ctx, C_SAVED, now)
        self.tears.persist(self._tag)
        gray = self.records.append(img)
        # DEBIT (§3): no answer = tear, the card may or may not have debited
        try:
            n = self._card(purse.debit(self.cmd, psam.out, 0, self.dt, 0, psam.out, 4))
        except NfcTimeout:
            res.seq = gray
            res.status = ST_GRAY
            return R_TAP_AGAIN
        code = apdu.lookup(purse.STATUS_DEBIT, self.sw, R_CARD_ERROR)
        if code != R_OK or n < purse.DEBIT_LEN:
            # any status word: the card did not debit (§6.2); the refused record names
            # the gray one it closes (REF_SEQ), so clearing never waits for it
            self.tears.drop()
            apdu.put_u32(img, rec.O_REF_SEQ, gray)
            return self._refuse(code if code != R_OK else R_CARD_ERROR)
        apdu.copy(img, rec.O_TAC, self.resp, purse.DEBIT_TAC, 4)
        img[O_TXFLAGS] = 0
        ok2 = True
        try:
            ok2 = psam.verify_mac2(self.resp, purse.DEBIT_MAC2)
            res.exchanges += 1
            if not ok2:
                img[O_TXFLAGS] = FL_MAC2_BAD
        except SamError:
            # the card has debited and its TAC is in hand: record the ride, and let the
            # PSAM fault stop the following taps (psam.ready) instead of losing this one
            psam.ready = False
            img[O_TXFLAGS] = FL_MAC2_UNVERIFIED
        img[rec.O_STATUS] = ST_NORMAL
        apdu.put_u32(img, rec.O_REF_SEQ, gray)
        res.seq = self.records.append(img)
        res.status = ST_NORMAL
        self.tears.drop()
        res.amount = amount
        res.balance = bal - amount
        if not ok2:
            return R_CARD_ERROR
        self._remember(now)
        return R_OK

    def _recover(self, code):
        """The torn card is back and INITIALIZE answered `code` (§6.4-6.6). Returns a
        reason, or -1 when the debit did not happen (a fresh purchase follows)."""
        res = self.result
        ctx = self.ctx
        s = apdu.get_u16(ctx, C_ATC)
        if code == R_OK:
            atc = apdu.get_u16(self.init, purse.INIT_ATC)
            if atc == s:
                self.tears.drop()
                return -1  # ATC unchanged: the debit never happened
            if atc != ((s + 1) & 0xFFFF):
                self.tears.drop()  # used elsewhere since: clearing resolves the gray record
                return -1
        elif code == purse.NO_CAPP:
            return -1
        # ATC moved by one (or INIT refused, e.g. 9401 after the debit). The card's own log
        # (EF18 record 1, §2.4) says whose debit that was: ATC, type, terminal and date-time
        # must be ours -- a card torn here and then used elsewhere also shows ATC+1.
        n = self._card(read.record(self.cmd, 1, read.SFI_EF18, 23))
        if self._read_ok() == R_OK and n >= 23:
            r = self.resp
            if not (
                apdu.get_u16(r, 0) == ((s + 1) & 0xFFFF)
                and r[9] == ctx[C_TXN_TYPE]
                and apdu.equal(r, 10, ctx, C_TERMINAL, 6)
                and apdu.equal(r, 16, ctx, C_DATETIME, 7)
            ):
                self.tears.drop()  # not our debit: the gray record stays for clearing
                return -1 if code == R_OK else self._refuse(code)
        n = self._card(purse.prove(self.cmd, ctx[C_TXN_TYPE], (s + 1) & 0xFFFF))
        pc = apdu.lookup(purse.STATUS_PROVE, self.sw, R_CARD_ERROR)
        if pc == purse.NO_PROVE:
            self.tears.drop()
            return -1 if code == R_OK else self._refuse(code)
        if pc != R_OK or n < purse.PROVE_LEN:
            return self._refuse(R_CARD_ERROR)
        img = self.img
        apdu.copy(img, CTX_BASE, ctx, 0, CTX_IMG)  # saved TTSN, date-time, ATC... exact
        apdu.copy(img, rec.O_REF_SEQ, ctx, C_GRAY, 4)
        apdu.copy(img, rec.O_TAC, self.resp, purse.PROVE_TAC, 4)
        img[O_TXFLAGS] = 0
        if self.tears.session(self.sam.session_tag):
            # the PSAM still holds the torn session: check MAC2 (§6.5)
            ok2 = self.sam.verify_mac2(self.resp, purse.PROVE_MAC2)
            res.exchanges += 1
            if not ok2:
                img[O_TXFLAGS] = FL_MAC2_BAD
        else:
            img[O_TXFLAGS] = FL_MAC2_UNVERIFIED
        img[rec.O_STATUS] = ST_RECOVERED
        res.seq = self.records.append(img)
        res.status = ST_RECOVERED
        self.tears.drop()
        res.amount = apdu.get_u32(ctx, C_AMOUNT)
        res.balance = apdu.get_u32(ctx, C_BAL_AFTER)
        res.capp = ctx[C_TXN_TYPE] == purse.TYPE_CAPP
        self._remember(self.clock.now())
        return R_RECOVERED

    def _block(self):
        """Blacklisted: lock the application with a PSAM MAC, record it, refuse (§3, §7).

        INITIALIZE (amount 0, no debit) first: its algorithm id picks the PSAM's
        maintenance key family and the MAC block size."""
        res = self.result
        alg = 0
        n = self._card(purse.init_purchase(self.cmd, False, self.sam.key_index, 0,
                                           self.sam.terminal, 0))
        if apdu.lookup(purse.STATUS_INIT, self.sw, R_CARD_ERROR) == R_OK and n >= purse.INIT_LEN:
            alg = self.resp[purse.INIT_ALG]
            self.img[rec.O_KEY_VER] = self.resp[purse.INIT_KEYVER]
            self.img[rec.O_ALG_ID] = alg
        n = self._card(block.get_challenge(self.cmd))
        if apdu.lookup(block.STATUS_CHALLENGE, self.sw, R_CARD_ERROR) == R_OK and n >= 4:
            apdu.copy(self.ch, 0, self.resp, 0, 4)
            block.header(self.blk, block.BLOCK_TEMPORARY)
            self.sam.block_mac(self.ef15, 0, self.ch, 0, self.blk, alg)
            res.exchanges += 2
            self._card(block.app_block(self.cmd, block.BLOCK_TEMPORARY, self.sam.out, 0))
        img = self.img
        img[rec.O_STATUS] = ST_BLOCKED
        img[rec.O_REASON] = R_BLACKLISTED
        img[rec.O_TXN_TYPE] = 0
        res.seq = self.records.append(img)
        res.status = ST_BLOCKED
        return R_BLACKLISTED

    # ---- helpers ------------------------------------------------------------------------------
    def _img_card(self):
        """Start the record image (FORMAT.md §2) with the card, the place and the time."""
        img = self.img
        rec.reset(img)
        e = self.ef15
        apdu.copy(img, rec.O_DEVICE, self.device_id, 0, 4)
        apdu.copy(img, rec.O_SERIAL, e, 10, _SER)
        apdu.copy(img, rec.O_ISSUER, e, 0, 8)
        img[rec.O_CARD_TYPE] = e[28]
        apdu.copy(img, rec.O_TERMINAL, self.sam.terminal, 0, 6)
        apdu.copy(img, rec.O_DATETIME, self.dt, 0, 7)
        pos = self.position
        line = self.line if pos is None else pos.line
        img[rec.O_LINE] = (line >> 8) & 0xFF
        img[rec.O_LINE + 1] = line & 0xFF
        if pos is not None:
            img[rec.O_STATION] = (pos.stop >> 8) & 0xFF
            img[rec.O_STATION + 1] = pos.stop & 0xFF
            img[rec.O_DIRECTION] = pos.direction & 0xFF
        apdu.copy(img, rec.O_VEHICLE, self.vehicle, 0, 6)
        img[rec.O_PSAM_SLOT] = self.psam_slot
        img[rec.O_KEY_INDEX] = self.sam.key_index

    def _refuse(self, code):
        if self.log_refusals:
            img = self.img
            img[rec.O_STATUS] = ST_REFUSED
            img[rec.O_REASON] = code
            img[rec.O_TXN_TYPE] = 0  # no debit (FORMAT.md §2)
            for i in range(4):
                img[rec.O_TAC + i] = 0xFF
            self.result.seq = self.records.append(img)
            self.result.status = ST_REFUSED
        return code

    def _seen_recently(self, now):
        s = self._seen
        e = self.ef15
        for k in range(_SEEN):
            t = self._seen_t[k]
            if t and 0 <= now - t < self.repeat_window_s and apdu.equal(s, k * _SER, e, 10, _SER):
                return True
        return False

    def _remember(self, now):
        self._remember_serial(self.ef15, 10, now)

    def _remember_serial(self, src, off, t):
        k = self._seen_i
        apdu.copy(self._seen, k * _SER, src, off, _SER)
        self._seen_t[k] = t or 1
        self._seen_i = (k + 1) % _SEEN
