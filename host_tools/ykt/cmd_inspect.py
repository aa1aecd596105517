"""ykt inspect: decode a validator flash dump (record log, watermark, tear store, blacklist,
parameters) following firmware/validator/storage/FORMAT.md.

The dump is never modified: it is copied to a temporary file first, because mounting a
blank journal formats it.
"""

import csv
import io
import json
import os
import shutil
import sys
import tempfile

from ykt import argtypes as T
from ykt.cli import EXIT_IO, EXIT_USAGE, CommandError


def register(sub):
    p = sub.add_parser("inspect", help="decode a validator flash dump (FORMAT.md)",
                       description=__doc__)
    p.add_argument("dump", help="flash image file (e.g. build/sim/flash.bin)")
    p.add_argument("--board", choices=("sim", "esp32s3"), default="sim",
                   help="flash plan (default %(default)s). esp32s3: a full-chip dump (32 MiB, "
                   "from address 0) or the ykt data partition alone (28 MiB, what `ykt flash "
                   "image --board esp32s3` writes), told apart by size")
    p.add_argument("--records", type=T.int_range(0, 10 ** 9), default=5,
                   help="show the last N records (default %(default)s)")
    p.add_argument("--csv", metavar="FILE", help="write every readable record as CSV")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object (plan, log state, warnings, damage, the last "
                   "--records records, pending tears, blacklist, parameters) instead of text")
    p.add_argument("--layout", choices=("auto", "plain", "inverted"), default="auto",
                   help="plain = a chip dump; inverted = an emulated board's image file "
                        "(bytes stored XOR FF so a blank device is sparse); auto guesses "
                        "from the parameter region")
    p.set_defaults(func=do_inspect)


def _jsonable(v):
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v).hex()
    raise TypeError("not JSON: %r" % (v,))


def _inverted(path, region):
    """An erased NOR reads FF; in an inverted image file it reads 00 on disk."""
    with open(path, "rb") as f:
        f.seek(region[0])
        head = f.read(min(region[1], 4096))
    return head.count(0) > head.count(0xFF)


def _tear_contexts(blob):
    """The valid contexts of a tear store blob (txn/README.md "Tears": N_CTX slots, each a
    copy of record bytes SERIAL..DIRECTION then the gray seq, save time, valid flag),
    decoded as the record fields they hold."""
    import struct

    from validator.storage import record_host
    from validator.txn import record as tear

    out = []
    for k in range(tear.N_CTX):
        c = k * tear.CTX_LEN
        if not blob[c + tear.C_VALID]:
            continue
        img = record_host.new_image()
        img[tear.CTX_BASE : tear.CTX_BASE + tear.CTX_IMG] = blob[c : c + tear.CTX_IMG]
        d = record_host.decode(img)
        d["gray_seq"], d["saved"] = struct.unpack_from(">II", blob, c + tear.C_GRAY)
        out.append(d)
    return out


def _damage(lg, limit=20):
    """Scan every block header and slot of the record log: (lines, valid slots). A damaged
    area is reported where it is (block, slot, flash offset); the records around it are
    read normally. Uses the log's own slot classifier (FORMAT.md §2, §3), read-only."""
    import struct

    lines = []
    valid = 0
    bad_headers = 0
    for b in range(lg._B):
        if lg._hdr(b) < 0:
            for s in range(1, lg._S):
                if lg._cls(b, s) != 0:
                    lines.append("block %d header damaged (slots follow it)" % b)
                    bad_headers += 1
                    break
            continue
        for s in range(1, lg._S):
            c = lg._cls(b, s)
            if c == 1:
                valid += 1
            elif c in (2, 3):
                seq = struct.unpack_from(">I", lg._sb, 8)[0]
                lines.append("%s slot: block %d slot %d at 0x%X%s" % (
                    "corrupt" if c == 2 else "torn", b, s, lg._addr(b, s),
                    " (claims seq %d)" % seq if c == 2 else ""))
    more = len(lines) - limit
    return lines[:limit] + (["... %d more" % more] if more > 0 else []), valid, bad_headers


