"""Tier 2: depot clearing (host_tools/depot/CLEARING.md) -- the key service against the
reference crypto, every anomaly kind provoked by real record images (registry encoder, real
TACs from the test master keys) ingested the way a sync stores them, gray records resolved,
the export files' control records, re-clearing idempotent, the CLI; and a whole `ykt sim`
day cleared: every paid record verified, every gray record resolved."""

import argparse
import json
import os
import time

import pytest

from depot import anomalies as A
from depot import clearing, keyservice
from emu import issuer
from validator.storage import record_host as RH
from ykt import cli

DAY = "2026-03-02"
REF = keyservice.TestKeyService(engine="reference")
KS = keyservice.TestKeyService()
DEV_A, DEV_B = 0x00120001, 0x00150001


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, tmp_path):
    if request.param == "sqlite":
        d = clearing.open_database(str(tmp_path / "d.sqlite"))
    else:
        from depot import db as dbmod

        if not hasattr(dbmod, "open_db"):
            pytest.skip("depot.db has no PostgreSQL support yet")
        try:
            url = request.getfixturevalue("pg_url")
        except pytest.FixtureLookupError:
            pytest.skip("no pg_url fixture (tests/pgserver.py)")
        d = dbmod.open_db(url)
    yield d
    d.close()


def card_no(i):
    return "031000000000000%05d" % i


def rec(card, dev, seq, at, atc, before, amount=200, status="normal", tac="good", slot=0,
        alg="00", iss="02002900ffffffff", **kw):
    d = {"status": status, "device_id": "%08x" % dev, "card_serial": card, "issuer_id": iss,
         "txn_type": "09", "alg_id": alg, "key_version": "01", "amount": amount,
         "balance_before": before, "balance_after": before - amount, "atc": atc,
         "terminal_no": "0000%08x" % dev, "ttsn": "%08x" % seq, "datetime": at,
         "psam_slot": slot, "line": 12, "station": 1, "fare_list": amount}
    d.update(kw)
    if status in ("normal", "recovered"):
        t = REF.compute_tac(d)
        d["tac"] = t.hex() if tac == "good" else "%08x" % (int.from_bytes(t, "big") ^ 1)
    return clearing.encode(d, seq)


def ingest(db, dev, first, images):
    n, dup = db.ingest(dev, first, RH.REC_SIZE, b"".join(images))
    assert (n, dup) == (len(images), 0)


def at(hms, day="20260302"):
    return day + hms.replace(":", "")


def clear(db, tmp_path, day=DAY, **kw):
    return clearing.clear_day(db, day, KS, str(tmp_path / "out"), city="2900", **kw)


# -- decoder, encoder, key service ---------------------------------------------------------
def test_clearing_when_record_decoded_it_equals_record_host_decode():
    img = rec(card_no(1), DEV_A, 7, at("06:00:00"), 3, 5000, txflags=3, void_seq=5,
              ref_seq=6, flags=5)
    assert clearing.decode(img) == RH.decode(img)
    assert clearing.encode(clearing.decode(img), 7) == img
    assert RH.crc_ok(img)


@pytest.mark.parametrize("slot", [0, 1])
@pytest.mark.parametrize("alg", ["00", "04"])
def test_keyservice_when_fast_engine_it_agrees_with_the_reference(slot, alg):
    img = rec(card_no(2), DEV_A, 9, at("07:10:00"), 4, 3000, slot=slot, alg=alg,
              iss="03002900ffffffff" if slot else "01011000ffffffff")
    r = clearing.decode(img)
    assert KS.verify_tac(r) == REF.verify_tac(r) == (True, None)
    r["amount"] += 1  # one fen more than the card signed
    assert KS.verify_tac(r) == REF.verify_tac(r) == (False, "TAC_MISMATCH")


def test_keyservice_when_key_or_input_missing_it_says_unverified_not_false():
    r = clearing.decode(rec(card_no(3), DEV_A, 1, at("06:00:00"), 0, 1000))
    assert KS.verify_tac(dict(r, alg_id="07")) == (None, "TAC_NO_KEY")
    assert KS.verify_tac(dict(r, psam_slot=5)) == (None, "TAC_NO_FAMILY")
    assert KS.verify_tac(dict(r, ttsn="zz")) == (None, "TAC_BAD_INPUT")
    wrong = keyservice.TestKeyService(dict(issuer.wrong_keys(issuer.load_master_keys()),
                                           local=issuer.load_master_keys()["local"]))
    assert wrong.verify_tac(r) == (False, "TAC_MISMATCH")


