# Tier 2: property tests of the fare rules over random tables and trip sequences.
# SPDX-License-Identifier: MIT
#
# Every generated day runs through the validator's rules (emu.farescen -> rules.fares)
# and through the independent oracle (fare_oracle); they must agree tap by tap. On top,
# the rules' invariants are checked on the validator's own outcomes: never negative,
# never above the line's maximum fare, a transfer discount at most once per journey,
# section fares consistent with the matrix, the daily cap respected.
import os
import sys

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emu import farescen
from validator.rules import records

sys.path.insert(0, os.path.dirname(__file__))
import fare_oracle  # noqa: E402

KEYS = ("reason", "kind", "fare", "penalty", "amount", "balance")
ISSUERS = ("02002900FFFFFFFF", "01011000FFFFFFFF", "03003100FFFFFFFF")
TYPES = ("normal", "senior", "student", "staff", "disabled")
DAY = "2026-03-02"
T0 = fare_oracle.dev_seconds("05:00:00", DAY)


@st.composite
def tables(draw):
    n = draw(st.integers(2, 6))
    tri = [[draw(st.integers(0, 800)) for _ in range(n - i)] for i in range(n)]
    pay = st.sampled_from(("percent", "fixed", "free"))
    policies = []
    for ty in ("senior", "student", "staff"):
        p = draw(pay)
        policies.append({"type": ty, "scope": draw(st.sampled_from(("local", "any"))),
                         "pay": p, "value": draw(st.integers(0, 100 if p == "percent" else 400)),
                         "transfer": draw(st.booleans()), "cap": draw(st.booleans())})
    policies.append({"type": "any", "scope": "visiting", "pay": "percent",
                     "value": draw(st.integers(50, 100)), "transfer": draw(st.booleans()),
                     "cap": draw(st.booleans())})
    xk = draw(st.sampled_from(("none", "amount_off", "percent_off", "free")))
    return {
        "version": 1, "activation": 0, "city": "2900", "acquirer": "01022900FFFFFFFF",
        "transfer": {"kind": xk, "value": draw(st.integers(0, 100 if xk == "percent_off"
                                                           else 300)),
                     "window_s": draw(st.sampled_from((0, 1800, 5400))),
                     "same_line_other_vehicle": draw(st.booleans()),
                     "other_city": draw(st.booleans())},
        "tapoff": {"missing": draw(st.sampled_from(("charge_max", "charge_none"))),
                   "window_s": draw(st.sampled_from((1800, 10800))),
                   "board_needs_max": draw(st.booleans())},
        "cap": {"daily": draw(st.sampled_from((0, 300, 700, 1500))),
                "day_start": draw(st.sampled_from(("00:00", "04:00")))},
        "lines": [{"id": 12, "fare": draw(st.integers(0, 600))},
                  {"id": 15, "fare": draw(st.integers(0, 600))},
                  {"id": 20, "mode": "rail", "fare": draw(st.integers(0, 600))},
                  {"id": 801, "stops": n, "matrix": tri}],
        "policies": policies,
        "accept": [{"org": "any", "city": "1000"}],
    }


