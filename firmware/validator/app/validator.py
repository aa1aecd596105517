# validator.app.validator: the detection state machine and the tasks around it.
# SPDX-License-Identifier: MIT
#
# Card detection follows the four states of house-style principle 3 (Keyple's observable
# reader): start -> wait for a card -> process -> wait for removal -> wait for a card.
# A card still in the field after its tap is never processed twice; two cards in the field
# are refused with R_MULTIPLE_CARDS (DB31/T 239-2020 §6.4.1). The card transaction is plain
# synchronous code (short, must not interleave); asyncio only schedules the card loop, the
# board's console and the sync task around it (principle 13).
from micropython import const

from validator import errors as E

_S_WAIT_CARD = const(0)
_S_WAIT_REMOVAL = const(1)
_REMOVAL_MISSES = const(2)  # empty polls in a row that mean "card gone"
_POLL_MS = const(30)
# The reader answers nothing (a brown-out or ESD reset of the PN532 board puts the chip back
# to its power-up state: asleep, 115 200 baud, RF off): after this many failed polls in a
# row (~0.5 s) bring it up again as at boot, and while it stays down every _REINIT_EVERY
# polls (~3 s), the indicator showing the fault meanwhile.
_REINIT_AFTER = const(16)
_REINIT_EVERY = const(100)


class Validator:
    """The card loop. It is also the preallocated Result of the taps it refuses itself
    (reason; amount 0, balance 0, seq -1): a processor returns its own Result object."""

    amount = 0
    balance = 0
    seq = -1
    # class defaults: an instance attribute appears only once the reader has failed (the
    # instance dict stays at its size step all day on a healthy reader)
    _errs = 0  # failed polls in a row
    reinits = 0  # times the reader was brought up again mid-service

    def __init__(self, board, reader, processor):
        self.board = board
        self.reader = reader
        self.processor = processor
        self.state = _S_WAIT_CARD
        self._misses = 0
        self.reason = E.R_OK
        self._uid = bytearray(10)  # the last tapped card's UID (wait-for-removal)
        self._uid_len = 0
        self.taps = 0
        self.faults = 0
        self.fault_state = E.R_OK  # non-zero: refuse every tap with this reason
        self.probe_alloc = False  # next tap runs under heap_lock (MicroPython); see step
        self.last_alloc = -1  # bytes the probed tap allocated (-1: not probed / failed)
        self._locked = False
        self._before = 0

    def step(self):
        """One pass of the detection state machine; returns a Result when a tap ended."""
        try:
            info = self.reader.poll()
        except E.NfcError:
            self.faults += 1
            self._errs += 1
            k = self._errs - _REINIT_AFTER
            if k >= 0 and k % _REINIT_EVERY == 0:
                # bring the reader up again (begin + field on, as at boot); the device's
                # fault log (app.main Device.faults, when the processor has one) gets an
                # entry on the first failed try and on success, not one every few seconds
                # while the reader stays down
                ok = True
                try:
                    self.reader.begin()
                    self.reader.field_on()
                except E.NfcError:
                    ok = False
                    self.board.indicator.show(E.R_FAULT, 0, 0)
                dev = getattr(self.processor, "dev", None)
                if dev is not None and (ok or k == 0):
                    from validator.app import content

                    content.fault(dev.faults, "nfc: reader stopped answering, brought up "
                                  "again" if ok else "nfc: reader stopped answering")
                if ok:
                    self._errs = 0
                    self.reinits += 1
                    self.state = _S_WAIT_CARD
                    self.board.indicator.idle()
            return None
        if self._errs:
            self._errs = 0
        if self.state == _S_WAIT_REMOVAL:
            if info is None:
                self._misses += 1
                if self._misses >= _REMOVAL_MISSES:
                    self.state = _S_WAIT_CARD
                    self.board.indicator.idle()
                return None
            self._misses = 0
            n = info.uid_len
            if info.count == 1 and n == self._uid_len:
                u = info.uid
                last = self._uid
                i = 0
                while i < n and u[i] == last[i]:
                    i += 1
                if i == n:
                    self.reader.release()
                    return None  # the same card is still there: wait for removal
        if info is None:
            return None
        n = info.uid_len
        for i in range(n):
            self._uid[i] = info.uid[i]
        self._uid_len = n
        self.state = _S_WAIT_REMOVAL
        self._misses = 0
        r = self
        if info.count > 1:
            self.reason = E.R_MULTIPLE_CARDS
        elif self.fault_state:
            self.reason = self.fault_state
        else:
            try:
                if self.probe_alloc:
                    # Allocation probe (house style principle 6): the whole tap -- card,
                    # PSAM, flash commit, release, feedback -- with the heap locked; any
                    # allocation raises MemoryError. The lock ends below, after the
                    # feedback started.
                    import gc

                    import micropython

                    self.probe_alloc = False
                    gc.collect()
                    self._before = gc.mem_alloc()
                    self._locked = True
                    micropython.heap_lock()
                # the processor is the fault boundary (txn.transaction Transaction.tap maps
                # every ValidatorError to a reason code); only the probe's MemoryError is
                # caught here
                r = self.processor.process(info)
            except MemoryError:
                if self._locked:  # (micropython was imported by the probe above)
                    micropython.heap_unlock()
                    self._locked = False
                self.last_alloc = -1  # the probed tap allocated: heap_lock refused it
                self.reason = E.R_FAULT
        # the end of the tap path: release the card and start the feedback (still under
        # the heap lock when the tap is probed)
        self.reader.release()
        self.board.indicator.show(r.reason, r.amount, r.balance)
        if self._locked:
            import gc

            import micropython

            self._locked = False
            micropython.heap_unlock()
            self.last_alloc = gc.mem_alloc() - self._before
        self.taps += 1
        hook = getattr(self.board, "after_tap", None)  # e.g. the simulator's report
        if hook is not None:
            hook(self, r)
        return r

    async def card_task(self):
        import asyncio

        while True:
            self.step()
            await asyncio.sleep_ms(_POLL_MS)  # type: ignore[attr-defined]  # MicroPython API


def run(board, processor=None, extra_tasks=(), make_processor=None):
    """Build the reader on the board's PN532, then run the card loop and board tasks.

    make_processor(reader) -> (processor, fault): fault != R_OK puts the validator in that
    fault state (every tap refused with it), e.g. R_SAM_FAULT for a missing PSAM."""
    import asyncio

    from validator.drivers.pn532 import Pn532
    from validator.link.iso14443 import Iso14443Reader

    reader = Iso14443Reader(Pn532(board.pn532, board.clock))
    try:
        reader.begin()
        reader.field_on()
    except E.NfcError:
        board.indicator.show(E.R_FAULT, 0, 0)
        raise
    fault = E.R_OK
    if make_processor is not None:
        processor, fault = make_processor(reader)
    v = Validator(board, reader, processor)
    v.fault_state = fault
    if fault:
        board.indicator.show(fault, 0, 0)
    else:
        board.indicator.idle()

    async def main():
        tasks = [asyncio.create_task(v.card_task())]
        for t in extra_tasks:
            tasks.append(asyncio.create_task(t(v)))
        console = getattr(board, "console_task", None)
        if console is not None:
            await console(v)
        else:
            await tasks[0]

    asyncio.run(main())
    return v