def test_clearing_when_records_are_read_in_pages_none_is_missed(db):
    for dev in (DEV_A, DEV_B):
        ingest(db, dev, 1, [rec(card_no(5), dev, q, at("06:00:%02d" % q), q, 5000)
                            for q in range(1, 8)])
    got = [(d, q) for d, q, _raw, _rc in clearing.iter_raw(clearing.store(db), batch=3)]
    assert got == [(d, q) for d in (DEV_A, DEV_B) for q in range(1, 8)]


# -- a crafted day ----------------------------------------------------------------------------
def test_clearing_when_day_is_clean_exports_per_issuer_with_control_records(db, tmp_path):
    imgs = [
        rec(card_no(10), DEV_A, 1, at("06:00:00"), 0, 5000),                      # city T-Union
        rec(card_no(11), DEV_A, 2, at("06:01:00"), 5, 3000, alg="04"),            # SM4
        rec(card_no(12), DEV_A, 3, at("06:02:00"), 1, 3000, iss="01011000ffffffff"),
        rec(card_no(13), DEV_A, 4, at("06:03:00"), 2, 3000, slot=1, iss="03002900ffffffff"),
        rec(card_no(14), DEV_A, 5, at("06:04:00"), 2, 3000, slot=1, alg="04",
            iss="03002900ffffffff", amount=150),
        rec(card_no(15), DEV_A, 6, at("06:05:00"), 0, 40, status="refused", amount=0),
        rec(card_no(10), DEV_A, 7, at("03:30:00", "20260303"), 1, 4800),           # night bus
        rec(card_no(10), DEV_A, 8, at("05:00:00", "20260303"), 2, 4600),           # next day
    ]
    ingest(db, DEV_A, 1, imgs)
    s = clear(db, tmp_path)
    assert s["paid_records"] == s["tac_verified"] == 6 and s["tac_failed"] == 0
    assert s["records_in_day"] == 7 and s["verdicts"] == {"cleared": 6, "no_debit": 1}
    ex = {(e["destination"], e["issuer"]): e for e in s["files"]["exports"]}
    assert set(ex) == {("local", "02002900ffffffff"), ("local", "03002900ffffffff"),
                       ("national", "01011000ffffffff")}
    assert ex[("local", "03002900ffffffff")]["amount_fen"] == 350
    for e in ex.values():
        for ext in ("csv", "jsonl"):
            assert clearing.read_control(e[ext]) == {
                "count": e["count"], "amount_fen": e["amount_fen"],
                "sha256": clearing.read_control(e[ext])["sha256"]}
    with open(ex[("local", "02002900ffffffff")]["jsonl"]) as f:
        lines = [json.loads(x) for x in f]
    assert lines[0]["header"]["business_day"] == DAY
    assert [x["card_serial"] for x in lines[1:-1]] == [card_no(10), card_no(11), card_no(10)]
    assert [x["depot_seq"] for x in lines[1:-1]] == [1, 2, 7]
    st = json.load(open(s["files"]["settlement"]))
    assert st["totals"]["owed_to_operator_fen"] == 5 * 200 + 150
    assert st["totals"]["by_destination_fen"] == {"local": 950, "national": 200}
    assert s["anomalies"] == {}


def test_clearing_when_tac_is_wrong_the_record_is_in_the_error_file_only(db, tmp_path):
    ingest(db, DEV_A, 1, [rec(card_no(20), DEV_A, 1, at("08:00:00"), 0, 5000, tac="bad"),
                          rec(card_no(21), DEV_A, 2, at("08:01:00"), 0, 5000)])
    s = clear(db, tmp_path)
    assert s["tac_failed"] == 1 and s["anomalies"] == {"TAC_MISMATCH": 1}
    assert [e["count"] for e in s["files"]["exports"]] == [1]
    body = open(s["files"]["errors"]["csv"]).read()
    assert "TAC_MISMATCH" in body and card_no(20) in body and card_no(21) not in body
    assert clearing.read_control(s["files"]["errors"]["csv"])["amount_fen"] == 200
    row = clearing._tuples(clearing.store(db).query(
        "SELECT verdict, reason, tac_ok FROM clearing_results WHERE seq = ?", (1,)))[0]
    assert tuple(row) == ("error", "TAC_MISMATCH", 0)


