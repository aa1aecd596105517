"""Tier 2: the tap engine's private constant copies equal their sources.

On the device a public module-level name costs ~40 B of heap and a `_X = const(..)` costs
nothing (inlined, name dropped), but const() only inlines inside one module. So the tap
engine's modules (txn.transaction, card.ep, sam.psam) keep private copies of the
values they use from elsewhere: reason codes (errors.py: stable numbers, they go into
records), card command layouts (card/ep.py, card-protocol.md §1-§6), the record image
(storage/record.py, FORMAT.md §2) and the tear context (txn/record.py). A copy that drifts
would silently change a record or an APDU, so every copy is checked here; card.ep_host's
public names for host callers are checked against card/ep.py the same way."""

import os

from fwconsts import module_consts

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FW = os.path.join(ROOT, "firmware", "validator")
COPIES = ("txn/transaction.py", "card/ep.py", "sam/psam.py")


def _consts(rel):
    return module_consts(os.path.join(FW, rel))


def _source(name, errors, ep, txrec, record):
    """(source file, value) a private copy `name` must equal, or None if it is its own."""
    pub = name[1:]
    if pub.startswith("R_") and pub in errors:
        return "errors.py", errors[pub]
    if name in ep:
        return "card/ep.py", ep[name]
    if pub in txrec:
        return "txn/record.py", txrec[pub]
    for n in (pub, name):
        if n in record:
            return "storage/record.py", record[n]
    return None


def test_tap_consts_when_modules_copy_values_they_match_the_source():
    errors = _consts("errors.py")
    ep = _consts("card/ep.py")
    txrec = _consts("txn/record.py")
    record = _consts("storage/record.py")
    checked = 0
    for rel in COPIES:
        for name, v in _consts(rel).items():
            if not name.startswith("_") or (rel == "card/ep.py" and not name.startswith("_R_")):
                continue
            src = _source(name, errors, ep, txrec, record)
            if src is None:
                continue
            assert v == src[1], "%s: %s=%r, %s says %r" % (rel, name, v, src[0], src[1])
            checked += 1
    assert checked >= 100


def test_tap_consts_when_engine_copies_a_name_it_exists_in_a_source():
    # every copy block name in transaction.py really has a source (no typo'd orphan)
    errors = _consts("errors.py")
    ep = _consts("card/ep.py")
    txrec = _consts("txn/record.py")
    record = _consts("storage/record.py")
    own = ("_NEED_", "_K_", "_SEEN", "_SER", "_APP_NOT_ACTIVE", "_B_")
    for name in _consts("txn/transaction.py"):
        if name.startswith(own):
            continue
        assert _source(name, errors, ep, txrec, record) is not None, name


def test_tap_consts_when_host_names_ep_values_they_match():
    fw = _consts("card/ep.py")
    checked = 0
    for name, v in _consts("card/ep_host.py").items():
        if "_" + name in fw:
            assert fw["_" + name] == v, name
            checked += 1
    assert checked >= 35


def test_tap_consts_when_ep_imported_it_defines_no_public_constant():
    # the command builders and the status tables are its public names; layouts are private
    public = [n for n in _consts("card/ep.py") if not n.startswith("_")]
    assert all(n.startswith("SW_") for n in public), public


def test_tap_consts_when_inverse_convention_table_is_literal_it_matches_iso7816_3():
    from validator.link import iso7816, iso7816_host

    assert iso7816._INV == bytes(iso7816_host.conv(x) for x in range(256))
    assert all(iso7816._INV[iso7816._INV[x]] == x for x in range(256))  # its own inverse
    assert iso7816._INV[0x03] == 0x3F  # TS of an inverse-convention card read directly


def test_tap_consts_when_firmware_psam_selects_a_df_the_emulated_psam_has_it():
    from emu import psam as emu_psam

    fw = _consts("sam/psam.py")
    assert fw["_DF_LOCAL"] == emu_psam.DF_LOCAL  # [INF] one constant on both sides (§4)
    assert fw["_DF_MOT"] == b"\x80\x11"  # §4 [C2]
