# validator.app.main: assemble the validator from a board and start it (boot path).
# SPDX-License-Identifier: MIT
#
# Boot order: flash stores (params, record log, tear store, blacklist) -> keys and the
# verified fare table/configuration from the parameter store -> PSAM slot 0 boot (a
# missing or wrong PSAM puts the validator in R_SAM_FAULT: every tap refused, the fault
# shown) -> ISO 14443 reader -> tap engine -> card loop, idle-time flash maintenance and
# the sync tasks. Every fault found here is shown and kept, never hidden by a crash.
import gc

import micropython
from micropython import const

from validator import VERSION_NUM
from validator import errors as E
from validator.app import content
from validator.app import validator as app
from validator.rules import fares, table
from validator.storage import PLAN_SIM
from validator.storage.blacklist import Blacklist
from validator.storage.params import ParamStore
from validator.storage.recordlog import RecordLog, TearStore
from validator.sync import auth

_DOORS = (fares.DOOR_ANY, fares.DOOR_ENTRY, fares.DOOR_EXIT)
# content kinds (sync/PROTOCOL.md §4.3; checked by tests/host/test_sync_consts.py)
_K_FARES = const(3)
_K_CONFIG = const(5)


class Device:
    """Everything the app holds, built once at boot."""

    def __init__(self, board):
        self.board = board
        plan = getattr(board, "flash_plan", None) or PLAN_SIM
        f = board.flash
        self.params = ParamStore(f, plan["params"]).mount()
        self.records = RecordLog(f, plan["log"], plan["watermark"]).mount()
        self.tears = TearStore(f, plan["tear"]).mount()
        self.keys = None
        self.kc = None
        blob = self.params.get(content.P_KEYS)
        if blob is not None:
            try:
                self.keys = auth.parse_keys(blob)
                self.kc = self.keys[2]
            except E.SyncError:
                self.keys = None
        self.blacklist = Blacklist(f, plan["blacklist"]).mount()
        self.tables = table.FareTables()
        c = content.stored(self.params, self.kc, content.P_FARES, _K_FARES)
        if c is not None:
            self.tables.offer(c[1], board.clock.now(), c[0])
        self.whitelist_version = content.load_whitelist(self.params, self.kc, self.tables)
        self.config = {}
        self.config_version = 0
        self.config_error = None  # why a stored configuration was refused (None: it was not)
        c = content.stored(self.params, self.kc, content.P_CONFIG, _K_CONFIG)
        if c is not None:
            try:
                self.config = content.parse_config(c[1])
                self.config_version = c[0]
            except ValueError as e:
                # never a boot loop: serve with the defaults until sync pushes a good one
                self.config = {}
                self.config_error = str(e)
        self.position = fares.Position(self.config.get("line", 0), 0, 0, fares.DOOR_ANY,
                                       bytearray(8))
        self.policy = fares.FarePolicy(self.tables, self.position)
        self.faults = []  # type: list  # the fault log sync's GET_FAULTS reads (content.fault)
        b = self.params.get("boots")  # boots so far, a u32 kept in the parameter store
        self.boots = (int.from_bytes(b, "big") if b is not None and len(b) == 4 else 0) + 1
        try:
            self.params.put("boots", self.boots.to_bytes(4, "big"))
        except E.StorageError:
            content.fault(self.faults, "storage: boot count not saved")
        content.fault(self.faults, "boot %d" % self.boots)
        if self.config_error is not None:
            content.fault(self.faults, self.config_error)
        newest = content.newest_time(self.records)
        if board.clock.now() < newest:
            # the clock fell behind the newest record (power lost without a working RTC):
            # never stamp a ride earlier than one already in the log
            content.fault(self.faults, "clock: %d behind the newest record, set to %d"
                          % (board.clock.now(), newest))
            board.clock.set_time(newest)
        if self.records.full:
            self.records.maintain()  # a fresh log needs its first block erased

    def set_config(self, cfg):
        """A verified configuration pushed by sync: takes effect for the next taps; city
        and windows fully after the next boot (the engine reads them at construction)."""
        self.config = cfg

    def local_city(self):
        return int(self.config.get("city", "2900"), 16)


