"""Tier 2: the format registry (firmware/formats) is the one source of every shared byte
format. Regenerating changes nothing; a module gets only the names it references and only
from entries that list it; nobody keeps a copy by hand; a new field reaches the host decoder,
records.csv and FORMAT.md from one registry edit; the bugs the hand-kept copies caused stay
fixed (MAC2 flags and every record field in the clearing export)."""

import ast
import builtins
import csv
import io
import os
import struct
import tokenize

import pytest
from formats import REGISTRY, gen
from formats.model import Field, Layout

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FW = os.path.join(ROOT, "firmware", "validator")


def _entry(name):
    return next(e for e in REGISTRY if e.name == name)


def test_formats_when_regenerated_nothing_changes():
    changed = [os.path.relpath(p, ROOT) for p, (a, b) in gen.plan().items() if a != b]
    assert changed == [], "run `make formats`: %s" % changed


def test_formats_when_a_module_is_not_a_listed_user_it_gets_no_block():
    idx = gen.Index(REGISTRY)
    src = "from micropython import const\n\n\ndef f(b):\n    return b[_O_SEQ]\n"
    assert not _entry("record").allowed("sync/xfer.py")
    with pytest.raises(gen.FormatError, match="not a listed user"):
        gen.module_block(idx, "sync/xfer.py", src)
    out = gen.module_block(idx, "storage/recordlog.py", src)  # a listed user
    assert "_O_SEQ = const(8)" in out and out.count("const(") == 1


def test_formats_when_a_copy_is_kept_by_hand_it_is_refused():
    idx = gen.Index(REGISTRY)
    src = ("from micropython import const\n\n_O_SEQ = const(8)\n\n\n"
           "def f(b):\n    return b[_O_SEQ]\n")
    with pytest.raises(gen.FormatError, match="kept by hand"):
        gen.module_block(idx, "storage/recordlog.py", src)
    # a public copy of a private entry's name is a copy too
    src = "from micropython import const\n\nST_GRAY = const(2)\n"
    with pytest.raises(gen.FormatError, match="kept by hand"):
        gen.module_block(idx, "storage/record.py", src)


def test_formats_when_a_module_uses_fewer_names_its_block_shrinks():
    idx = gen.Index(REGISTRY)
    src = ("from micropython import const\n\n" + gen.BEGIN + "\n_O_SEQ = const(8)\n" + gen.END
           + "\n\ndef f(b):\n    return b[_O_CRC]\n")
    out = gen.module_block(idx, "storage/recordlog.py", src)
    assert "_O_CRC = const(124)" in out and "_O_SEQ" not in out


def _private_consts(src):
    out = []
    for n in ast.parse(src).body:
        if isinstance(n, ast.Assign) and len(n.targets) == 1:
            t, v = n.targets[0], n.value
            if (isinstance(t, ast.Name) and t.id.startswith("_") and isinstance(v, ast.Call)
                    and getattr(v.func, "id", None) == "const"):
                out.append(t.id)
    return out


def test_formats_when_firmware_is_scanned_no_module_carries_an_unused_constant():
    unused = []
    for rel in gen._firmware_modules():
        with open(os.path.join(FW, rel)) as f:
            src = f.read()
        toks = {}
        for t in tokenize.generate_tokens(io.StringIO(src).readline):
            if t.type == tokenize.NAME:
                toks[t.string] = toks.get(t.string, 0) + 1
        unused += ["%s:%s" % (rel, n) for n in _private_consts(src) if toks[n] < 2]
    assert unused == []


MP_BUILTINS = {"const"}  # names MicroPython provides that CPython's builtins lack


def test_formats_when_firmware_is_scanned_every_name_read_is_defined():
    # ruff's F821 is off (const() names), so a name the generator stopped emitting -- a
    # renamed field, a module dropped from an entry's users, a public copy made private --
    # would only fail at run time
    missing = []
    for rel in gen._firmware_modules():
        with open(os.path.join(FW, rel)) as f:
            tree = ast.parse(f.read())
        defined = set()
        for n in ast.walk(tree):
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
                defined.add(n.id)
            elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                defined.add(n.name)
            elif isinstance(n, ast.ExceptHandler) and n.name:
                defined.add(n.name)
            elif isinstance(n, (ast.Import, ast.ImportFrom)):
                defined.update((a.asname or a.name).split(".")[0] for a in n.names)
            elif isinstance(n, ast.arg):
                defined.add(n.arg)
        known = defined | set(dir(builtins)) | MP_BUILTINS
        for n in ast.walk(tree):
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id not in known:
                missing.append("%s:%d %s" % (rel, n.lineno, n.id))
    assert missing == []


def test_formats_when_entries_are_checked_layouts_are_consistent():
    for e in REGISTRY:
        assert e.check() == [], e.name
        if isinstance(e, Layout) and e.size is not None:
            real = [f for f in e.fields if f.kind != "alias"]
            assert sum(f.size for f in real) == e.size, e.name  # no gap, no overlap
    bad = Layout("x", "x", "errors.py", "X_", (Field("A", 0, 4, "u32", ""),
                                               Field("B", 2, 2, "u16", "")), size=4)
    assert bad.check() and "overlaps" in bad.check()[0]


