# Tier 1: power-cut campaign on blacklist updates (FORMAT.md §5): a delta (adds and
# removes) and a full replacement, cut at every program and erase ("drop") and torn
# ("torn"). Invariant after re-mount: every lookup answers from the old list or every
# lookup answers from the new one (never a mix), the version says which, and the update
# can be re-applied. Quick subset by default; every cut point when YKT_POWERCUT=full.
import os

from emu import powercut
from fw import storage_dev

# Fixtures (a RAM flash image, firmware and the host body builders compiled from source)
# need more than the MCU's 128 KiB; the firmware's own budget is proven from ROMFS by
# tests/host/test_heap_budget.py.
MP_HEAP = "256k"


def test_powercut_blacklist_when_update_cut_anywhere_answers_old_or_new_only():
    full = (os.getenv("YKT_POWERCUT") or "") == "full"
    cases, fails = powercut.blacklist(storage_dev.dev(), 1 if full else 2)
    assert cases >= 24, cases
    assert not fails, fails[:5]
