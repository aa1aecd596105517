"""Tier 2: the whole bus day (`ykt sim`) -- real firmware processes on the unix port against
the emulators, synced to the depot -- checked against independent references:
every fare-rule tap against tests/host/fare_oracle.py (written apart from the engine),
every paid record's TAC with the issuer-side verifier, acceptance outcomes by reason,
no double charge around tears, and the depot holding exactly what was recorded."""

import argparse
import csv
import json
import os
import sys

import pytest

from emu import farescen
from ykt import cmd_sim, sim

sys.path.insert(0, os.path.dirname(__file__))
import fare_oracle  # noqa: E402

HEAP = os.environ.get("YKT_SIM_HEAP")  # default: emu.world.HEAP
KEYS = ("reason", "kind", "fare", "penalty", "amount")


@pytest.fixture(scope="module")
def day(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("sim"))
    args = argparse.Namespace(scenario=None, no_acceptance=False, out=out, heap=HEAP,
                              spi=True, verbose=False)
    assert cmd_sim.do_sim(args) == 0
    with open(os.path.join(out, "summary.json")) as f:
        summary = json.load(f)
    with open(os.path.join(out, "taps.csv")) as f:
        taps = list(csv.DictReader(f))
    with open(os.path.join(out, "records.csv")) as f:
        records = list(csv.DictReader(f))
    return summary, taps, records


def test_sim_when_fare_day_runs_every_charge_matches_the_oracle(day):
    _, taps, _ = day
    table, sc = farescen.load(sim.DEFAULT_SCENARIO)
    want = fare_oracle.run(table, sc)
    got = taps[: len(want)]
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        assert [str(a[k]) for k in KEYS] == [str(b[k]) for k in KEYS], (a, b)
        assert int(a["card_balance"]) == b["balance"], (a, b)  # the card itself agrees
        if int(a["balance"]) >= 0:  # -1: refused before the card told its balance
            assert int(a["balance"]) == b["balance"], (a, b)


def test_sim_when_acceptance_taps_run_reasons_are_right(day):
    _, taps, _ = day
    table, sc = farescen.load(sim.DEFAULT_SCENARIO)
    n = len(fare_oracle.run(table, sc))
    got = [(r["card"], r["reason"]) for r in taps[n:]]
    assert got == [
        ("sm4_sh", "ok"), ("sm4_bj", "ok"), ("cs_visit", "issuer_not_accepted"),
        ("gz_phone", "issuer_not_accepted"), ("tj_typeb", "ok"), ("old", "expired"),
        ("future", "not_yet_valid"), ("stolen", "blacklisted"), ("stolen", "app_blocked"),
        ("locked", "app_blocked"), ("poor", "insufficient_balance"),
        ("tear_a", "tap_again"), ("sm4_sh", "ok"), ("tear_a", "recovered"),
        ("tear_b", "tap_again"), ("tear_b", "ok"), ("tear_b", "already_paid"),
        ("nocapp", "ok"), ("city_card", "ok"), ("city_sm4", "ok"),
        # the city's M1 purse cards (firmware/validator/m1): the torn one is finished on
        # another bus, then torn before its debit and paid afresh
        ("m1_card", "ok"), ("m1_poor", "insufficient_balance"), ("m1_tear", "tap_again"),
        ("m1_tear", "recovered"), ("m1_stolen", "blacklisted"), ("m1_tear", "tap_again"),
        ("m1_tear", "ok"),
        # a clone of commuter's data on another bus 40 s later: paid offline, like the
        # real card; the depot's clearing catches it (test_clearing)
        ("commuter", "ok"), ("commuter_clone", "ok"),
    ]


def test_sim_when_card_torn_it_is_charged_exactly_once(day):
    _, taps, _ = day
    for name in ("tear_a", "tear_b"):
        rows = [r for r in taps if r["card"] == name]
        assert int(rows[-1]["card_balance"]) == 3000 - 200
        assert sum(int(r["amount"]) for r in rows) == 200
    rows = [r for r in taps if r["card"] == "m1_tear"]  # two rides, two tears
    assert int(rows[-1]["card_balance"]) == 3000 - 400
    assert sum(int(r["amount"]) for r in rows) == 400


def test_sim_when_synced_depot_holds_one_paid_record_per_charge_with_valid_tac(day):
    summary, taps, records = day
    paid = [r for r in records if r["status"] in ("normal", "recovered")]
    charged = [r for r in taps if r["reason"] in ("ok", "recovered")]
    assert len(paid) == len(charged) == summary["tac_verified"]
    assert summary["tac_failed"] == 0 and summary["records_lost"] == 0
    for r in paid:
        assert sim.verify_tac(sim.issuer.load_master_keys(), r)
    assert sum(int(r["amount"]) for r in paid) == sum(int(r["amount"]) for r in charged)
    assert {r["status"] for r in records} >= {"normal", "gray", "recovered", "blocked",
                                              "refused"}
    assert {"3des", "sm4"} <= set(summary["paid_by_alg"])
    assert {r["psam_slot"] for r in paid} == {"0", "1"}  # MOT PSAM and local-issuer PSAM
    assert len(summary["paid_by_city"]) >= 3


def test_sim_when_day_ends_every_validator_synced_over_serial_and_tcp(day):
    summary, _, records = day
    evening = [s for s in summary["syncs"] if s["when"] == "evening"]
    assert {s["link"] for s in evening} == {"serial", "tcp"}
    assert sum(s["records_new"] for s in evening) == len(records)
    morning = [s for s in summary["syncs"] if s["when"] == "morning"]
    assert all({p["kind"] for p in s["pushed"]} == {"fares", "blacklist"} for s in morning)
    assert summary["crashes"] == 0
