# Tier 1: power-cut campaign on the record log (FORMAT.md §0.1, §3): cut at every program
# and erase ("drop") and tear them ("torn": half a page / half a block persisted) over
# 210 appends with acks and block reuse. Quick subset by default; every cut point when
# YKT_POWERCUT=full. Invariants after re-mount: every record whose append returned reads
# back intact, no torn record is accepted, sequence numbers continue without gaps or
# repeats, the watermark is the old or the new value, nothing unacknowledged was erased.
import os

from emu import powercut
from fw import storage_dev

# Fixture: a RAM flash device beside the firmware compiled from source (see tests/mpsuite.py).
MP_HEAP = "256k"

_N = 210  # appends in the workload (emu.powercut)


def full_campaign():
    return (os.getenv("YKT_POWERCUT") or "") == "full"


def test_powercut_recordlog_when_cut_anywhere_keeps_every_committed_record():
    stride = 1 if full_campaign() else 37
    cases, fails, total = powercut.recordlog(storage_dev.dev(), stride)
    assert total > 2 * _N
    assert cases >= 2 * (total // stride), cases
    assert not fails, fails[:5]