def test_clearing_when_cards_and_devices_misbehave_every_anomaly_kind_is_flagged(db, tmp_path):
    c = [card_no(30 + i) for i in range(8)]
    a = [
        rec(c[0], DEV_A, 1, at("06:00:00"), 3, 5000),
        rec(c[0], DEV_A, 2, at("07:00:00"), 6, 4800),          # ATC_GAP (2 unseen)
        rec(c[1], DEV_A, 3, at("06:10:00"), 3, 5000),
        rec(c[1], DEV_A, 4, at("07:10:00"), 3, 5000),          # ATC_REPEAT (a clone)
        rec(c[2], DEV_A, 5, at("06:20:00"), 9, 5000),
        rec(c[2], DEV_A, 6, at("07:20:00"), 4, 4000),          # ATC_REGRESSION
        rec(c[3], DEV_A, 7, at("06:30:00"), 1, 5000),
        rec(c[3], DEV_A, 8, at("07:30:00"), 2, 4000),          # BAL_LOST (4800 -> 4000)
        rec(c[4], DEV_A, 9, at("06:40:00"), 1, 1000),
        rec(c[4], DEV_A, 10, at("07:40:00"), 2, 9000),         # BAL_GAINED
        rec(c[5], DEV_A, 11, at("08:00:00"), 1, 5000),
        rec(c[6], DEV_A, 12, at("08:10:00"), 1, 5000, txflags=RH.FL_MAC2_BAD),
        rec(c[6], DEV_A, 13, at("08:20:00"), 2, 4800, status="recovered",
            txflags=RH.FL_MAC2_UNVERIFIED),
        rec(c[7], DEV_A, 14, at("09:00:00"), 1, 5000),
        rec(c[7], DEV_A, 15, at("08:00:00"), 2, 4800),         # CLOCK_BACK (seq 15 earlier)
    ]
    ingest(db, DEV_A, 1, a)
    b = [rec(c[5], DEV_B, 1, at("08:00:30"), 2, 4800)]         # TWO_VEHICLES (30 s later)
    ingest(db, DEV_B, 1, b)
    ingest(db, DEV_B, 4, [rec(card_no(40), DEV_B, 4, at("10:00:00"), 0, 500)])  # SEQ_GAP 2..3
    bad = bytearray(rec(card_no(41), DEV_B, 5, at("10:01:00"), 0, 500))
    bad[RH.O_AMOUNT] ^= 0x10  # a flipped bit on the way: CRC fails
    ingest(db, DEV_B, 5, [bytes(bad)])
    # a third validator whose clock runs a year ahead, last synced 10 days ago
    dev_c = 0x00160001
    future = time.strftime("%Y%m%d", time.localtime(time.time() + 400 * 86400))
    ingest(db, dev_c, 1, [rec(card_no(42), dev_c, 1, at("10:00:00", future), 0, 500)])
    s = clearing.store(db)
    for dev in (DEV_A, DEV_B, dev_c):
        db.note_device({"device_id": dev, "rec_size": 128, "firmware": 1, "acked_seq": 0,
                        "next_seq": 1, "blacklist_version": 0, "fares_version": 0,
                        "whitelist_version": 0, "config_version": 0})
    s.execute("UPDATE devices SET last_sync = ? WHERE device_id = ?",
              (time.time() - 10 * 86400, dev_c))
    summary = clear(db, tmp_path)
    assert summary["corrupt"] == 1
    want = {"ATC_GAP", "ATC_REPEAT", "ATC_REGRESSION", "BAL_LOST", "BAL_GAINED",
            "TWO_VEHICLES", "MAC2_BAD", "MAC2_UNVERIFIED", "CLOCK_BACK", "SEQ_GAP",
            "CORRUPT_CRC", "NOT_SYNCED"}
    assert want <= set(summary["anomalies"]), summary["anomalies"]
    fut = clearing.clear_day(db, "%s-%s-%s" % (future[:4], future[4:6], future[6:]), KS,
                             str(tmp_path / "out"))
    assert "CLOCK_AHEAD" in fut["anomalies"]
    listed = clearing.list_anomalies(db)
    got = {x["reason"]: x for x in listed}
    assert set(A.KINDS) - {"tac"} <= {x["kind"] for x in got.values()}  # tac: test above
    assert got["CORRUPT_CRC"]["device_id"] == DEV_B and got["CORRUPT_CRC"]["records"] == [
        [DEV_B, 5]]
    assert got["ATC_REPEAT"]["card"] == c[1] and got["ATC_REPEAT"]["records"] == [
        [DEV_A, 3], [DEV_A, 4]]
    assert got["TWO_VEHICLES"]["records"] == [[DEV_A, 11], [DEV_B, 1]]
    assert got["SEQ_GAP"]["detail"].startswith("seq 2..3 missing")
    for x in got.values():
        assert x["reason"] in A.REASONS and x["kind"] == A.kind_of(x["reason"])
    # re-clearing finds the same and adds nothing; the corrupt record is not re-flagged
    again = clear(db, tmp_path)
    assert again["anomalies_new"] == 0 and again["corrupt"] == 1
    assert len(clearing.list_anomalies(db)) == len(listed)