def _plan(args, size):
    """(flash plan, what the dump is) for --board and the dump's size: a sim image, an
    esp32s3 full-chip dump (regions at their chip addresses) or an esp32s3 data partition
    image (regions partition-relative, as `ykt flash image --board esp32s3` writes it)."""
    from validator.storage import plan, plan_boards

    if args.board == "sim":
        fp, what = plan.PLAN_SIM, "sim board image"
    else:
        full = plan_boards.ESP32S3_FLASH_SIZE
        part = full - plan_boards.ESP32S3_PARTITION_BASE
        if size == part:
            fp, what = plan_boards.partition_plan(), "esp32s3 data partition image"
        elif size >= full:
            fp, what = plan_boards.PLAN_ESP32S3, "esp32s3 full-chip dump"
        else:
            raise CommandError("%s is %d bytes: an esp32s3 dump is the full chip (%d bytes) or "
                               "its ykt data partition (%d bytes, from 0x%X); truncated, or "
                               "the wrong --board?" % (args.dump, size, full, part,
                                                        plan_boards.ESP32S3_PARTITION_BASE),
                               EXIT_USAGE)
    need = max(o + n for o, n in fp.values())
    if size < need:
        raise CommandError("%s is %d bytes; the %s flash plan needs %d (a truncated dump, or "
                           "the wrong --board?)" % (args.dump, size, args.board, need),
                           EXIT_USAGE)
    return fp, what


def _region_state(path, region, inverted):
    """"blank" (every byte erased: FF on the chip, 00 in an inverted image file) or
    "written". Reads the file directly, 1 MiB at a time (a 40 MiB log region in well under
    a second)."""
    off, n = region
    erased = b"\x00" if inverted else b"\xff"
    with open(path, "rb") as f:
        f.seek(off)
        while n > 0:
            chunk = f.read(min(n, 1 << 20))
            if not chunk or chunk.count(erased) != len(chunk):
                return "written"
            n -= len(chunk)
    return "blank"


