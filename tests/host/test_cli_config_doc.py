# Tier 2: firmware/validator/app/CONFIG.md documents the device configuration the firmware
# reads: its key table is the checker's (content.parse_config) and the defaults are the
# ones app/main.py applies, so the document cannot drift from the code (issue 19).
import json
import os
import re

import pytest

from validator.app import content

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
APP = os.path.join(ROOT, "firmware", "validator", "app")


def _doc_rows():
    rows = {}
    with open(os.path.join(APP, "CONFIG.md")) as f:
        for ln in f:
            m = re.match(r"\| `(\w+)` \| (\w+) \| ([^|]+) \| ([^|]+) \|", ln)
            if m:
                rows[m.group(1)] = tuple(x.strip() for x in m.group(2, 3, 4))
    return rows


def test_config_doc_when_read_then_every_key_the_checker_knows_with_its_range():
    rows = _doc_rows()
    ints = {name: (lo, hi) for name, lo, hi in content._CONFIG_INTS}
    assert set(rows) == set(ints) | {"city"}
    assert rows["city"][:2] == ("string", "4 decimal digits")
    for name, (lo, hi) in ints.items():
        assert rows[name][:2] == ("integer", "%d..%d" % (lo, hi)), name


def test_config_doc_when_read_then_defaults_are_main_py_s():
    src = open(os.path.join(APP, "main.py")).read()
    used = dict(re.findall(r'config\.get\("(\w+)", ([^)]+)\)', src))
    rows = _doc_rows()
    assert set(used) == set(rows)  # the firmware reads exactly the documented keys
    for k, v in used.items():
        assert rows[k][2].strip("`") == v.strip(), k


def test_config_doc_when_example_given_then_the_checker_accepts_it():
    doc = open(os.path.join(APP, "CONFIG.md")).read()
    example = re.search(r"```json\n(.*?)\n```", doc, re.S).group(1)
    assert content.parse_config(example.encode()) == json.loads(example)


@pytest.mark.parametrize("cfg", [{"linne": 12}, {"line": "12"}, {"city": 2900},
                                 {"repeat_window_s": 3601}])
def test_config_doc_when_refusal_examples_then_the_checker_refuses(cfg):
    with pytest.raises(ValueError, match="config"):
        content.parse_config(json.dumps(cfg).encode())
