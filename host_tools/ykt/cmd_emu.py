"""ykt emu: emulator self-test (one CAPP purchase through the card and PSAM emulators) and
a standalone emulated PN532 on a pty (`ykt emu pn532`)."""

import argparse
import json
import sys
import threading

from emu import crypto, issuer, t0
from emu.psam import Psam
from ykt.cli import EXIT_FAIL, EXIT_IO, EXIT_OK, EXIT_USAGE, CommandError

AMOUNT = 200  # fen
DATETIME = bytes.fromhex("20250601083000")


def register(sub):
    p = sub.add_parser("emu", help="card/PSAM emulators")
    s = p.add_subparsers(dest="emu_cmd", metavar="CMD")
    st = s.add_parser("selftest", help="one CAPP purchase through card + PSAM (T=0) emulators",
                      formatter_class=argparse.RawDescriptionHelpFormatter,
                      description="""\
One compound purchase (card-protocol.md §9) through the card and PSAM emulators with the
given master keys, every APDU printed, then the issuer-side TAC check. Exit 0 on PASS, 1 on
FAIL (the verdict line names the refused step and decodes its status word).

examples:
  ykt emu selftest
  ykt emu selftest --alg sm4 --json
  ykt emu selftest --keys my-master-keys.json""")
    st.add_argument("--alg", choices=("3des", "sm4"), default="3des",
                    help="card key algorithm family (default %(default)s)")
    st.add_argument("--keys", default=None, help="master key file (default: the test keys)")
    st.add_argument("--wrong-psam", action="store_true", help="PSAM with other master keys")
    st.add_argument("--json", action="store_true",
                    help="print one JSON object (verdict, failed step, status word and its "
                    "meaning, every APDU) instead of the transcript")
    st.set_defaults(func=do_selftest)
    pn = s.add_parser(
        "pn532",
        help="an emulated PN532 on a new pty (first line 'pty: /dev/pts/N'; serves until killed)",
    )
    pn.add_argument("--card", action="append", default=[], metavar="FILE",
                    help="card JSON (ykt card issue) placed in the field; repeatable")
    pn.add_argument("--spi", action="store_true",
                    help="the pty carries the SPI bridge of boards/unix/board.py, not HSU bytes")
    pn.set_defaults(func=do_pn532)


def _find_tag(tlv, tag):
    """First occurrence of a (1- or 2-byte) tag in a BER-TLV tree; enough for an FCI."""
    i = 0
    while i < len(tlv):
        t = tlv[i : i + 1]
        i += 1
        if t[0] & 0x1F == 0x1F:
            t += tlv[i : i + 1]
            i += 1
        if i >= len(tlv):
            return None
        n = tlv[i]
        i += 1
        v = tlv[i : i + n]
        if t == tag:
            return v
        if t[0] & 0x20:  # constructed: search inside
            r = _find_tag(v, tag)
            if r is not None:
                return r
        i += n
    return None


# What a status word means (card-protocol.md §3 "Status words that matter", §4 PSAM), so a
# failed step says why in words, not only as four hex digits.
SW_MEANINGS = (
    (0x9302, "MAC invalid (MAC1 on 8054: the card did not debit; MAC2 on 8072)"),
    (0x9401, "insufficient balance"),
    (0x9406, "no MAC/TAC available (the last debit did not happen)"),
    (0x9303, "application permanently locked"),
    (0x6283, "application invalidated"),
    (0x6284, "application temporarily blocked"),
    (0x6A81, "function not supported / application blocked"),
    (0x6A82, "file not found"),
    (0x6A83, "record not found"),
    (0x6985, "conditions of use not satisfied"),
    (0x6988, "incorrect secure-messaging data"),
    (0x6D00, "instruction not supported"),
    (0x6E00, "class not supported"),
    (0x6700, "wrong length"),
)


def sw_meaning(sw):
    for code, text in SW_MEANINGS:
        if code == sw:
            return text
    if sw >> 8 == 0x61:
        return "%d bytes waiting (T=0 GET RESPONSE)" % (sw & 0xFF)
    if sw >> 8 == 0x6C:
        return "wrong Le, %d expected" % (sw & 0xFF)
    return "unknown status"


class _Refused(Exception):
    def __init__(self, step, sw):
        super().__init__(step)
        self.step, self.sw = step, sw


def selftest(alg="3des", keys_path=None, wrong_psam=False, out=None):
    """Run the flow of card-protocol.md §9 once; return (ok, lines). A step the card or
    PSAM refuses ends the run with a FAIL verdict naming the step and the status word."""
    ok, lines, _ = selftest_report(alg, keys_path, wrong_psam)
    return ok, lines


def selftest_report(alg="3des", keys_path=None, wrong_psam=False):
    """(ok, transcript lines, report dict for --json)."""
    path = keys_path or issuer.KEYS_PATH
    from ykt.cmd_card import load_master_keys

    keys = load_master_keys(path)
    apdus = []
    lines = ["keys: " + path]
    report = {"keys": path, "alg": alg, "wrong_psam": wrong_psam, "apdus": apdus}
    try:
        ok, verdict, extra = _flow(keys, alg, wrong_psam, lines, apdus)
    except _Refused as e:
        sw = int.from_bytes(e.sw, "big") if len(e.sw) == 2 else -1
        meaning = sw_meaning(sw) if sw >= 0 else "no status word"
        verdict = "FAIL %s refused with SW %s: %s" % (e.step, e.sw.hex().upper(), meaning)
        ok, extra = False, {"step": e.step, "sw": e.sw.hex().upper(), "meaning": meaning}
    lines.append("verdict: " + verdict)
    report.update(extra, ok=ok, verdict=verdict)
    return ok, lines, report