def do_inspect(args):
    from emu.nor import NorFlash
    from validator.storage import record_host
    from validator.storage.blacklist import Blacklist
    from validator.storage.params import ParamStore
    from validator.storage.recordlog import RecordLog, TearStore

    if not os.path.isfile(args.dump):
        why = "Is a directory" if os.path.isdir(args.dump) else "No such file or directory"
        raise CommandError("cannot read %s: %s" % (args.dump, why), EXIT_IO)
    size = os.path.getsize(args.dump)
    fp, what = _plan(args, size)
    tmp = tempfile.NamedTemporaryFile(prefix="ykt-inspect-", delete=False)
    tmp.close()
    try:
        shutil.copyfile(args.dump, tmp.name)
        inv = args.layout == "inverted" or (
            args.layout == "auto" and _inverted(args.dump, fp["params"]))
        fl = NorFlash(size, path=tmp.name, create=False, invert=inv)
        out = io.StringIO() if args.json else sys.stdout  # --json: the text is dropped
        rep = {"dump": args.dump, "kind": what, "bytes": size, "board": args.board,
               "layout": "inverted" if inv else "plain", "layout_guessed": args.layout == "auto",
               "warnings": []}

        def warn(text):
            rep["warnings"].append(text)
            print("warning: " + text, file=out)
        print("dump: %s, %d bytes, %s layout%s" % (
            what, size, "inverted" if inv else "plain",
            " (guessed)" if args.layout == "auto" else ""), file=out)
        log_blank = _region_state(tmp.name, fp["log"], inv) == "blank"
        # the state of the parameter region before mounting it (mounting formats a blank one)
        probe = ParamStore(fl, fp["params"])
        params_hdr = max(probe._gen(0), probe._gen(1)) >= 0
        params_blank = not params_hdr and _region_state(tmp.name, fp["params"], inv) == "blank"
        lg = RecordLog(fl, fp["log"], fp["watermark"]).mount()
        rep["log"] = {"first_seq": lg.first_seq, "acked_seq": lg.acked_seq,
                      "next_seq": lg.next_seq, "full": None if log_blank else bool(lg.full),
                      "blank": log_blank, "capacity": lg.capacity, "corrupt": lg.corrupt,
                      "boot_reads": lg.reads_at_mount}
        print("log: first_seq %d  acked_seq %d  next_seq %d  full %s  capacity %d  "
              "corrupt %d  boot reads %d" % (lg.first_seq, lg.acked_seq, lg.next_seq,
                                             "-" if log_blank else lg.full, lg.capacity,
                                             lg.corrupt, lg.reads_at_mount), file=out)
        damage, valid, bad_headers = _damage(lg)
        if log_blank:
            warn("the log region is blank (all erased): this validator never booted on it, or "
                 "--board does not match the dump")
        elif valid == 0 and lg.next_seq <= 1 and not damage:
            warn("the log holds no record yet (formatted, never tapped)")
        if bad_headers * 2 > lg._B:
            warn("%d of %d log block headers are unreadable: not a validator dump, or the "
                 "wrong --board or --layout (this run: %s)"
                 % (bad_headers, lg._B, "inverted" if inv else "plain"))
        rep["damage"] = damage
        for line in damage:
            print("damage: " + line, file=out)
        if not damage:
            print("damage: none found", file=out)
        buf = bytearray(record_host.REC_SIZE)
        rows = []
        start = lg.first_seq if args.csv else max(lg.first_seq, lg.next_seq - args.records)
        for q in range(start, lg.next_seq):
            if lg.read(q, buf):
                rows.append(record_host.decode(buf))
            else:
                rows.append({"seq": q, "status": "corrupt"})
        rep["records"] = rows[-args.records:] if args.records else []
        for r in rep["records"]:
            if r.get("status") == "corrupt":
                print("  %8d  CORRUPT (CRC)" % r["seq"], file=out)
                continue
            print("  %8d  %-9s %s card %s amount %d balance %d->%d tac %s %s" % (
                r["seq"], r["status"], r["txn_type"], r["card_serial"], r["amount"],
                r["balance_before"], r["balance_after"], r["tac"], r["datetime"]), file=out)
        if args.csv:
            with open(args.csv, "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=list(record_host.CSV_COLUMNS),
                                   extrasaction="ignore")
                w.writeheader()
                for r in rows:
                    w.writerow(r)
            print("wrote %d records to %s" % (len(rows), args.csv), file=out)
        ts = TearStore(fl, fp["tear"]).mount()
        tb = bytearray(TearStore.SIZE)
        pending = _tear_contexts(tb) if ts.load(tb) else []
        for d in pending:
            print("tear: PENDING card %s amount %d atc %d ttsn %s at %s (gray seq %d)" % (
                d["card_serial"], d["amount"], d["atc"], d["ttsn"], d["datetime"],
                d["gray_seq"]), file=out)
        if not pending:
            print("tear: none pending", file=out)
        rep["tear_pending"] = pending
        bl = Blacklist(fl, fp["blacklist"]).mount()
        print("blacklist: version %d  entries %d" % (bl.version, bl.entries), file=out)
        rep["blacklist"] = {"version": bl.version, "entries": bl.entries}
        ps = ParamStore(fl, fp["params"]).mount()
        names = ps.names()
        rep["params"] = {n: ps.size(n) for n in names}
        print("params: %s" % (", ".join("%s(%d)" % (n, ps.size(n)) for n in names) or "none"),
              file=out)
        if params_blank:
            warn("the parameter region is blank: never provisioned (no sync keys, no "
                 "configuration)")
        elif not params_hdr:
            warn("the parameter region is damaged or foreign: neither of its two halves has a "
                 "valid header (FORMAT.md §6)")
        elif ps._dirty:
            warn("the parameter region has bytes after its last valid entry (a torn write or "
                 "damage); the validator compacts it at its next write")
        fl.close()
        if args.json:
            if args.csv:
                rep["csv"] = {"path": args.csv, "records": len(rows)}
            print(json.dumps(rep, sort_keys=True, default=_jsonable))
    finally:
        os.unlink(tmp.name)
    return 0
