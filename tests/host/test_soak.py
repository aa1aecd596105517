"""Tier 2: a short soak of the real tap engine under a seeded random fault schedule
(emu.soak; `make soak` runs 100 000 taps). The checker is independent of the engine: it
pulls records as the depot does (from the log, and over the real sync protocol into a
DepotDB, some syncs cut mid-batch) and balances every card against its final records."""

import pytest

from emu import soak


@pytest.mark.parametrize("seed", [1, 2])
def test_soak_when_faults_rain_no_record_is_lost_and_no_ride_is_doubled(seed):
    r = soak.run(600, seed=seed)
    assert r["failures"] == [] and r["soak_failures"] == 0
    mix = r["soak_fault_mix"]
    # the schedule really injected every kind of fault it names
    assert all(mix[k] > 0 for k in ("card_pulled", "tear_after", "cut_drop", "cut_torn",
                                    "psam_reset", "sync_cut")), mix
    assert r["soak_recovered"] > 0 and r["soak_final_records"] > 450
    assert r["soak_protocol_syncs"] > 5


def test_soak_when_a_record_goes_missing_the_checker_says_so():
    # the checker must be able to fail: a card debited with no record at all
    r = soak.run(50, seed=3, lose_a_record=True)
    assert r["soak_failures"] >= 1 and "left the card" in r["failures"][0]


def test_soak_when_the_depot_books_a_record_twice_the_checker_says_so():
    r = soak.run(300, seed=4, double_a_record=True)
    assert r["soak_failures"] >= 1 and any("arrived" in f for f in r["failures"])