def _flow(keys, alg, wrong_psam, lines, apdus):
    pk = issuer.wrong_keys(keys) if wrong_psam else keys
    card = issuer.issue_card(keys, alg=alg, balance=5000, seed=3)
    psam = t0.T0Card(Psam(pk, ttsn=0x0F))

    def log(c, r):
        apdus.append([bytes(c).hex().upper(), bytes(r).hex().upper()])
        lines.append(">> " + apdus[-1][0])
        lines.append("<< " + apdus[-1][1])

    def cardx(c):
        r = card.apdu(c)
        log(c, r)
        return r

    def psamx(c):
        return t0.transceive(psam, c, log)

    def need(r, what):
        if r[-2:] != b"\x90\x00":
            raise _Refused(what, bytes(r[-2:]))
        return r[:-2]

    if not psam.reset():
        raise _Refused("PSAM reset (no ATR)", b"")
    terminal = need(psamx(bytes.fromhex("00B0960006")), "PSAM read EF16")
    need(psamx(bytes.fromhex("00A40000028011")), "PSAM select DF 8011")
    key_index = need(psamx(bytes.fromhex("00B0970001")), "PSAM read EF17")[0]
    fci = need(cardx(bytes.fromhex("00A4040008A00000063201010500")), "card SELECT")
    ef15 = _find_tag(fci, b"\x9f\x0c")
    if ef15 is None or len(ef15) != 30:
        raise _Refused("card SELECT (FCI without 9F0C/EF15)", b"")
    need(cardx(bytes.fromhex("805C030204")), "GET BALANCE")
    amount4 = AMOUNT.to_bytes(4, "big")
    init = need(
        cardx(b"\x80\x50\x03\x02\x0b" + bytes((key_index,)) + amount4 + terminal + b"\x0f"),
        "INITIALIZE FOR CAPP PURCHASE",
    )
    atc, keyver, alg_id, rnd = init[4:6], init[9], init[10], init[11:15]
    d8070 = rnd + atc + amount4 + b"\x09" + DATETIME + bytes((keyver, alg_id))
    d8070 += ef15[12:20] + ef15[0:8]
    r = need(psamx(b"\x80\x70\x00\x00\x24" + d8070), "PSAM 8070")
    ttsn, mac1 = r[0:4], r[4:8]
    rec = bytearray(48)  # §2.6 EF1E bus record
    rec[0] = 0x06
    rec[3:9] = terminal
    rec[9] = 0x02
    rec[17:21] = amount4
    rec[21:25] = (card.balance - AMOUNT).to_bytes(4, "big")
    rec[25:32] = DATETIME
    rec[32:34] = ef15[2:4]
    rec[34:42] = ef15[0:8]
    need(cardx(b"\x80\xdc\x00\xf0\x30" + bytes(rec)), "UPDATE CAPP DATA CACHE")
    r = need(cardx(b"\x80\x54\x01\x00\x0f" + ttsn + DATETIME + mac1 + b"\x08"),
             "DEBIT FOR CAPP PURCHASE")
    tac, mac2 = r[0:4], r[4:8]
    r2 = psamx(b"\x80\x72\x00\x00\x04" + mac2)
    ok = crypto.verify_purchase_tac(
        keys, alg_id, ef15[0:8], ef15[12:20], AMOUNT, 0x09, terminal, ttsn, DATETIME, tac
    )
    mac2_ok = r2[-2:] == b"\x90\x00"
    mac2_sw = r2[-2:].hex().upper()
    verdict = "%s issuer-side TAC check (%s, alg %02X, TAC %s)%s" % (
        "PASS" if ok and mac2_ok else "FAIL",
        "verified" if ok else "does not verify",
        alg_id,
        tac.hex().upper(),
        "" if mac2_ok else "; PSAM rejected MAC2 with SW %s: %s" % (
            mac2_sw, sw_meaning(int(mac2_sw, 16))),
    )
    extra = {"tac": tac.hex().upper(), "tac_ok": ok, "mac2_ok": mac2_ok,
             "alg_id": "%02X" % alg_id}
    if not (ok and mac2_ok):
        extra["step"] = "issuer-side TAC check" if not ok else "PSAM 8072 (MAC2)"
        if not mac2_ok:
            extra.update(sw=mac2_sw, meaning=sw_meaning(int(mac2_sw, 16)))
    return ok and mac2_ok, verdict, extra


def do_selftest(args):
    ok, lines, report = selftest_report(args.alg, args.keys, args.wrong_psam)
    if getattr(args, "json", False):
        print(json.dumps(report, sort_keys=True))
    else:
        for ln in lines:
            print(ln)
    sys.stdout.flush()
    return EXIT_OK if ok else EXIT_FAIL


def load_cards(paths):
    """Cards from `ykt card issue` JSON files; a clear error for anything else."""
    from emu import local_card

    cards = []
    for path in paths:
        try:
            with open(path) as f:
                d = json.load(f)
            cards.append(local_card.from_dict(d))
        except OSError as e:
            raise CommandError("cannot read card %s: %s" % (path, e.strerror or e), EXIT_IO)
        except (ValueError, KeyError, TypeError, AttributeError, IndexError) as e:
            raise CommandError("card %s: not a card file (%s: %s)" % (path, type(e).__name__, e),
                               EXIT_USAGE)
    return cards


def do_pn532(args, stop=None):
    from emu.pn532_pty import Pn532Pty

    chip = Pn532Pty(load_cards(args.card), spi=args.spi)
    print("pty: " + chip.name)
    for c in chip.field.cards:
        print("card: type %s uid %s" % (c.kind, bytes(c.uid).hex().upper()))
    sys.stdout.flush()
    try:
        chip.serve(stop or threading.Event())
    finally:
        chip.close()
    return EXIT_OK
