"""ykt inspect: decode a validator flash dump (record log, watermark, tear store, blacklist,
parameters) following firmware/validator/storage/FORMAT.md.

The dump is never modified: it is copied to a temporary file first, because mounting a
blank journal formats it.
"""

import csv
import os
import shutil
import sys
import tempfile

from ykt.cli import EXIT_IO, EXIT_USAGE, CommandError


def register(sub):
    p = sub.add_parser("inspect", help="decode a validator flash dump (FORMAT.md)",
                       description=__doc__)
    p.add_argument("dump", help="flash image file (e.g. build/sim/flash.bin)")
    p.add_argument("--board", choices=("sim", "esp32s3"), default="sim",
                   help="flash plan (default %(default)s); esp32s3 dumps start at 0")
    p.add_argument("--records", type=int, default=5, help="show the last N records")
    p.add_argument("--csv", metavar="FILE", help="write every readable record as CSV")
    p.add_argument("--layout", choices=("auto", "plain", "inverted"), default="auto",
                   help="plain = a chip dump; inverted = an emulated board's image file "
                        "(bytes stored XOR FF so a blank device is sparse); auto guesses "
                        "from the parameter region")
    p.set_defaults(func=do_inspect)


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
    for b in range(lg._B):
        if lg._hdr(b) < 0:
            for s in range(1, lg._S):
                if lg._cls(b, s) != 0:
                    lines.append("block %d header damaged (slots follow it)" % b)
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
    return lines[:limit] + (["... %d more" % more] if more > 0 else []), valid


def do_inspect(args):
    from emu.nor import NorFlash
    from validator.storage import plan, plan_boards, record_host
    from validator.storage.blacklist import Blacklist
    from validator.storage.params import ParamStore
    from validator.storage.recordlog import RecordLog, TearStore

    if not os.path.exists(args.dump):
        raise CommandError("cannot read %s: No such file or directory" % args.dump, EXIT_IO)
    fp = plan.PLAN_SIM if args.board == "sim" else plan_boards.PLAN_ESP32S3
    size = os.path.getsize(args.dump)
    need = max(o + n for o, n in fp.values())
    if size < need:
        raise CommandError("%s is %d bytes; the %s flash plan needs %d (a truncated dump, or "
                           "the wrong --board?)" % (args.dump, size, args.board, need),
                           EXIT_USAGE)
    tmp = tempfile.NamedTemporaryFile(prefix="ykt-inspect-", delete=False)
    tmp.close()
    try:
        shutil.copyfile(args.dump, tmp.name)
        inv = args.layout == "inverted" or (
            args.layout == "auto" and _inverted(args.dump, fp["params"]))
        fl = NorFlash(size, path=tmp.name, create=False, invert=inv)
        lg = RecordLog(fl, fp["log"], fp["watermark"]).mount()
        out = sys.stdout
        print("log: first_seq %d  acked_seq %d  next_seq %d  full %s  capacity %d  "
              "corrupt %d  boot reads %d" % (lg.first_seq, lg.acked_seq, lg.next_seq, lg.full,
                                             lg.capacity, lg.corrupt, lg.reads_at_mount),
              file=out)
        damage, valid = _damage(lg)
        if valid == 0 and lg.next_seq <= 1 and not damage:
            print("warning: the log region is blank: no record was ever written here "
                  "(or --board / --layout does not match the dump)", file=out)
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
        for r in rows[-args.records:] if args.records else []:
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
        bl = Blacklist(fl, fp["blacklist"]).mount()
        print("blacklist: version %d  entries %d" % (bl.version, bl.entries), file=out)
        ps = ParamStore(fl, fp["params"]).mount()
        print("params: %s" % ", ".join("%s(%d)" % (n, ps.size(n)) for n in ps.names()), file=out)
        fl.close()
    finally:
        os.unlink(tmp.name)
    return 0
