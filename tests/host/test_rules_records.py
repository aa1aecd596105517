"""Tier 2: validator.rules.records (host-side names of the card record layouts, generated
from the registry like the fare rules' private consts: tests/host/test_formats.py) shares
the firmware's codec, and the firmware never imports it (rules/FORMAT.md "EF 0x1A bus
record")."""

import os
import re

FW = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                  "firmware", "validator")


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