def test_clearing_when_gray_records_resolve_each_has_a_visible_state(db, tmp_path):
    c = [card_no(50 + i) for i in range(5)]
    gray = dict(status="gray")
    imgs = [
        rec(c[0], DEV_A, 1, at("06:00:00"), 0, 5000, **gray),
        rec(c[0], DEV_A, 2, at("06:00:00"), 0, 5000, ref_seq=1),                # paid
        rec(c[1], DEV_A, 3, at("06:10:00"), 0, 5000, **gray),
        rec(c[1], DEV_A, 4, at("06:10:00"), 0, 5000, status="refused", ref_seq=3),  # void
        rec(c[2], DEV_A, 5, at("06:20:00"), 0, 5000, **gray),
        rec(c[2], DEV_A, 6, at("06:25:00"), 0, 5000, **gray),
        rec(c[2], DEV_A, 7, at("06:25:00"), 0, 5000, void_seq=5, ref_seq=6),    # void + paid
        rec(c[3], DEV_A, 8, at("06:30:00"), 7, 5000, **gray),                   # open today
        rec(c[4], DEV_A, 9, at("06:40:00"), 3, 5000, **gray),                   # open today
    ]
    ingest(db, DEV_A, 1, imgs)
    s1 = clear(db, tmp_path)
    assert s1["gray_resolutions"] == {"paid": 2, "void": 2, "open": 2}
    assert s1["tac_verified"] == 2
    # next day, another bus: card 3 shows ATC 8 from 4800 (the gray debit happened), card 4
    # shows ATC 3 from 5000 (it did not)
    ingest(db, DEV_B, 1, [rec(c[3], DEV_B, 1, at("07:00:00", "20260303"), 8, 4800),
                          rec(c[4], DEV_B, 2, at("07:05:00", "20260303"), 3, 5000)])
    s2 = clear(db, tmp_path, day="2026-03-03")
    assert s2["gray_resolutions"] == {"debited": 1, "void": 1}
    assert s2["settlement"]["disputed_gray_debited_fen"] == 200
    assert s2["anomalies"] == {}  # the debited gray closes card 3's chain
    rows = clearing._tuples(clearing.store(db).query(
        "SELECT seq, state, resolution, matched_device, matched_seq, resolved_day "
        "FROM gray_records ORDER BY seq"))
    assert [tuple(r) for r in rows] == [
        (1, "resolved", "paid", DEV_A, 2, DAY), (3, "resolved", "void", DEV_A, 4, DAY),
        (5, "resolved", "void", DEV_A, 7, DAY), (6, "resolved", "paid", DEV_A, 7, DAY),
        (8, "resolved", "debited", DEV_B, 1, "2026-03-03"),
        (9, "resolved", "void", DEV_B, 2, "2026-03-03")]
    assert "debited" in open(s2["files"]["gray"]["csv"]).read()


def test_clearing_when_day_is_cleared_twice_the_files_are_identical(db, tmp_path):
    ingest(db, DEV_A, 1, [rec(card_no(60), DEV_A, 1, at("06:00:00"), 0, 5000),
                          rec(card_no(60), DEV_A, 2, at("06:30:00"), 0, 5000)])
    s1 = clear(db, tmp_path)
    files = [s1["files"]["exports"][0]["csv"], s1["files"]["errors"]["jsonl"]]
    first = [open(f).read() for f in files]
    s2 = clear(db, tmp_path)
    assert [open(f).read() for f in files] == first
    assert s2["anomalies"] == s1["anomalies"] == {"ATC_REPEAT": 1}
    assert s2["anomalies_new"] == 0


def test_clearing_when_day_is_not_a_date_it_is_refused(db, tmp_path):
    with pytest.raises(clearing.ClearingError):
        clear(db, tmp_path, day="2026-02-30")


