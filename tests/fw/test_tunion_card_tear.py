# Tier 1: emu.tunion_card tears + GET TRANSACTION PROVE, load, JSON state, cyclic EF18.
# SPDX-License-Identifier: MIT
# The PSAM side of each purchase is the real emu.psam (APDU level), so MACs are real.
from emu import crypto, issuer
from emu.field import CardGone
from emu.tunion_card import TUnionCard
from fw.cardkit import (
    DT,
    KEYS,
    SELECT,
    TERM,
    h,
    new_card,
    new_psam,
    purchase,
    sw,
)
from fwtest import raises


def test_tear_when_before_commit_then_no_debit_and_prove_9406():
    c = new_card(balance=1000)
    e = raises(CardGone, purchase, c, new_psam(), 100, True, bytes(48), None, "before_commit")
    assert e is not None and c.balance == 1000 and c.offline_atc == 0
    c.apdu(SELECT)
    assert sw(c.apdu(h("805A000902000108"))) == "9406"
    assert sw(c.apdu(h("00B201F400"))) == "6A83"


def test_tear_when_after_commit_then_debit_done_and_prove_recovers():
    c = new_card(balance=1000)
    p = new_psam()
    raises(CardGone, purchase, c, p, 100, True, bytes(48), None, "after_commit")
    assert c.balance == 900 and c.offline_atc == 1
    c.deselect()
    c.apdu(SELECT)
    r = c.apdu(h("805A000902000108"))  # §6: saved ATC 0000 + 1
    assert sw(r) == "9000" and len(r) == 10
    assert p.apdu(b"\x80\x72\x00\x00\x04" + r[0:4]) == h("9000")  # MAC2 first here
    assert crypto.verify_purchase_tac(KEYS, 0, c.ef15[0:8], c.ef15[12:20], 100, 9, TERM,
                                      p.ttsn.to_bytes(4, "big"), DT, r[4:8])
    assert sw(c.apdu(h("805A000602000108"))) == "9406"  # wrong type
    assert sw(c.apdu(h("805A000902000008"))) == "9406"  # wrong ATC
    assert sw(c.apdu(h("805A000902000110"))) == "6C08"
    assert sw(c.apdu(h("805A010902000108"))) == "6A86"
    assert sw(c.apdu(h("805A00090100")) ) == "6700"


def test_arm_tear_when_unknown_mode_then_valueerror():
    raises(ValueError, new_card().arm_tear, "sometime")


def test_tear_after_when_nth_apdu_then_card_gone():
    c = new_card()
    c.tear_after(2)
    assert sw(c.apdu(SELECT)) == "9000"
    raises(CardGone, c.apdu, h("805C000204"))
    assert sw(c.apdu(h("805C000204"))) == "6985"  # deselected by the tear


def test_load_when_host_mac2_good_then_credit_and_tac():
    c = new_card(balance=100)
    c.apdu(SELECT)
    r = c.apdu(h("805000020B0100000064") + TERM + h("10"))
    assert sw(r) == "9000" and len(r) == 18
    rnd, atc, mac1 = r[8:12], r[4:6], r[12:16]
    dlk = issuer.card_keys(KEYS, 0, c.ef15)["load"]
    ses = crypto.load_session_key(0, dlk, rnd, atc)
    assert crypto.load_mac1(0, ses, (100).to_bytes(4, "big"), h("00000064"), TERM) == mac1
    mac2 = crypto.load_mac2(0, ses, h("00000064"), TERM, DT)
    r = c.apdu(h("805200000B") + DT + mac2 + h("04"))
    assert sw(r) == "9000" and c.balance == 200 and c.online_atc == 1
    dtk = issuer.card_keys(KEYS, 0, c.ef15)["tac"]
    assert r[:4] == crypto.load_tac(0, dtk, (200).to_bytes(4, "big"), atc, h("00000064"),
                                    TERM, DT)
    assert c.apdu(h("00B201C400"))[:-2] == h("0001000000") + h("0000006402") + TERM + DT
    assert c.apdu(h("805A000202000108"))[:-2] == mac2 + r[:4]


def test_load_when_mac2_wrong_or_no_init_then_9302_6985():
    c = new_card(balance=100)
    c.apdu(SELECT)
    assert sw(c.apdu(h("805200000B") + DT + bytes(4))) == "6985"
    c.apdu(h("805000020B0100000064") + TERM + h("10"))
    assert sw(c.apdu(h("805200000B") + DT + bytes(4))) == "9302"
    assert c.balance == 100
    assert sw(c.apdu(h("805201000B") + DT + bytes(4))) == "6A86"


def test_state_when_saved_and_loaded_then_same_behaviour():
    import json

    c = new_card(balance=1000, seed=5)
    purchase(c, new_psam(), 100, rec1e=bytes(range(48)))
    s = json.dumps(c.to_dict())
    a = TUnionCard.from_dict(json.loads(s))
    b = TUnionCard.from_dict(json.loads(s))
    assert a.to_dict() == c.to_dict()
    ra, _, _ = purchase(a, new_psam(), 50)
    rb, _, _ = purchase(b, new_psam(), 50)
    assert ra == rb and a.to_dict() == b.to_dict() and a.balance == 850


def test_ef18_when_more_than_10_purchases_then_cyclic_newest_first():
    c = new_card(balance=10000)
    p = new_psam()
    for i in range(12):
        assert sw(purchase(c, p, 1 + i)[0]) == "9000"
    c.apdu(SELECT)
    assert c.apdu(h("00B201C400"))[5:9] == (12).to_bytes(4, "big")
    assert c.apdu(h("00B20AC400"))[5:9] == (3).to_bytes(4, "big")
    assert sw(c.apdu(h("00B20BC400"))) == "6A83"