@st.composite
def days(draw):
    cards = {}
    for i in range(draw(st.integers(1, 3))):
        # weighted towards accepted, funded cards so most taps exercise the fare rules
        cards["c%d" % i] = {"issuer": draw(st.sampled_from(ISSUERS[:1] * 4 + ISSUERS)),
                            "type": draw(st.sampled_from(TYPES[:1] * 3 + TYPES)),
                            "balance": draw(st.sampled_from((0, 150, 450, 3000, 3000, 3000))),
                            "interconnect": draw(st.sampled_from((True, True, True, False)))}
    taps = []
    t = T0
    for _ in range(draw(st.integers(1, 30))):
        t += draw(st.sampled_from((0, 1, 5, 20, 45, 95, 200, 600))) * 60
        c = draw(st.sampled_from(sorted(cards)))
        step = draw(st.integers(0, 9))
        if step == 0:
            taps.append({"at": t, "card": c, "foreign": {
                "mode": draw(st.sampled_from(("rail", "bus"))),
                "type": draw(st.sampled_from((3, 4, 6, 8))), "line": draw(st.integers(1, 3)),
                "amount": 0, "city": draw(st.sampled_from(("2900", "1000"))),
                "flags": draw(st.integers(0, 1))}})
            continue
        term = "0000000000%02d" % draw(st.integers(1, 3))
        if step <= 3:  # a section ride: boarding, then (usually) an alighting
            taps.append({"at": t, "card": c, "line": 801, "stop": draw(st.integers(0, 6)),
                         "door": draw(st.sampled_from(("any", "entry"))), "terminal": term})
            if draw(st.integers(0, 4)):
                t += draw(st.sampled_from((1, 10, 30, 90, 200))) * 60
                taps.append({"at": t, "card": c, "line": 801,
                             "stop": draw(st.integers(0, 6)),
                             "door": draw(st.sampled_from(("any", "exit"))), "terminal": term})
            continue
        taps.append({"at": t, "card": c,
                     "line": draw(st.sampled_from((12, 15, 20, 801, 12, 15, 99))),
                     "stop": draw(st.integers(0, 6)),
                     "door": draw(st.sampled_from(("any", "entry", "exit"))),
                     "terminal": term})
    return {"day": DAY, "cards": cards, "taps": taps}


def _line_max(table, line):
    for ln in table["lines"]:
        if ln["id"] == line:
            return fare_oracle.Oracle(table).line_max(ln)
    return 0


def _check_invariants(table, sc, rows):
    o = fare_oracle.Oracle(table)
    biggest = max(o.line_max(ln) for ln in table["lines"])
    entry = {}
    last_unit = {}  # card -> (discounted?, was a boarding)
    paid = {}  # (card, service day) -> fares
    by_seq = {r["seq"]: r for r in rows}
    for i, tap in enumerate(sc["taps"]):
        if "foreign" in tap:  # another system's ride: a journey unit of its own
            f = tap["foreign"]
            ride = f["type"] in (3, 4, 6)
            last_unit[tap["card"]] = (bool(f["flags"] & 1), False) if ride else None
            continue
        r = by_seq[i]
        assert r["fare"] >= 0 and r["penalty"] >= 0 and r["balance"] >= 0
        assert r["amount"] == r["fare"] + r["penalty"]
        if r["reason"] != "ok":
            continue
        assert r["fare"] <= _line_max(table, r["line"]), r  # never above the maximum fare
        assert r["penalty"] <= biggest
        c = r["card"]
        spec = sc["cards"][c]
        pol = o.policy(fare_oracle._ctype(spec["type"]), spec["issuer"][4:8] == "2900")
        disc = bool(r["flags"] & records.F_TRANSFER)
        tx = r["txtype"]
        # transfer at most once per journey: no two consecutive ride units discounted
        # (a boarding and the alighting that closes it are one unit)
        prev = last_unit.get(c)
        closes = tx == records.TT_ALIGHT and prev is not None and prev[1]
        if disc and prev is not None and prev[0] and not closes:
            raise AssertionError("second discount in a journey: %r" % (r,))
        last_unit[c] = (disc, tx == records.TT_BOARD)
        # section fares consistent with the matrix
        if tx == records.TT_BOARD:
            entry[c] = r["stop"]
        elif (r["kind"] == "section" and c in entry and not disc
              and not r["flags"] & records.F_CAPPED):
            ln = o.lines[801]
            assert r["fare"] == o.price(pol, o.section(ln, entry[c], r["stop"])), r
        if tx != records.TT_BOARD:
            entry.pop(c, None)
        # daily cap respected (fares, not penalties, per service day, cap-eligible cards)
        if table["cap"]["daily"] and pol.get("cap", True):
            now = fare_oracle.dev_seconds(r["at"], DAY)
            k = (c, o.service_day(now))
            paid[k] = paid.get(k, 0) + r["fare"]
            assert paid[k] <= table["cap"]["daily"], (r, paid[k])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables(), days())
def test_rules_props_when_random_days_match_oracle_and_invariants(table, sc):
    rows = farescen.run(table, sc)
    want = fare_oracle.run(table, sc)
    assert len(rows) == len(want)
    for a, b in zip(rows, want, strict=True):
        assert [a[k] for k in KEYS] == [b[k] for k in KEYS], (a, b)
    _check_invariants(table, sc, rows)