# -- the CLI --------------------------------------------------------------------------------
def test_ykt_depot_clear_when_run_writes_files_and_anomalies_lists_them(tmp_path, capsys):
    path = str(tmp_path / "d.sqlite")
    d = clearing.open_database(path)
    ingest(d, DEV_A, 1, [rec(card_no(70), DEV_A, 1, at("06:00:00"), 0, 5000),
                         rec(card_no(70), DEV_A, 2, at("06:30:00"), 0, 5000)])
    d.close()
    out = str(tmp_path / "clr")
    assert cli.main(["depot", "clear", "--db", path, "--day", DAY, "--out", out]) == 0
    assert os.path.exists(os.path.join(out, "settlement-%s.json" % DAY))
    capsys.readouterr()
    assert cli.main(["depot", "anomalies", "--db", path, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["reason"] for r in rows] == ["ATC_REPEAT"]
    assert cli.main(["depot", "clear", "--db", path, "--day", "02/03/2026"]) == 2
    assert cli.main(["depot", "clear", "--db", str(tmp_path / "none.sqlite")]) == 3


# -- a whole sim day ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sim_day(tmp_path_factory):
    from ykt import cmd_sim

    out = str(tmp_path_factory.mktemp("simclr"))
    args = argparse.Namespace(scenario=None, no_acceptance=False, out=out,
                              heap=os.environ.get("YKT_SIM_HEAP"), spi=False, verbose=False)
    assert cmd_sim.do_sim(args) == 0
    d = clearing.open_database(os.path.join(out, "depot.sqlite"))
    yield d, out
    d.close()


def test_clearing_when_sim_day_cleared_every_paid_tac_verified_every_gray_resolved(sim_day):
    d, out = sim_day
    days = clearing.clear_all(d, KS, os.path.join(out, "clearing"))
    assert list(days)[0] == DAY
    total = {"paid": 0, "cleared": 0}
    for s in days.values():
        assert s["tac_failed"] == s["tac_unverified"] == s["corrupt"] == 0
        assert s["tac_verified"] == s["paid_records"]
        assert set(s["gray_states"]) <= {"resolved"}, s["gray_states"]
        assert s["verdicts"].get("error", 0) == 0
        total["paid"] += s["paid_records"]
        total["cleared"] += s["verdicts"].get("cleared", 0)
        for e in s["files"]["exports"]:
            assert clearing.read_control(e["csv"])["count"] == e["count"]
    assert total["paid"] == total["cleared"] > 40
    stored = clearing._tuples(clearing.store(d).query("SELECT COUNT(*) FROM records"))[0][0]
    results = clearing._tuples(clearing.store(d).query(
        "SELECT COUNT(*) FROM clearing_results"))[0][0]
    assert results == stored  # every record has a verdict
    dests = {e["destination"] for s in days.values() for e in s["files"]["exports"]}
    assert dests == {"local", "national"}


def test_clearing_md_when_read_its_reason_table_is_the_code_table():
    path = os.path.join(os.path.dirname(clearing.__file__), "CLEARING.md")
    text = open(path).read()
    begin, end = "<!-- reasons:begin -->\n", "\n<!-- reasons:end -->"
    assert text[text.index(begin) + len(begin) : text.index(end)] == A.reasons_table()


def test_sim_day_when_done_reports_its_clearing_every_gray_resolved_and_writes_the_files(
        sim_day):
    _d, out = sim_day
    with open(os.path.join(out, "summary.json")) as f:
        c = json.load(f)["clearing"]
    assert c["days"][0] == DAY
    assert c["paid_records"] == c["tac_verified"] > 40 and c["tac_failed"] == 0
    assert c["gray_open"] == 0 and c["gray_states"].get("resolved", 0) > 40
    assert c["corrupt"] == 0
    assert set(c["anomalies"]) >= {"MAC2_UNVERIFIED"}  # the acceptance taps' torn MAC2
    # the acceptance day's cloned card (clone_of): same ATC on two buses 40 s apart; the
    # risk loop proposes exactly its serial, and no honest card
    from ykt import sim

    assert c["anomalies"].get("ATC_REPEAT") == 1 and c["anomalies"].get("TWO_VEHICLES") == 1
    assert c["proposed_cards"] == [sim._serial("commuter")]
    files = os.listdir(os.path.join(out, "clearing"))
    assert any(n.endswith(".csv") for n in files) and any(n.endswith(".jsonl") for n in files)
