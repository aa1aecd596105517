"""Tier 2: private consts that two storage modules both keep (a const from another module
would be a public name and a run-time lookup on the device) agree, and the host-side names
of private consts equal the firmware's values (FORMAT.md §2-§5)."""

import os

from fwconsts import module_consts

FW = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                  "firmware", "validator", "storage")


def _consts(name):
    return module_consts(os.path.join(FW, name))


def test_storage_when_recordlog_copies_journal_slot_classes_they_match():
    j, r = _consts("journal.py"), _consts("recordlog.py")
    names = ("_BLANK", "_VALID", "_CORRUPT", "_TORN")
    assert [j[n] for n in names] == [r[n] for n in names] == [0, 1, 2, 3]


def test_storage_when_blacklist_host_names_private_consts_the_values_match():
    fw, host = _consts("blacklist.py"), _consts("blacklist_host.py")
    names = ("KIND_FULL", "KIND_DELTA", "OP_REMOVE", "OP_ADD")
    for n in names:
        assert n not in fw and fw["_" + n] == host[n], n
    from validator.storage import blacklist_host

    assert blacklist_host.KIND_DELTA == 2
    assert blacklist_host.make_body(1, [b"\x00" * 8])[:4] == b"\0\0\0\1"


def test_storage_when_record_offsets_are_private_copies_agree():
    rec, log, host = _consts("record.py"), _consts("recordlog.py"), _consts("record_host.py")
    named = [n for n in host if n.startswith("O_") or n in ("REC_SIZE", "VERSION")]
    assert len(named) == 33  # 31 offsets, size, version
    for n in named:
        assert n not in rec and rec["_" + n] == host[n], n  # private on the device
    for n in ("O_VERSION", "O_LENGTH", "O_SEQ", "O_CRC"):
        assert log["_" + n] == host[n], n
    assert log["_REC_VERSION"] == host["VERSION"] and log["_SLOT"] == host["REC_SIZE"]
    from validator.storage import record, record_host

    assert record_host.O_SEQ == 8 and record_host.REC_SIZE == 128
    assert record_host.crc_ok(bytearray(128)) is False
    assert record.ST_GRAY == 2  # the status codes stay public: txn.record uses them
