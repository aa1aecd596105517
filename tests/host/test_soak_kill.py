"""Tier 2: the real firmware process (MicroPython unix port, 128 KiB heap) SIGKILLed at
seeded random instants -- inside a tap, right after the card's 80DC and the PSAM's 8072
(the tap's flash writes), during a sync, between taps, while it boots -- and restarted on
the same flash file (emu.soak_kill; `make soak` runs a few hundred kills). The checker
reads the flash file of the dead process, the depot database and the cards."""

from emu import soak_kill


def test_soak_kill_when_the_validator_is_killed_at_random_nothing_is_lost_or_doubled():
    r = soak_kill.run(70, kills=12, seed=5)
    assert r["failures"] == [] and r["soak_kill_failures"] == 0
    mix = r["soak_kill_fault_mix"]
    kinds = [k for k in mix if k.startswith("sigkill_") and mix[k]]
    assert r["soak_sigkills"] >= 6 and len(kinds) >= 2, mix
    assert r["soak_kill_records"] > 70  # gray + final records reached the depot
    assert r["soak_kill_heap_max"] <= r["soak_kill_heap_boot"] + soak_kill.HEAP_BUDGET


def test_soak_kill_when_a_card_is_debited_without_a_record_the_checker_says_so():
    r = soak_kill.run(15, kills=0, seed=3, cards=4, lose_a_record=True)
    assert r["soak_kill_failures"] >= 1 and "left the card" in r["failures"][0]
