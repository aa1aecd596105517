"""Tier 2: a seeded day of M1 taps under random faults -- a tear at any card write in any
way, a power cut at any flash operation followed by a reboot -- on the firmware's M1 engine
(emu.mifare.Rig), then cleared at the depot. Invariant, end to end: what the cards lost is
exactly what the depot clears (verified M1 MACs) plus the gray records it proves debited
(the card paid, its final record never reached the log); no card is charged twice for a
ride, and every gray record is resolved once each card has ridden cleanly again."""

import random

from depot import clearing, keyservice
from emu import mifare
from emu.nor import NorFlash, PowerCut
from validator.errors import R_ALREADY_PAID, R_OK, R_RECOVERED, R_TAP_AGAIN
from validator.storage import record_host as RH

DAY = "2025-06-01"
_BS = 512
PLAN = {"log": (0, 96 * _BS), "watermark": (96 * _BS, 2 * _BS), "blacklist": (98 * _BS, 16 * _BS)}
START = 5000
FARE = 200


def _run(seed, taps=60):
    rnd = random.Random(seed)
    rg = mifare.Rig(fare=FARE, flash=NorFlash(114 * _BS, block_size=_BS, prog_size=256),
                    plan=PLAN)
    cards = [mifare.issue_purse(rg.keys, bytes((0x21, 0x42, 0x63, i)), balance=START)
             for i in range(3)]
    faults = {"tear": 0, "cut": 0}
    for _ in range(taps):
        c = rnd.choice(cards)
        rg.clock.advance(rnd.randint(70, 150))  # past the repeat window
        roll = rnd.random()
        if roll < 0.3:
            c.tear(rnd.randint(1, 4), rnd.choice(("before", "after", "half")))
            faults["tear"] += 1
        elif roll < 0.4:
            rg.records.maintain()
            rg.flash.cut_after(rnd.randint(0, 4), rnd.choice(("drop", "torn")))
            faults["cut"] += 1
        try:
            r = rg.tap(c)
            assert r.reason in (R_OK, R_TAP_AGAIN, R_RECOVERED, R_ALREADY_PAID), r.reason
        except PowerCut:
            pass
        c._tear = None
        rg.flash.revive()
        if roll >= 0.3 and roll < 0.4:
            rg.reboot()
    for c in cards:  # every card rides cleanly once more: it settles what it carries
        rg.clock.advance(100)
        assert rg.tap(c).reason in (R_OK, R_RECOVERED)
        rg.clock.advance(100)
        if rg.tap(c).reason == R_RECOVERED:  # (the first one settled a torn debit)
            rg.clock.advance(100)
    return rg, cards, faults


def test_m1_soak_when_seeded_faults_hit_every_write_cards_lose_what_the_depot_clears(tmp_path):
    for seed in (1, 2, 3):
        rg, cards, faults = _run(seed)
        assert faults["tear"] > 5 and faults["cut"] > 2
        lost = 0
        for c in cards:
            v, b, ctr, _ = mifare.purse_state(c)
            assert v == b and v is not None and ctr is not None
            assert (START - v) % FARE == 0  # a whole number of fares: never a torn amount
            # one debit per committed counter: the lost amount is counter x fare
            assert START - v == ctr * FARE, (seed, v, ctr)
            lost += START - v
        db = clearing.open_database(str(tmp_path / ("d%d.sqlite" % seed)))
        try:
            imgs = [r["raw"] for r in rg.rows()]
            first = rg.rows()[0]["seq"]
            assert db.ingest(0x00290001, first, RH.REC_SIZE, b"".join(imgs))[0] == len(imgs)
            s = clearing.clear_day(db, DAY, keyservice.TestKeyService(),
                                   str(tmp_path / ("out%d" % seed)), city="2900")
            st = clearing.store(db)
            debited = sum(row[0] for row in st.query(
                "SELECT amount FROM gray_records WHERE resolution = ?", ("debited",)))
            still = list(st.query("SELECT seq, detail FROM gray_records WHERE state = ?",
                                  ("open",)))
        finally:
            db.close()
        assert s["tac_failed"] == 0 and s["tac_unverified"] == 0
        assert s["cleared_fen"] + debited == lost, (seed, s["cleared_fen"], debited, lost)
        assert still == [], still