def test_formats_when_a_struct_format_names_a_layout_its_size_matches():
    from validator.sync import wire_host

    assert struct.calcsize(wire_host.P_INFO) == wire_host.INFO_LEN
    sizes = "".join({1: "B", 2: "H", 4: "I"}[f[2]] for f in wire_host.SYNC_INFO_FIELDS)
    assert wire_host.P_INFO == ">" + sizes
    assert struct.calcsize(wire_host.P_RECORDS) + wire_host.HDR == wire_host.RECORDS_OFF


def test_formats_when_a_record_field_is_added_decoder_csv_and_doc_follow(tmp_path):
    rec = _entry("record")
    res = [f for f in rec.fields if f.name == "RESERVED"][0]  # the newcomer takes its head
    at = res.off
    extra = Field("TRIP_ID", at, 4, "u32", "a newcomer's field")
    fields = tuple(f for f in rec.fields if f.name != "RESERVED") + (
        extra, Field("RESERVED", at + 4, res.size - 4, "none", "00"))
    fields = tuple(sorted(fields, key=lambda f: f.off))
    new = Layout(rec.name, rec.title, rec.owner, rec.prefix, fields, consts=rec.consts,
                 size=rec.size, users=rec.users, hosts=rec.hosts, doc=rec.doc,
                 listed=rec.listed)
    reg = tuple(new if e is rec else e for e in REGISTRY)
    todo = gen.plan(reg, only=["storage/record_host.py", "storage/FORMAT.md"])
    host = todo[os.path.join(FW, "storage", "record_host.py")][1]
    doc = todo[os.path.join(FW, "storage", "FORMAT.md")][1]
    assert "O_TRIP_ID = %d" % at in host and '("trip_id", %d, 4, "u32", None),' % at in host
    assert "| %d | 4 | `TRIP_ID` | u32 | a newcomer's field |" % at in doc
    # the decoder and the CSV columns are built from the generated field list
    ns = {"__name__": "record_host_probe"}
    exec(compile(host, "record_host_probe", "exec"), ns)
    img = ns["new_image"]()
    struct.pack_into(">I", img, at, 4242)
    assert ns["decode"](img)["trip_id"] == 4242 and "trip_id" in ns["CSV_COLUMNS"]


def test_formats_when_a_record_is_decoded_every_field_is_a_csv_column():
    from validator.storage import record_host as rh

    for col, _, _, kind, codes in rh.RECORD_FIELDS:
        if col and kind != "none":
            assert col in rh.CSV_COLUMNS, col
    img = rh.new_image()
    d = rh.decode(img)
    assert set(d) == set(rh.CSV_COLUMNS)
    for col in ("key_index", "flags", "txflags", "mac2_unverified", "mac2_bad", "version",
                "fare_rule", "psam_slot"):
        assert col in rh.CSV_COLUMNS, col


def _record(seq, txflags):
    from validator.storage import record_host as rh

    img = rh.new_image()
    img[0:4] = rh.REC_COMMIT
    img[rh.O_VERSION] = rh.REC_VERSION
    img[rh.O_STATUS] = rh.ST_NORMAL
    struct.pack_into(">HI", img, rh.O_LENGTH, rh.REC_SIZE, seq)
    struct.pack_into(">I", img, rh.O_AMOUNT, 200)
    img[rh.O_TXFLAGS] = txflags
    img[rh.O_FLAGS] = 1  # fares_host.F_TRANSFER
    img[rh.O_KEY_INDEX] = 3
    import binascii

    struct.pack_into(">I", img, rh.O_CRC, binascii.crc32(img[4:rh.O_CRC]))
    return bytes(img)


def test_formats_when_mac2_flags_are_set_they_reach_the_depot_export(tmp_path):
    from depot.db import DepotDB
    from validator.storage import record_host as rh

    db = DepotDB(str(tmp_path / "depot.sqlite"))
    data = (_record(1, 0) + _record(2, rh.FL_MAC2_UNVERIFIED) + _record(3, rh.FL_MAC2_BAD))
    assert db.ingest(0x00120001, 1, rh.REC_SIZE, data) == (3, 0)
    out = tmp_path / "records.csv"
    assert db.export_csv(str(out)) == 3
    db.close()
    with open(out) as f:
        rows = list(csv.DictReader(f))
    assert [(r["mac2_unverified"], r["mac2_bad"]) for r in rows] == [
        ("0", "0"), ("1", "0"), ("0", "1")]
    assert all(r["key_index"] == "3" and r["transfer"] == "1" for r in rows)


def test_formats_when_inverse_convention_table_is_literal_it_matches_iso7816_3():
    from validator.link import iso7816, iso7816_host

    assert iso7816._INV == bytes(iso7816_host.conv(x) for x in range(256))
    assert all(iso7816._INV[iso7816._INV[x]] == x for x in range(256))  # its own inverse
    assert iso7816._INV[iso7816_host.TS_INVERSE_SEEN] == iso7816_host.TS_INVERSE


def test_formats_when_firmware_psam_selects_a_df_the_emulated_psam_has_it():
    from emu import psam as emu_psam

    psam = _entry("psam-8070")
    consts = {n: v for n, v, _ in psam.consts}
    assert consts["DF_LOCAL"] == emu_psam.DF_LOCAL  # [INF] one constant on both sides (§4)
    assert consts["DF_MOT"] == b"\x80\x11"  # §4 [C2]
