# Tier 2: `ykt sim` output a depot clerk can read (issue 19): no Python reprs, one spelling of
# a device id, every file named on the last line, and a records.csv whose charged_fen column
# adds up to what the riders paid (a gray record and its final record are not both counted).
import csv
import json
import os
import re

import pytest

from ykt import cli


@pytest.fixture(scope="module")
def day(tmp_path_factory):
    import contextlib
    import io

    out = str(tmp_path_factory.mktemp("simout"))
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = cli.main(["sim", "--out", out])
    assert code == 0, buf.getvalue()
    with open(os.path.join(out, "summary.json")) as f:
        summary = json.load(f)
    with open(os.path.join(out, "records.csv"), newline="") as f:
        records = list(csv.DictReader(f))
    return out, buf.getvalue(), summary, records


def test_sim_output_when_printed_then_no_python_reprs(day):
    _, text, _, _ = day
    for bad in ("{'", "['", "{\"", "'}", "']"):
        assert bad not in text, (bad, text)


def test_sim_output_when_device_ids_shown_then_8_hex_digits_everywhere(day):
    out, text, summary, _ = day
    ids = {s["device_id"] for s in summary["syncs"]}
    assert ids and all(re.fullmatch("[0-9A-F]{8}", d) for d in ids)
    for s in summary["syncs"]:
        assert s["info_after"]["device_id"] == s["device_id"]  # not 1179649
    assert set(summary["heap"]) == ids
    assert {n[4:] for n in os.listdir(out) if n.startswith("dev-")} == ids
    for d in ids:
        assert re.search(r"\b%s\b" % d, text)
        assert "0000" + d not in text  # never the 12-digit terminal number as the id


def test_sim_output_when_done_then_last_line_names_every_file(day):
    out, text, summary, _ = day
    last = text.strip().splitlines()[-1]
    for f in ("summary.json", "taps.csv", "records.csv", "depot.sqlite"):
        assert os.path.join(out, f) in last, last
    assert summary["files"]["depot_db"] == os.path.join(out, "depot.sqlite")


def test_sim_records_csv_when_summed_then_gray_rows_not_counted_twice(day):
    _, text, summary, records = day
    gray = [r for r in records if r["status"] == "gray"]
    assert gray and all(r["charged_fen"] == "0" for r in gray)
    assert sum(int(r["amount"]) for r in gray) > 0  # what summing "amount" double counted
    total = sum(int(r["charged_fen"]) for r in records)
    assert total == summary["charged_fen"] == summary["records_charged_fen"]
    assert list(records[0]).index("charged_fen") == list(records[0]).index("status") + 1
    assert "sum charged_fen = %d fen" % total in text