class TapProcessor:
    """The app's processor: one tap through the engine; position set by driver/GPS.

    With an M1 engine (m1.purse.M1Purse) the card is dispatched by SAK/ATQA
    (m1/FORMAT.md §1): ISO 14443-4 to the CPU engine, MIFARE Classic to the M1 engine,
    anything else refused R_UNSUPPORTED_CARD without a command sent to it. Without one
    (configuration "m1": 0) every card that is not ISO 14443-4 is refused so."""

    def __init__(self, dev, txn, m1_engine=None):
        self.dev = dev
        self.txn = txn
        self.m1 = m1_engine
        self.last = None
        self.full = False  # the log was full at the last tap (fault logged once per episode)
        self.sam_fault = False  # the last tap ended in R_SAM_FAULT (likewise)

    def process(self, info):
        e = self.m1
        if info is None:
            r = self.txn.tap(info)
        elif e is None:
            if getattr(info, "iso_dep", True):
                r = self.txn.tap(info)
            else:  # no M1 engine (CONFIG.md "m1": 0): MIFARE Classic is not supported
                r = self.txn.result
                r.clear()
                r.reason = E.R_UNSUPPORTED_CARD
        else:
            k = e.classify(info)
            if k == 0:
                r = self.txn.tap(info)
            elif k == 1:
                r = e.tap(info)
            else:
                r = e.unsupported()
        self.last = r
        if r.reason == E.R_SAM_FAULT and not self.sam_fault:
            content.fault(self.dev.faults, "psam: fault during a tap, card refused")
        self.sam_fault = r.reason == E.R_SAM_FAULT
        if r.reason == E.R_STORAGE_FULL:
            if not self.full:
                # once, not per refused passenger: the depot sees when service stopped
                content.fault(self.dev.faults, "storage: record log full, taps refused until "
                              "a sync")
            self.full = True
        elif self.dev.records.room(2):
            self.full = False
        return r

    def set_position(self, line, stop, direction, door):
        p = self.dev.position
        p.line = line
        p.stop = stop
        p.direction = direction
        p.door = _DOORS[door] if 0 <= door < len(_DOORS) else fares.DOOR_ANY
        self.txn.line = line

    def maintain(self):
        self.dev.tables.current(self.dev.board.clock.now())
        return self.txn.maintain()


def start(board):
    if hasattr(micropython, "alloc_emergency_exception_buf"):  # absent on the unix port
        micropython.alloc_emergency_exception_buf(100)
    dev = Device(board)

    def make_processor(reader):
        import gc

        from validator.txn import setup

        gc.collect()  # the engine's buffers are the biggest boot allocations: compact first

        p = dev.position
        p.terminal[2:8] = b"\x00\x00\x00\x00\x00\x00"
        txn, fault = setup.build(board, reader, dev.policy, dev.records, dev.tears,
                                 dev.blacklist, local_city=dev.local_city(), position=p,
                                 repeat_window_s=dev.config.get("repeat_window_s", 60),
                                 tear_keep_s=dev.config.get("tear_keep_s", 600))
        for slot, ps in enumerate((txn.psam, txn.local_psam)):
            if ps is not None and not ps.ready:
                content.fault(dev.faults, "psam: slot %d did not boot" % slot)
        if txn.psam.ready:
            p.terminal[2:8] = txn.psam.terminal
        elif txn.local_psam is not None and txn.local_psam.ready:
            p.terminal[2:8] = txn.local_psam.terminal
        e = None
        if dev.config.get("m1", 0):
            # the city's M1 purse cards (CONFIG.md "m1"): keys and record MACs from the
            # local PSAM (m1/FORMAT.md); imported here, after the engine, like it (boot
            # heap). Without them the engine is never imported: ~5 KB of the 128 KiB heap
            # stay free for a day's second 6 KB fare table (tests/host/test_heap_budget.py)
            from validator.m1.purse import M1Purse

            e = M1Purse(reader.chip, txn.local_psam, board.clock, dev.policy, dev.records,
                        dev.blacklist, local_city=dev.local_city(), device_id=board.device_id,
                        position=p, psam_slot=txn.local_slot,
                        repeat_window_s=dev.config.get("repeat_window_s", 60),
                        tear_keep_s=dev.config.get("tear_keep_s", 600), shared=txn)
        return TapProcessor(dev, txn, e), fault

    tasks = [maintenance_task(dev)]
    gc.collect()  # boot reads (stores, keys, tables) leave garbage; start sync compact
    if dev.keys is not None and getattr(board, "sync_cfg", None):
        from validator.sync import service

        target = content.Target(dev.records, dev.keys[0], VERSION_NUM, dev.kc, board.clock,
                                dev.blacklist, dev.params, dev.tables,
                                on_config=dev.set_config, faults=dev.faults,
                                config_version=dev.config_version,
                                whitelist_version=dev.whitelist_version)
        tasks.extend(service.tasks(board.sync_cfg, target, dev.keys, board.urandom,
                                   board.clock))
    app.run(board, make_processor=make_processor, extra_tasks=tasks)


def maintenance_task(dev):
    async def task(v):
        import asyncio

        while True:
            await asyncio.sleep_ms(200)  # type: ignore[attr-defined]  # MicroPython API
            if v.state == 0:  # waiting for a card: erase ahead, activate pending tables
                p = v.processor
                if hasattr(p, "maintain"):
                    p.maintain()
                else:
                    dev.records.maintain()

    return task
