"""Tier 2: validator.rules.records (host-side names of the card record layouts) equals the
private consts the fare rules use on the device (validator.rules.fares), and the firmware
never imports it (private consts take no heap; rules/FORMAT.md "EF 0x1A bus record")."""

import os
import re

from fwconsts import module_consts

FW = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                  "firmware", "validator")


def _consts(path):
    return module_consts(path)


def test_records_when_compared_with_fares_every_offset_matches():
    fw = _consts(os.path.join(FW, "rules", "fares.py"))
    host = _consts(os.path.join(FW, "rules", "records.py"))
    assert len(host) >= 45
    for name, v in host.items():
        priv = name if name.startswith("_") else "_" + name
        assert fw.get(priv) == v, "records.%s=%r but fares.%s=%r" % (name, v, priv, fw.get(priv))
    assert [n for n in host if n in fw and n[0] != "_"] == []  # none public in the firmware


def test_records_when_firmware_sources_are_scanned_nothing_imports_it():
    hits = []
    for d, _, files in os.walk(FW):
        for f in files:
            if f.endswith(".py") and not f.endswith("_host.py") and f != "records.py":
                with open(os.path.join(d, f)) as fh:
                    if re.search(r"^\s*(from|import) .*\brecords\b", fh.read(), re.M):
                        hits.append(f)
    assert hits == []


def test_records_when_host_codec_used_it_is_the_firmware_codec():
    from validator.rules import fares, records

    assert records.crc16 is fares._crc16  # the table-driven CRC is the firmware's own
    r = bytearray(128)
    records.seal_bus_record(r)
    assert records.bus_record_ok(r)
    r[40] ^= 1
    assert not records.bus_record_ok(r)


def test_rules_when_fares_copies_table_consts_the_values_match():
    fw = _consts(os.path.join(FW, "rules", "fares.py"))
    tb = _consts(os.path.join(FW, "rules", "table.py"))
    shared = [n for n in fw if n in tb and n[:2] in ("_F", "_X", "_T", "_P")]
    assert len(shared) >= 14
    for n in shared:
        assert fw[n] == tb[n], "fares.%s=%r, table.%s=%r" % (n, fw[n], n, tb[n])


def test_rules_when_crc_table_regenerated_from_the_polynomial_it_matches():
    from validator.rules import fares

    t = bytearray(512)
    for i in range(256):
        c = i << 8
        for _ in range(8):
            c = (((c << 1) ^ 0x1021) if c & 0x8000 else (c << 1)) & 0xFFFF
        t[2 * i : 2 * i + 2] = bytes((c >> 8, c & 0xFF))
    assert fares._CRC_T == bytes(t)
    assert fares._crc16(b"123456789", 0, 9) == 0x29B1  # CRC-16/CCITT-FALSE check value
