"""Storage benchmark: record log cost and capacity, boot scan, blacklist size and
lookup reads, power-cut campaign totals. Runs under CPython on RAM NorFlash devices with
the board geometries of firmware/validator/storage/plan.py (FORMAT.md §1)."""

import random
import struct

from emu import powercut
from emu.nor import NorFlash
from validator.storage import plan, plan_boards, record, record_host
from validator.storage.blacklist import OK, Blacklist
from validator.storage.blacklist_host import KIND_FULL
from validator.storage.recordlog import RecordLog, TearStore


def _fill(img, seq):
    record.reset(img)
    img[record_host.O_STATUS] = record_host.ST_NORMAL
    img[record_host.O_TXN_TYPE] = 0x09
    struct.pack_into(">I", img, record_host.O_AMOUNT, 200)


def _log_metrics(quick):
    """Steady-state appends with acks and a tear-context save per tap; then a boot scan of
    a completely full sim log (no acknowledgement: the worst case for recovery)."""
    p = plan.PLAN_SIM
    size = p["log"][0] + p["log"][1]
    if quick:  # 1/16 of the sim log: same code, same bound formula, less time
        log = (p["log"][0], p["log"][1] // 16)
        size = log[0] + log[1]
    else:
        log = p["log"]
    fl = NorFlash(size, block_size=4096, prog_size=256)
    lg = RecordLog(fl, log, p["watermark"]).mount()
    ts = TearStore(fl, p["tear"]).mount()
    lg.maintain()
    img = record_host.new_image()
    ctx = bytearray(TearStore.SIZE)
    taps = 5000
    tap_erases = 0
    log_prog = 0
    for q in range(1, taps + 1):
        _fill(img, q)
        e0 = fl.erases
        ts.save(ctx)
        b0 = fl.bytes_programmed
        lg.append(img)
        log_prog += fl.bytes_programmed - b0
        ts.clear()
        tap_erases += fl.erases - e0
        if q % 64 == 0:  # a sync every 64 taps
            b0 = fl.bytes_programmed
            lg.ack(q)
            log_prog += fl.bytes_programmed - b0
        b0 = fl.bytes_programmed
        lg.maintain()
        ts.maintain()
        log_prog += fl.bytes_programmed - b0  # block headers
    # fill the rest without acks until full, then mount: the full-log boot scan
    q = taps
    while not lg.full:
        q += 1
        _fill(img, q)
        lg.append(img)
        lg.maintain()
    lg2 = RecordLog(fl, log, p["watermark"]).mount()
    cap = RecordLog(_Geo(), p["log"], p["watermark"]).capacity
    return {
        "flash_bytes_per_record_byte": round(log_prog / (taps * record_host.REC_SIZE), 4),
        "tap_path_erases": tap_erases,
        "log_capacity_records": cap,
        "boot_scan_reads_full_log": lg2.reads_at_mount,
        "boot_scan_log_blocks": lg2._B,
        "log_full_records_checked": lg2.next_seq - lg2.first_seq,
    }


class _Geo:
    block_size = 4096
    prog_size = 256


def _blacklist_keys(n, seed=5):
    """n sorted keys shaped like real serials: 19-digit numbers = 4-digit issuer code,
    4 digits of issuer data, 11 digits of card sequence; 250 issuers (FORMAT.md §5)."""
    rnd = random.Random(seed)
    issuers = sorted(rnd.sample(range(1000, 9999), 250))
    per = n // len(issuers)
    keys = []
    for i, iss in enumerate(issuers):
        m = per + (1 if i < n - per * len(issuers) else 0)
        base = (iss * 10**4 + 7700) * 10**11
        for s in sorted(rnd.sample(range(10**11), m)):
            keys.append((base + s).to_bytes(8, "big"))
    return keys


def _blacklist_metrics(quick):
    p = plan_boards.PLAN_ESP32S3  # the real board's banks must hold a million (bench_board
    n = 1_000_000 if not quick else 100_000  # reports its capacities)
    fl = NorFlash(plan_boards.ESP32S3_FLASH_SIZE, block_size=4096, prog_size=256)
    bl = Blacklist(fl, p["blacklist"]).mount()
    keys = _blacklist_keys(n)
    if bl.begin(KIND_FULL, 1) != OK:
        raise RuntimeError("begin")
    for k in keys:
        bl.add(k)
    if bl.commit() != OK:
        raise RuntimeError("blacklist build refused (groups %d)" % bl.max_groups)
    bl = Blacklist(fl, p["blacklist"]).mount()
    rnd = random.Random(9)
    worst = 0
    hits = 0
    probes = rnd.sample(keys, 2000) + [
        (int.from_bytes(k, "big") + 1).to_bytes(8, "big") for k in rnd.sample(keys, 2000)
    ]
    for k in probes:
        r0 = fl.reads
        hits += bl.contains_key(k)
        worst = max(worst, fl.reads - r0)
    if hits < 2000:
        raise RuntimeError("blacklist lost keys")
    used = 4096 + ((bl._groups + 63) // 64) * 512 + bl._groups * 384
    return {
        "blacklist_entries": bl.entries,
        "blacklist_groups": bl._groups,
        "blacklist_capacity_groups_esp32s3": bl.max_groups,
        "blacklist_bytes_per_entry": round(used / bl.entries, 3),
        "blacklist_reads_per_lookup": worst,
        "blacklist_ram_bytes": len(bl._idx) + len(bl._fb) + len(bl._k),  # leaf read over _fb
    }


def _powercut(quick):
    """The tier-1 campaigns (emu.powercut) on the same small NOR the tests use."""
    stride = 5 if quick else 1
    fl = NorFlash(18 * 512, block_size=512, prog_size=256)
    c1, f1, _ = powercut.recordlog(fl, stride)
    c2, f2 = powercut.blacklist(fl, stride)
    c3, f3, _ = powercut.params(fl, stride)
    return {
        "powercut_cases": c1 + c2 + c3,
        "powercut_failures": len(f1) + len(f2) + len(f3),
        "powercut_cases_log": c1,
        "powercut_cases_blacklist": c2,
        "powercut_cases_params": c3,
    }


def run(ctx):
    r = {}
    r.update(_log_metrics(ctx.quick))
    r.update(_blacklist_metrics(ctx.quick))
    r.update(_powercut(ctx.quick))
    return r
