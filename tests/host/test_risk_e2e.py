"""Tier 2, end to end: a cloned card rides bus A next to the real one; bus A syncs; clearing
flags the repeated offline ATC; the card is proposed, an operator approves, the station
publishes the next signed blacklist; validator B (the real firmware on the unix port)
receives it at its sync, and the card's next tap on B is refused and the card locked by
APPLICATION BLOCK -- the clone too. Real validators, emulated cards and PSAMs (ykt.sim)."""

import json
import os

from depot import clearing, keyservice, risk, station
from emu import tunion_card
from validator.sync import wire_host
from ykt import sim
from ykt.cmd_sync import open_port

BUS_A, BUS_B = "000000120001", "000000150001"
DAY = "2026-03-02"
SPEC = {"issuer": "02002900FFFFFFFF", "balance": 5000}


def _push(s, w, pushes):
    port = open_port(w.sync_port, 115200, timeout=0.2)
    try:
        return station.sync_once(port, s.keyring, s.db, pushes=pushes, pull=True)
    finally:
        port.close()


def _tap(s, i, card, terminal, at, line):
    tp = {"at": at, "card": "victim", "line": line, "stop": 1, "terminal": terminal}
    return s.tap(i, tp, card, sim.dev_seconds(at, DAY))


def test_risk_when_a_cloned_card_rides_bus_a_bus_b_locks_it_after_the_next_sync(tmp_path):
    scn_path = tmp_path / "scn.json"
    scn_path.write_text(json.dumps({
        "day": DAY, "table": os.path.join(sim.EMU, "fares", "default.json"),
        "cards": {"victim": SPEC},
        "taps": [{"at": "07:00:00", "card": "victim", "line": 12, "terminal": BUS_A}]}))
    scn = sim.load_scenario(str(scn_path))
    s = sim.Sim(str(tmp_path / "sim"))
    try:
        s.prepare(scn)
        real = s.card("victim", SPEC)
        clone = sim.make_card(s.keys, "victim", SPEC)  # same serial, same keys, own ATC
        assert bytes(clone.ef15) == bytes(real.ef15) and clone is not real
        bus_b = s.validator(BUS_B)  # morning sync: fares, no blacklist yet
        assert _tap(s, 0, real, BUS_A, "07:00:00", 12)["reason"] == "ok"
        assert _tap(s, 1, clone, BUS_A, "07:40:00", 12)["reason"] == "ok"
        s.sync(s.fleet[BUS_A])  # bus A's records into the depot

        summary = clearing.clear_day(s.db, DAY, keyservice.TestKeyService(),
                                     str(tmp_path / "clearing"))
        assert summary["tac_verified"] == summary["paid_records"] == 2  # a perfect clone
        assert summary["anomalies"].get("ATC_REPEAT") == 1
        serial = bytes(real.ef15[10:20]).hex()
        new = risk.propose(s.db)
        assert [p["card"] for p in new] == [serial] and "ATC_REPEAT" in new[0]["reason"]
        assert risk.publish(s.db) is None  # nothing approved yet
        assert risk.approve(s.db, [new[0]["id"]], by="duty-officer")[0]["state"] == "approved"
        pub = risk.publish(s.db)
        assert pub["cards"] == [serial] and pub["full_keys"] == 1

        before = _push(s, bus_b, [])["info_after"]["blacklist_version"]
        kind, name, blob = risk.content_for(s.db, before)
        assert kind == wire_host.K_BLACKLIST_FULL  # B had no list: the full one
        got = _push(s, bus_b, [(kind, name, blob)])
        assert got["pushed"][0]["version"] == pub["version"]
        assert got["info_after"]["blacklist_version"] == pub["version"]
        assert risk.content_for(s.db, pub["version"]) is None  # B is current

        r = _tap(s, 2, real, BUS_B, "09:00:00", 15)
        assert r["reason"] == "blacklisted" and r["amount"] == 0
        assert real.blocked != tunion_card.BLOCK_NONE  # APPLICATION BLOCK reached the card
        assert _tap(s, 3, real, BUS_B, "09:05:00", 15)["reason"] == "app_blocked"
        assert _tap(s, 4, clone, BUS_B, "09:10:00", 15)["reason"] == "blacklisted"
        assert clone.blocked != tunion_card.BLOCK_NONE

        s.sync(bus_b)
        day2 = clearing.clear_day(s.db, DAY, keyservice.TestKeyService(),
                                  str(tmp_path / "clearing"))
        assert day2["verdicts"].get("no_debit", 0) >= 2  # the blocked / refused taps on B
        st = clearing._tuples(clearing.store(s.db).query(
            "SELECT status FROM clearing_results WHERE card = ? ORDER BY device_id, seq",
            (serial,)))
        assert ("blocked",) in [tuple(x) for x in st]
    finally:
        s.stop()


def test_risk_when_the_device_holds_the_base_version_it_gets_the_delta(tmp_path):
    from validator.storage import blacklist_host
    from validator.sync import auth_host

    d = clearing.open_database(str(tmp_path / "d.sqlite"))
    s = clearing.ensure_schema(d)
    for i, card in enumerate(("03100000000000000001", "03100000000000000002")):
        s.execute("INSERT INTO blacklist_proposals (id, card, reason, anomaly_ids, state) "
                  "VALUES (?,?,?,?,?)", (i + 1, card, "ATC_REPEAT", "[]", "proposed"))
        risk.approve(d, [card], by="op")
        pub = risk.publish(d)
        assert pub["version"] == i + 1
    assert risk.content_for(d, 0)[0] == wire_host.K_BLACKLIST_FULL
    kind, _name, blob = risk.content_for(d, 1)
    assert kind == wire_host.K_BLACKLIST_DELTA
    _k, version, body = auth_host.unwrap_content(blob)
    assert version == 2
    assert body == blacklist_host.make_body(
        blacklist_host.KIND_DELTA, [(blacklist_host.OP_ADD,
                                     risk.card_key("03100000000000000002"))], base=1)
    assert len(risk.list_keys(risk.latest(d, risk.KIND_FULL)[1])) == 2
    d.close()
